/*
 * test_phone.c - unit tests for mfa/phone (the libphonenumber shim).
 *
 * Got/want tables of numbers written the way CRMs hold them, from NL, BE,
 * DE, GB, US, IN and FR, plus the edge cases. Every expectation was checked
 * against libphonenumber 8.12.57 (Debian 12, metadata from 2022); rows that
 * look surprising say why. A failing row names itself.
 */
#include "mfa/phone.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

#define V PHONE_VALID
#define I PHONE_INVALID
#define M PHONE_MISSING

struct row {
    const char *in, *region;
    enum phone_status status;
    const char *e164, *nregion, *type;
    int sms;
    const char *reason;
    const char *mask; /* phone_mask(e164); valid rows only */
};

static const char *
status_name(enum phone_status s)
{
    return s == V ? "valid" : s == I ? "invalid" : "missing";
}

static void
check_rows(const struct row *rows, size_t n)
{
    struct phone_result r;
    char mask[32];
    size_t i;

    for (i = 0; i < n; i++) {
        const struct row *w = &rows[i];
        const char *in = w->in ? w->in : "(null)";

        if (phone_check(w->in, w->region, &r) != 0)
            fail_msg("row %zu \"%s\": phone_check returned -1", i, in);
        if (r.status != w->status)
            fail_msg("row %zu \"%s\" [%s]: status %s, want %s (reason %s)", i,
                     in, w->region ? w->region : "-", status_name(r.status),
                     status_name(w->status), r.reason);
        if (strcmp(r.e164, w->e164 ? w->e164 : "") != 0 ||
            strcmp(r.region, w->nregion ? w->nregion : "") != 0 ||
            strcmp(r.type, w->type ? w->type : "") != 0 ||
            r.sms_capable != w->sms ||
            strcmp(r.reason, w->reason ? w->reason : "") != 0)
            fail_msg("row %zu \"%s\": got {%s, %s, %s, sms %d, \"%s\"}, "
                     "want {%s, %s, %s, sms %d, \"%s\"}",
                     i, in, r.e164, r.region, r.type, r.sms_capable, r.reason,
                     w->e164, w->nregion, w->type, w->sms, w->reason);
        if (w->status == V) {
            phone_mask(r.e164, mask, sizeof(mask));
            if (strcmp(mask, w->mask) != 0)
                fail_msg("row %zu \"%s\": mask \"%s\", want \"%s\"", i, in,
                         mask, w->mask);
        }
    }
}

