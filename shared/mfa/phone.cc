/*
 * phone.cc - the libphonenumber shim behind phone.h; the project's only C++.
 *
 * Callers: see phone.h. Everything else in the project is C and calls the
 * three extern "C" functions below; nothing C++ leaks through the header.
 * phone_mask() and the E.164 split are C (phone_e164.c), so that programs
 * which only mask numbers (mfa-sms) do not link this file's C++ stack.
 *
 * Security notes: input is untrusted CRM data. It is capped at
 * PHONE_INPUT_MAX bytes before libphonenumber sees it, every C++ exception
 * is caught at the boundary (unwinding into C would be undefined), and no
 * output ever echoes the input: reasons are fixed strings. libphonenumber's
 * own logger is replaced by a null
 * logger so that nothing about a number reaches stderr behind our back.
 *
 * libphonenumber 8.12 facts this file relies on (checked on Debian 12):
 * Parse() silently moves an extension ("x12", "#12", ",,12") into a field
 * and turns letters into digits, so both are refused explicitly; region
 * codes must be upper case; the metadata is from 2022.
 *
 * Cost: Parse() runs dozens of ICU regular expressions. phone_check() needs
 * them (CRM input comes in every written form), but phone_region_of() runs
 * per event on stored E.164 strings, so it splits "+<calling code><national
 * significant number>" by hand (phone_e164_split: calling codes are
 * prefix-free) and only falls back to Parse() where the metadata must
 * decide (a calling code shared by several regions).
 */
#include "mfa/phone.h"
#include "mfa/phone_e164.h"

#include <phonenumbers/logger.h>
#include <phonenumbers/phonenumber.pb.h>
#include <phonenumbers/phonenumberutil.h>

#include <cstdio>
#include <cstring>
#include <list>
#include <string>

using i18n::phonenumbers::NullLogger;
using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberUtil;

namespace
{

/*
 * The library singleton, with its logger silenced once. The function-local
 * static makes the first call thread-safe (C++11 "magic statics").
 */
PhoneNumberUtil *
phone_util()
{
    static PhoneNumberUtil *util = [] {
        PhoneNumberUtil *u = PhoneNumberUtil::GetInstance();
        u->SetLogger(new NullLogger()); /* takes ownership */
        return u;
    }();
    return util;
}

/* Bounded copy that always terminates (n > 0). */
void
phone_copy(char *dst, size_t n, const char *src)
{
    std::snprintf(dst, n, "%s", src);
}

bool
phone_is_blank(const char *s)
{
    for (; *s != '\0'; s++)
        if (std::strchr(" \t\r\n\v\f", *s) == NULL)
            return false;
    return true;
}

bool
phone_has_letter(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))
            return true;
    }
    return false;
}

/*
 * Two ASCII letters, upper-cased into out; "ZZ" (libphonenumber's "unknown
 * region") for anything else, which makes national-format input fail with
 * an invalid country code instead of being guessed.
 */
std::string
phone_region_norm(const char *region)
{
    std::string r("ZZ");

    if (region == NULL || std::strlen(region) != 2)
        return r;
    for (int i = 0; i < 2; i++) {
        char c = region[i];

        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (c < 'A' || c > 'Z')
            return "ZZ";
        r[i] = c;
    }
    return r;
}

const char *
phone_parse_reason(PhoneNumberUtil::ErrorType err)
{
    switch (err) {
    case PhoneNumberUtil::INVALID_COUNTRY_CODE_ERROR:
        return "invalid country code";
    case PhoneNumberUtil::TOO_SHORT_AFTER_IDD:
    case PhoneNumberUtil::TOO_SHORT_NSN: return "too short";
    case PhoneNumberUtil::TOO_LONG_NSN: return "too long";
    case PhoneNumberUtil::NOT_A_NUMBER:
    default: return "not a number";
    }
}

/* NULL when the number's length is possible, else the reason it is not. */
const char *
phone_possible_reason(PhoneNumberUtil::ValidationResult vr)
{
    switch (vr) {
    case PhoneNumberUtil::IS_POSSIBLE: return NULL;
    case PhoneNumberUtil::IS_POSSIBLE_LOCAL_ONLY: return "missing area code";
    case PhoneNumberUtil::INVALID_COUNTRY_CODE: return "invalid country code";
    case PhoneNumberUtil::TOO_SHORT: return "too short";
    case PhoneNumberUtil::TOO_LONG: return "too long";
    case PhoneNumberUtil::INVALID_LENGTH:
    default: return "invalid length";
    }
}