static void
test_national_and_international(void **state)
{
    static const struct row rows[] = {
        /* Netherlands */
        {"06-12345678", "NL", V, "+31612345678", "NL", "mobile", 1, NULL,
         "+31 6** *** *78"},
        {"+31 (0)6 1234 5678", "NL", V, "+31612345678", "NL", "mobile", 1, NULL,
         "+31 6** *** *78"},
        {"06.12.34.56.78", "NL", V, "+31612345678", "NL", "mobile", 1, NULL,
         "+31 6** *** *78"},
        {"[06] 12345678", "NL", V, "+31612345678", "NL", "mobile", 1, NULL,
         "+31 6** *** *78"},
        {"+31-6-12345678", "NL", V, "+31612345678", "NL", "mobile", 1, NULL,
         "+31 6** *** *78"},
        {"020-1234567", "NL", V, "+31201234567", "NL", "fixed_line", 0, NULL,
         "+31 2** *** *67"},
        {"0800-1234", "NL", V, "+318001234", "NL", "toll_free", 0, NULL,
         "+31 8** **3 4"},
        {"0900 1234567", "NL", V, "+319001234567", "NL", "premium_rate", 0,
         NULL, "+31 9** *** **6 7"},
        {"085 1234567", "NL", V, "+31851234567", "NL", "voip", 0, NULL,
         "+31 8** *** *67"},
        {"088 1234567", "NL", V, "+31881234567", "NL", "uan", 0, NULL,
         "+31 8** *** *67"},
        {"066 1234567", "NL", V, "+31661234567", "NL", "pager", 0, NULL,
         "+31 6** *** *67"},
        /* Belgium (Brussels numbers are 02 + 7 digits) */
        {"0470 12 34 56", "BE", V, "+32470123456", "BE", "mobile", 1, NULL,
         "+32 4** *** *56"},
        {"+32 2 287 41 11", "BE", V, "+3222874111", "BE", "fixed_line", 0, NULL,
         "+32 2** *** 11"},
        {"03 201 23 45", "BE", V, "+3232012345", "BE", "fixed_line", 0, NULL,
         "+32 3** *** 45"},
        {"0800 12345", "BE", V, "+3280012345", "BE", "toll_free", 0, NULL,
         "+32 8** *** 45"},
        /* Germany */
        {"0151 23456789", "DE", V, "+4915123456789", "DE", "mobile", 1, NULL,
         "+49 1** *** *** 89"},
        {"0170 1234567", "DE", V, "+491701234567", "DE", "mobile", 1, NULL,
         "+49 1** *** **6 7"},
        {"+49 (0)89 1234567", "DE", V, "+49891234567", "DE", "fixed_line", 0,
         NULL, "+49 8** *** *67"},
        {"030 12345678", "DE", V, "+493012345678", "DE", "fixed_line", 0, NULL,
         "+49 3** *** **7 8"},
        /* United Kingdom */
        {"07400 123456", "GB", V, "+447400123456", "GB", "mobile", 1, NULL,
         "+44 7** *** **5 6"},
        {"+44 (0) 7400 123456", "GB", V, "+447400123456", "GB", "mobile", 1,
         NULL, "+44 7** *** **5 6"},
        {"+44 20 7946 0018", "GB", V, "+442079460018", "GB", "fixed_line", 0,
         NULL, "+44 2** *** **1 8"},
        {"0161 496 0000", "GB", V, "+441614960000", "GB", "fixed_line", 0, NULL,
         "+44 1** *** **0 0"},
        /* The classic example number is a Guernsey mobile in the metadata:
         * the number's region is GG, not the GB it was parsed for. */
        {"07911 123456", "GB", V, "+447911123456", "GG", "mobile", 1, NULL,
         "+44 7** *** **5 6"},
        /* Ofcom's drama range is not allocated, so not valid. */
        {"07700 900123", "GB", I, NULL, NULL, NULL, 0, "invalid for region",
         NULL},
        /* United States and Canada: mobile and fixed share ranges. */
        {"(650) 253-0000", "US", V, "+16502530000", "US",
         "fixed_line_or_mobile", 1, NULL, "+1 6** *** **0 0"},
        {"1-212-555-0100", "US", V, "+12125550100", "US",
         "fixed_line_or_mobile", 1, NULL, "+1 2** *** **0 0"},
        {"650.253.0000", "US", V, "+16502530000", "US", "fixed_line_or_mobile",
         1, NULL, "+1 6** *** **0 0"},
        {"+1 (212) 736-5000", "US", V, "+12127365000", "US",
         "fixed_line_or_mobile", 1, NULL, "+1 2** *** **0 0"},
        {"+1 416 555 0123", "NL", V, "+14165550123", "CA",
         "fixed_line_or_mobile", 1, NULL, "+1 4** *** **2 3"},
        {"+1 800 555 0100", "NL", V, "+18005550100", "US", "toll_free", 0, NULL,
         "+1 8** *** **0 0"},
        {"650 253 000", "US", I, NULL, NULL, NULL, 0, "too short", NULL},
        /* India */
        {"+91 98765 43210", "IN", V, "+919876543210", "IN", "mobile", 1, NULL,
         "+91 9** *** **1 0"},
        {"098765 43210", "IN", V, "+919876543210", "IN", "mobile", 1, NULL,
         "+91 9** *** **1 0"},
        {"9876543210", "IN", V, "+919876543210", "IN", "mobile", 1, NULL,
         "+91 9** *** **1 0"},
        {"011 2345 6789", "IN", V, "+911123456789", "IN", "fixed_line", 0, NULL,
         "+91 1** *** **8 9"},
        {"+91-11-23456789", "IN", V, "+911123456789", "IN", "fixed_line", 0,
         NULL, "+91 1** *** **8 9"},
        {"1800 123 4567", "IN", V, "+9118001234567", "IN", "toll_free", 0, NULL,
         "+91 1** *** *** 67"},
        /* France */
        {"06 12 34 56 78", "FR", V, "+33612345678", "FR", "mobile", 1, NULL,
         "+33 6** *** *78"},
        {"0033 6 12 34 56 78", "FR", V, "+33612345678", "FR", "mobile", 1, NULL,
         "+33 6** *** *78"},
        {"01 23 45 67 89", "FR", V, "+33123456789", "FR", "fixed_line", 0, NULL,
         "+33 1** *** *89"},
        {"+33 (0)1 23 45 67 89", "FR", V, "+33123456789", "FR", "fixed_line", 0,
         NULL, "+33 1** *** *89"},
        {"0800 12 34 56", "FR", V, "+33800123456", "FR", "toll_free", 0, NULL,
         "+33 8** *** *56"},
        {"09 12 34 56 78", "FR", V, "+33912345678", "FR", "voip", 0, NULL,
         "+33 9** *** *78"},
        {"08 92 12 34 56", "FR", V, "+33892123456", "FR", "premium_rate", 0,
         NULL, "+33 8** *** *56"},
        /* 07 1x was not allocated to mobiles in the 2022 metadata. */
        {"07 12 34 56 78", "FR", I, NULL, NULL, NULL, 0, "invalid for region",
         NULL},
    };

    (void)state;
    check_rows(rows, N(rows));
}

static void
test_prefixes_and_regions(void **state)
{
    static const struct row rows[] = {
        /* 00 and other international prefixes of the given region */
        {"0031 6 12345678", "NL", V, "+31612345678", "NL", "mobile", 1, NULL,
         "+31 6** *** *78"},
        {"0032 470 123456", "NL", V, "+32470123456", "BE", "mobile", 1, NULL,
         "+32 4** *** *56"},
        {"0044 7400 123456", "NL", V, "+447400123456", "GB", "mobile", 1, NULL,
         "+44 7** *** **5 6"},
        {"0049 30 1234567", "NL", V, "+49301234567", "DE", "fixed_line", 0,
         NULL, "+49 3** *** *67"},
        {"011 31 6 12345678", "US", V, "+31612345678", "NL", "mobile", 1, NULL,
         "+31 6** *** *78"},
        /* "+" wins over the region, which may be anything then */
        {"+31612345678", NULL, V, "+31612345678", "NL", "mobile", 1, NULL,
         "+31 6** *** *78"},
        {"+31612345678", "XX", V, "+31612345678", "NL", "mobile", 1, NULL,
         "+31 6** *** *78"},
        {"+31612345678", "US", V, "+31612345678", "NL", "mobile", 1, NULL,
         "+31 6** *** *78"},
        {"++31612345678", "NL", V, "+31612345678", "NL", "mobile", 1, NULL,
         "+31 6** *** *78"},
        /* region in any case */
        {"06 12345678", "nl", V, "+31612345678", "NL", "mobile", 1, NULL,
         "+31 6** *** *78"},
        /* full-width digits (U+FF10..) are digits */
        {"+31 \xef\xbc\x96\xef\xbc\x91\xef\xbc\x92\xef\xbc\x93\xef\xbc\x94"
         "\xef\xbc\x95\xef\xbc\x96\xef\xbc\x97\xef\xbc\x98",
         "NL", V, "+31612345678", "NL", "mobile", 1, NULL, "+31 6** *** *78"},
        /* a non-geographic number: valid, but no region */
        {"+800 1234 5678", "NL", V, "+80012345678", NULL, "toll_free", 0, NULL,
         "+800 1** *** 78"},
        /* national format needs a known region */
        {"06 12345678", NULL, I, NULL, NULL, NULL, 0, "invalid country code",
         NULL},
        {"06 12345678", "", I, NULL, NULL, NULL, 0, "invalid country code",
         NULL},
        {"06 12345678", "XX", I, NULL, NULL, NULL, 0, "invalid country code",
         NULL},
        {"06 12345678", "NLD", I, NULL, NULL, NULL, 0, "invalid country code",
         NULL},
        /* wrong region: a Dutch mobile read as Belgian, and back */
        {"06 12345678", "BE", I, NULL, NULL, NULL, 0, "invalid for region",
         NULL},
        {"0470 12 34 56", "NL", I, NULL, NULL, NULL, 0, "invalid for region",
         NULL},
        /* ... and the trap: read as German it is a valid fixed line
         * (Wiesbaden area), so the contact's country matters. */
        {"06 12345678", "DE", V, "+49612345678", "DE", "fixed_line", 0, NULL,
         "+49 6** *** *78"},
        /* given with its country code, not valid anywhere */
        {"+32 9 123 45 67", "NL", I, NULL, NULL, NULL, 0, "invalid number",
         NULL},
        {"+31 6 1234", "NL", I, NULL, NULL, NULL, 0, "invalid number", NULL},
        {"+999 123456", "NL", I, NULL, NULL, NULL, 0, "invalid country code",
         NULL},
    };

    (void)state;
    check_rows(rows, N(rows));
}