const char *
phone_type_name(PhoneNumberUtil::PhoneNumberType t)
{
    switch (t) {
    case PhoneNumberUtil::FIXED_LINE: return "fixed_line";
    case PhoneNumberUtil::MOBILE: return "mobile";
    case PhoneNumberUtil::FIXED_LINE_OR_MOBILE: return "fixed_line_or_mobile";
    case PhoneNumberUtil::TOLL_FREE: return "toll_free";
    case PhoneNumberUtil::PREMIUM_RATE: return "premium_rate";
    case PhoneNumberUtil::SHARED_COST: return "shared_cost";
    case PhoneNumberUtil::VOIP: return "voip";
    case PhoneNumberUtil::PERSONAL_NUMBER: return "personal_number";
    case PhoneNumberUtil::PAGER: return "pager";
    case PhoneNumberUtil::UAN: return "uan";
    case PhoneNumberUtil::VOICEMAIL: return "voicemail";
    case PhoneNumberUtil::UNKNOWN:
    default: return "unknown";
    }
}

void
phone_invalid(struct phone_result *out, const char *reason)
{
    std::memset(out, 0, sizeof(*out));
    out->status = PHONE_INVALID;
    phone_copy(out->reason, sizeof(out->reason), reason);
}

/*
 * A region code as two letters into out, or "" (returning false) for
 * libphonenumber's "unknown" ("ZZ") and for the non-geographic "001" of
 * +800, +808, +870, +882, ... which has no place in a 2-letter region
 * policy.
 */
bool
phone_region_two(const std::string &rc, char out[3])
{
    out[0] = '\0';
    if (rc.size() != 2 || rc == "ZZ" || rc[0] < 'A' || rc[0] > 'Z')
        return false;
    phone_copy(out, 3, rc.c_str());
    return true;
}

/* The region of a parsed number, as above. */
bool
phone_region_two(const PhoneNumber &num, char out[3])
{
    std::string rc;

    phone_util()->GetRegionCodeForNumber(num, &rc);
    return phone_region_two(rc, out);
}

/* The body of phone_check(), free to throw; out is zeroed and MISSING. */
/*
 * What contact-sync stores must read back as itself. Parse() is not
 * idempotent everywhere: "+52 1167345671 89" parses to +5216734567189,
 * whose own parse drops Mexico's old mobile "1" again, to +526734567189
 * (found by tests/fuzz). Takes the number through its E.164 form until it
 * stays put (*num, *t and *e164 follow); false when it does not within a
 * few rounds or stops being valid on the way.
 */
bool
phone_canonical(PhoneNumber *num, PhoneNumberUtil::PhoneNumberType *t,
                std::string *e164)
{
    PhoneNumberUtil *util = phone_util();

    for (int round = 0; round < 3; round++) {
        PhoneNumber again;
        std::string form;

        if (util->Parse(*e164, "ZZ", &again) !=
            PhoneNumberUtil::NO_PARSING_ERROR)
            return false;
        util->Format(again, PhoneNumberUtil::E164, &form);
        if (form == *e164)
            return true;
        *t = util->GetNumberType(again);
        if (*t == PhoneNumberUtil::UNKNOWN)
            return false;
        *num = again;
        *e164 = form;
    }
    return false;
}

void
phone_check_inner(const char *input, const char *region,
                  struct phone_result *out)
{
    PhoneNumberUtil *util = phone_util();
    PhoneNumber num;
    PhoneNumberUtil::ErrorType err;
    const char *why;
    std::string e164;
    size_t len;

    if (input == NULL || phone_is_blank(input))
        return;
    len = strnlen(input, PHONE_INPUT_MAX + 1);
    if (len > PHONE_INPUT_MAX) {
        phone_invalid(out, "too long");
        return;
    }