static void
test_refused(void **state)
{
    static const struct row rows[] = {
        /* missing */
        {NULL, "NL", M, NULL, NULL, NULL, 0, NULL, NULL},
        {"", "NL", M, NULL, NULL, NULL, 0, NULL, NULL},
        {"   ", "NL", M, NULL, NULL, NULL, 0, NULL, NULL},
        {" \t\r\n ", "NL", M, NULL, NULL, NULL, 0, NULL, NULL},
        /* too short / too long */
        {"06 12", "NL", I, NULL, NULL, NULL, 0, "too short", NULL},
        {"+31 6 12", "NL", I, NULL, NULL, NULL, 0, "too short", NULL},
        {"+316", "NL", I, NULL, NULL, NULL, 0, "too short", NULL},
        {"00", "NL", I, NULL, NULL, NULL, 0, "too short", NULL},
        {"0612345678901", "NL", I, NULL, NULL, NULL, 0, "too long", NULL},
        {"+3161234567890123456", "NL", I, NULL, NULL, NULL, 0, "too long",
         NULL},
        /* two numbers in one field */
        {"06 1234 5678 / 06 8765 4321", "NL", I, NULL, NULL, NULL, 0,
         "too long", NULL},
        /* letters: libphonenumber would dial 0800-FLOWERS as digits */
        {"0800-FLOWERS", "NL", I, NULL, NULL, NULL, 0, "contains letters",
         NULL},
        {"06 1234 567x", "NL", I, NULL, NULL, NULL, 0, "contains letters",
         NULL},
        {"06 12345678 (mobiel)", "NL", I, NULL, NULL, NULL, 0,
         "contains letters", NULL},
        {"abc", "NL", I, NULL, NULL, NULL, 0, "contains letters", NULL},
        {"n/a", "NL", I, NULL, NULL, NULL, 0, "contains letters", NULL},
        /* extensions, which Parse() keeps quietly in a field */
        {"+31 20 123 4567 ext 12", "NL", I, NULL, NULL, NULL, 0,
         "has an extension", NULL},
        {"+31 6 12345678 x12", "NL", I, NULL, NULL, NULL, 0, "has an extension",
         NULL},
        {"+31 6 1234 5678 #12", "NL", I, NULL, NULL, NULL, 0,
         "has an extension", NULL},
        {"+31 20 123 4567,,12", "NL", I, NULL, NULL, NULL, 0,
         "has an extension", NULL},
        {"+31 6 12345678;ext=1", "NL", I, NULL, NULL, NULL, 0,
         "has an extension", NULL},
        {"(650) 253-0000 ext. 123", "US", I, NULL, NULL, NULL, 0,
         "has an extension", NULL},
        /* garbage */
        {"+", "NL", I, NULL, NULL, NULL, 0, "not a number", NULL},
        {"++", "NL", I, NULL, NULL, NULL, 0, "not a number", NULL},
        {"+31", "NL", I, NULL, NULL, NULL, 0, "not a number", NULL},
        {"---", "NL", I, NULL, NULL, NULL, 0, "not a number", NULL},
        {"(((", "NL", I, NULL, NULL, NULL, 0, "not a number", NULL},
        {"0", "NL", I, NULL, NULL, NULL, 0, "not a number", NULL},
        {"06 12345678 #", "NL", I, NULL, NULL, NULL, 0, "not a number", NULL},
        {"06\xff"
         "12345678",
         "NL", I, NULL, NULL, NULL, 0, "not a number", NULL},
    };

    (void)state;
    check_rows(rows, N(rows));
}

/* The 64-byte cap is checked before libphonenumber sees the input. */
/* What contact-sync stores reads back as itself: Parse() of
 * "+52 1167345671 89" gives +5216734567189, whose own parse drops the old
 * Mexican mobile "1" (found by tests/fuzz); the stored form is the one
 * that stays put. */
static void
test_canonical(void **state)
{
    static const char *const inputs[][2] = {
        {"+52 1167345671 89", "DE"},
        {"+5216734567189", NULL},
        {"+52 1 55 1234 5678", NULL},
        {"+31 6 12345678", NULL},
    };
    struct phone_result r, again;

    (void)state;
    assert_int_equal(phone_check(inputs[0][0], inputs[0][1], &r), 0);
    assert_int_equal(r.status, PHONE_VALID);
    assert_string_equal(r.e164, "+526734567189");
    for (size_t i = 0; i < N(inputs); i++) {
        assert_int_equal(phone_check(inputs[i][0], inputs[i][1], &r), 0);
        assert_int_equal(r.status, PHONE_VALID);
        assert_int_equal(phone_check(r.e164, NULL, &again), 0);
        assert_int_equal(again.status, PHONE_VALID);
        assert_string_equal(again.e164, r.e164);
        assert_string_equal(again.type, r.type);
        assert_string_equal(again.region, r.region);
    }
}

static void
test_length_cap(void **state)
{
    struct phone_result r;
    char in[PHONE_INPUT_MAX + 2];

    (void)state;
    assert_int_equal(PHONE_INPUT_MAX, 64);

    /* exactly 64 bytes: a number padded with spaces still parses */
    memset(in, ' ', sizeof(in));
    memcpy(in, "06 12345678", 11);
    in[PHONE_INPUT_MAX] = '\0';
    assert_int_equal(phone_check(in, "NL", &r), 0);
    assert_int_equal(r.status, PHONE_VALID);
    assert_string_equal(r.e164, "+31612345678");

    /* 65 bytes: refused, whatever they hold */
    in[PHONE_INPUT_MAX] = ' ';
    in[PHONE_INPUT_MAX + 1] = '\0';
    assert_int_equal(phone_check(in, "NL", &r), 0);
    assert_int_equal(r.status, PHONE_INVALID);
    assert_string_equal(r.reason, "too long");
    assert_string_equal(r.e164, "");

    /* ... but 65 bytes of whitespace are still just missing */
    memset(in, ' ', PHONE_INPUT_MAX + 1);
    assert_int_equal(phone_check(in, "NL", &r), 0);
    assert_int_equal(r.status, PHONE_MISSING);
    assert_string_equal(r.reason, "");

    /* a long string of digits */
    memset(in, '1', PHONE_INPUT_MAX + 1);
    assert_int_equal(phone_check(in, "NL", &r), 0);
    assert_int_equal(r.status, PHONE_INVALID);
    assert_string_equal(r.reason, "too long");
}