    /* Raw input is kept for country_code_source() below. */
    err = util->ParseAndKeepRawInput(std::string(input, len),
                                     phone_region_norm(region), &num);
    /* An extension needs a successful parse to be seen; check it before
     * letters so "ext 12" says what is really wrong. */
    if (err == PhoneNumberUtil::NO_PARSING_ERROR && num.has_extension()) {
        phone_invalid(out, "has an extension");
        return;
    }
    if (phone_has_letter(input, len)) {
        phone_invalid(out, "contains letters");
        return;
    }
    if (err != PhoneNumberUtil::NO_PARSING_ERROR) {
        phone_invalid(out, phone_parse_reason(err));
        return;
    }
    why = phone_possible_reason(util->IsPossibleNumberWithReason(num));
    if (why != NULL) {
        phone_invalid(out, why);
        return;
    }
    /* IsValidNumber() is GetNumberType() != UNKNOWN (both match the
     * number against the same region's type patterns): ask once. */
    PhoneNumberUtil::PhoneNumberType t = util->GetNumberType(num);
    if (t == PhoneNumberUtil::UNKNOWN) {
        /* National format: the region was an assumption, say so. */
        phone_invalid(out, num.country_code_source() ==
                                   PhoneNumber::FROM_DEFAULT_COUNTRY
                               ? "invalid for region"
                               : "invalid number");
        return;
    }

    util->Format(num, PhoneNumberUtil::E164, &e164);
    if (!phone_canonical(&num, &t, &e164)) {
        phone_invalid(out, "invalid number");
        return;
    }
    /* libphonenumber's metadata takes some German numbers of up to 17
     * digits as valid ("+49 631631496316319", found by tests/fuzz);
     * E.164 allows 15, and phone_mask(), phone_region_of() and Twilio
     * refuse more. */
    if (e164.size() > 1 + PHONE_E164_DIGITS_MAX) {
        phone_invalid(out, "too long");
        return;
    }

    out->status = PHONE_VALID;
    phone_copy(out->e164, sizeof(out->e164), e164.c_str());
    (void)phone_region_two(num, out->region);
    phone_copy(out->type, sizeof(out->type), phone_type_name(t));
    out->sms_capable = (t == PhoneNumberUtil::MOBILE ||
                        t == PhoneNumberUtil::FIXED_LINE_OR_MOBILE);
}

/* Parses an E.164 string phone_e164_split() took; false if it has no
 * country. */
bool
phone_parse_e164(const char *e164, PhoneNumber *num)
{
    return phone_util()->Parse(e164, "ZZ", num) ==
               PhoneNumberUtil::NO_PARSING_ERROR &&
           num->country_code() != 0;
}

/*
 * The body of phone_region_of(), free to throw. A calling code of one
 * region names it whatever the digits (GetRegionCodeForNumber() answers
 * the same without looking at them); only a shared one (+1, +7, +44, ...)
 * needs the full parse and the regions' number patterns.
 */
bool
phone_region_of_inner(const char *e164, char out[3])
{
    std::list<std::string> regions;
    const char *nsn;
    PhoneNumber num;
    int cc;

    if (!phone_e164_split(e164, &cc, &nsn))
        return false;
    phone_util()->GetRegionCodesForCountryCallingCode(cc, &regions);
    if (regions.size() == 1)
        return phone_region_two(regions.front(), out);
    return phone_parse_e164(e164, &num) && phone_region_two(num, out);
}

} // namespace

extern "C" int
phone_check(const char *input, const char *region, struct phone_result *out)
{
    if (out == NULL)
        return -1;
    std::memset(out, 0, sizeof(*out));
    out->status = PHONE_MISSING;
    try {
        phone_check_inner(input, region, out);
    } catch (...) {
        std::memset(out, 0, sizeof(*out));
        return -1;
    }
    return 0;
}

extern "C" int
phone_region_ok(const char *region)
{
    std::string r = phone_region_norm(region);

    if (r == "ZZ")
        return 0;
    try {
        /* 0 is libphonenumber's answer for a region it does not know. */
        return phone_util()->GetCountryCodeForRegion(r) != 0;
    } catch (...) {
        return 0;
    }
}

extern "C" int
phone_region_of(const char *e164, char out[3])
{
    if (out == NULL)
        return -1;
    out[0] = '\0';
    try {
        if (phone_region_of_inner(e164, out))
            return 0;
    } catch (...) {
    }
    out[0] = '\0';
    return -1;
}