static void
test_check_errors(void **state)
{
    struct phone_result r;

    (void)state;
    assert_int_equal(phone_check("06 12345678", "NL", NULL), -1);
    /* a previous result never leaks into the next one */
    assert_int_equal(phone_check("06 12345678", "NL", &r), 0);
    assert_int_equal(phone_check("", "NL", &r), 0);
    assert_int_equal(r.status, PHONE_MISSING);
    assert_string_equal(r.e164, "");
    assert_string_equal(r.type, "");
    assert_int_equal(r.sms_capable, 0);
}

static void
test_mask(void **state)
{
    static const struct {
        const char *in, *want;
    } rows[] = {
        {"+31612345678", "+31 6** *** *78"},
        {"+16502530000", "+1 6** *** **0 0"},
        {"+4915123456789", "+49 1** *** *** 89"},
        {"+318001234", "+31 8** **3 4"},
        /* Calling codes of 1, 2 and 3 digits, shared ones among them
         * (+1, +7, +39, +44): each output is what the libphonenumber parse
         * this mask used to run gave for the same valid number. */
        {"+12015550123", "+1 2** *** **2 3"},
        {"+447400123456", "+44 7** *** **5 6"},
        {"+442071838750", "+44 2** *** **5 0"},
        {"+393123456789", "+39 3** *** **8 9"},
        {"+390236618300", "+39 0** *** **0 0"}, /* Italian leading zero */
        {"+390669812345", "+39 0** *** **4 5"}, /* +39 06 698: Vatican */
        {"+352621123456", "+352 6** *** *56"},
        {"+35227123", "+352 2** **"}, /* a valid 5-digit LU number */
        {"+79123456789", "+7 9** *** **8 9"},
        {"+77012345678", "+7 7** *** **7 8"},
        {"+358401234567", "+358 4** *** *67"},
        {"+35891234567", "+358 9** *** 67"},
        {"+420601123456", "+420 6** *** *56"},
        {"+80012345678", "+800 1** *** 78"}, /* non-geographic */
        {"+6834002", "+683 4** *"},          /* Niue: 4 digits */
        /* short national numbers show only their first digit */
        {"+31612", "+31 6**"},
        {"+3161234", "+31 6** **"},
        {"+31612345", "+31 6** *45"},
        {"+3112", "+31 1*"},
        {"+123", "+1 2*"},
        /* under two digits after the calling code: no number at all */
        {"+311", "***"},
        {"+12", "***"},
        {"+1", "***"},
        /* not E.164: never echoed */
        {NULL, "***"},
        {"", "***"},
        {"+", "***"},
        {"31612345678", "***"},
        {"0612345678", "***"},
        {"+31 6 12345678", "***"},
        {"+31-612345678", "***"},
        {"+3161234567x", "***"},
        {"+9991234567", "***"},
        /* no calling code starts with 0 */
        {"+0031612345678", "***"},
        {"+3161234567890123456", "***"}, /* over 15 digits */
    };
    char out[32];
    size_t i;

    (void)state;
    for (i = 0; i < N(rows); i++) {
        memset(out, 'Z', sizeof(out));
        phone_mask(rows[i].in, out, sizeof(out));
        if (strcmp(out, rows[i].want) != 0)
            fail_msg("mask row %zu \"%s\": got \"%s\", want \"%s\"", i,
                     rows[i].in ? rows[i].in : "(null)", out, rows[i].want);
    }

    /* "+31 6** *** *78" is 15 bytes: 16 fit, 15 fall back to "***" */
    phone_mask("+31612345678", out, 16);
    assert_string_equal(out, "+31 6** *** *78");
    phone_mask("+31612345678", out, 15);
    assert_string_equal(out, "***");
    phone_mask("+31612345678", out, 4);
    assert_string_equal(out, "***");
    memset(out, 'Z', sizeof(out));
    phone_mask("+31612345678", out, 3);
    assert_string_equal(out, "");
    assert_int_equal(out[1], 'Z'); /* nothing written past n */
    memset(out, 'Z', sizeof(out));
    phone_mask("+31612345678", out, 0);
    assert_int_equal(out[0], 'Z');
    phone_mask("+31612345678", NULL, 10); /* no crash */
}

static void
test_region_of(void **state)
{
    static const struct {
        const char *in;
        int rc;
        const char *want;
    } rows[] = {
        {"+31612345678", 0, "NL"},
        {"+32470123456", 0, "BE"},
        {"+4915123456789", 0, "DE"},
        {"+447400123456", 0, "GB"},
        {"+447911123456", 0, "GG"},
        {"+16502530000", 0, "US"},
        {"+14165550123", 0, "CA"},
        {"+919876543210", 0, "IN"},
        {"+33612345678", 0, "FR"},
        /* one region per calling code: named without the number patterns */
        {"+352621123456", 0, "LU"},
        {"+358401234567", 0, "FI"},
        {"+420601123456", 0, "CZ"},
        {"+6834002", 0, "NU"},
        {"+3112", 0, "NL"}, /* too short to be valid, but +31 is NL */
        /* shared calling codes: the regions' patterns decide */
        {"+79123456789", 0, "RU"},
        {"+77012345678", 0, "KZ"},
        {"+393123456789", 0, "IT"},
        {"+390669812345", 0, "VA"},
        {"+80012345678", -1, ""}, /* non-geographic ("001") */
        {"+311", -1, ""},         /* under two digits after the code */
        {"+9991234567", -1, ""},
        {"+1999", -1, ""}, /* +1 but no valid NANP number: region unknown */
        {"31612345678", -1, ""},
        {"+31 612345678", -1, ""},
        {"", -1, ""},
        {NULL, -1, ""},
    };
    char out[3];
    size_t i;

    (void)state;
    for (i = 0; i < N(rows); i++) {
        int rc;

        memcpy(out, "QQ", 3);
        rc = phone_region_of(rows[i].in, out);
        if (rc != rows[i].rc || strcmp(out, rows[i].want) != 0)
            fail_msg("region_of row %zu \"%s\": got %d \"%s\", want %d \"%s\"",
                     i, rows[i].in ? rows[i].in : "(null)", rc, out, rows[i].rc,
                     rows[i].want);
    }
    assert_int_equal(phone_region_of("+31612345678", NULL), -1);
}

static void
test_region_ok(void **state)
{
    static const struct {
        const char *in;
        int want;
    } rows[] = {
        {"NL", 1}, {"nl", 1}, {"Nl", 1}, {"BE", 1},  {"DE", 1},  {"GB", 1},
        {"GG", 1}, {"US", 1}, {"CA", 1}, {"IN", 1},  {"FR", 1},  {"UK", 0},
        {"ZZ", 0}, {"XX", 0}, {"EU", 0}, {"001", 0}, {"NLD", 0}, {"N", 0},
        {"", 0},   {"N1", 0}, {"  ", 0}, {NULL, 0},
    };
    size_t i;

    (void)state;
    for (i = 0; i < N(rows); i++)
        if (phone_region_ok(rows[i].in) != rows[i].want)
            fail_msg("region_ok row %zu \"%s\": want %d", i,
                     rows[i].in ? rows[i].in : "(null)", rows[i].want);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_national_and_international),
        cmocka_unit_test(test_prefixes_and_regions),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_length_cap),
        cmocka_unit_test(test_canonical),
        cmocka_unit_test(test_check_errors),
        cmocka_unit_test(test_mask),
        cmocka_unit_test(test_region_of),
        cmocka_unit_test(test_region_ok),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
