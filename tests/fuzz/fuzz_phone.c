/*
 * fuzz_phone.c - libFuzzer target for the libphonenumber shim (mfa/phone.h).
 *
 * Input: the first 2 bytes are the region (as the contact's country or the
 * configured default would give it, any bytes), the rest is the phone
 * number as the CRM holds it. phone_check() classifies it; a valid number
 * is checked again in its E.164 form (what contact-sync stores and the
 * other workers read back), masked at several buffer sizes and mapped to
 * its region. phone_mask() also gets the raw input: callers mask whatever
 * they are about to log.
 *
 * Security notes: the checks are the header's promises that reach logs,
 * replies and the SMS policy: no C++ exception escapes (-1), reasons are
 * the documented fixed strings, letters and over-long input never pass,
 * and a mask never shows more than the country code and three digits.
 */
#include "fuzz.h"
#include "mfa/phone.h"

#include <sodium.h>

static const char *const reasons[] = {
    "not a number",
    "too short",
    "too long",
    "invalid length",
    "missing area code",
    "invalid country code",
    "invalid for region",
    "invalid number",
    "has an extension",
    "contains letters",
    NULL,
};

static const char *const types[] = {
    "mobile",
    "fixed_line",
    "fixed_line_or_mobile",
    "toll_free",
    "premium_rate",
    "voip",
    "pager",
    "uan",
    "voicemail",
    "shared_cost",
    "personal_number",
    "unknown",
    NULL,
};

static int
in_list(const char *const *list, const char *s)
{
    for (size_t i = 0; list[i] != NULL; i++)
        if (strcmp(list[i], s) == 0)
            return 1;
    return 0;
}

/* "+" and 1..15 digits. */
static int
is_e164(const char *s)
{
    size_t n = strlen(s);

    return n >= 2 && n <= 16 && s[0] == '+' &&
           strspn(s + 1, "0123456789") == n - 1;
}

static int
is_blank(const char *s)
{
    return s[strspn(s, " \t\r\n\v\f")] == '\0';
}

static int
has_letter(const char *s)
{
    for (; *s != '\0'; s++)
        if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))
            return 1;
    return 0;
}

/*
 * phone_mask() at buffer size n: terminated within n, and either the
 * fallback or "+<cc>" then groups with at most three digits visible (one
 * when the national number is under 6 digits).
 */
static void
check_mask(const char *e164, size_t n, int valid)
{
    char out[80];
    size_t len, digits = 0, stars = 0, cc;

    memset(out, 'Z', sizeof(out));
    phone_mask(e164, out, n);
    if (n == 0) {
        FUZZ_CHECK(out[0] == 'Z'); /* nothing written */
        return;
    }
    len = strnlen(out, n);
    FUZZ_CHECK(len < n);
    if (strcmp(out, "***") == 0 || out[0] == '\0') {
        FUZZ_CHECK(n <= 3 ? out[0] == '\0' : strcmp(out, "***") == 0);
        return;
    }
    FUZZ_CHECK(e164 != NULL && is_e164(e164));
    FUZZ_CHECK(out[0] == '+');
    cc = strspn(out + 1, "0123456789");
    FUZZ_CHECK(cc >= 1 && cc <= 3 && out[1 + cc] == ' ');
    FUZZ_CHECK(strncmp(out, e164, 1 + cc) == 0);
    for (const char *p = out + 1 + cc; *p != '\0'; p++) {
        FUZZ_CHECK(*p == ' ' || *p == '*' || (*p >= '0' && *p <= '9'));
        digits += *p >= '0' && *p <= '9';
        stars += *p == '*';
    }
    FUZZ_CHECK(digits >= 1 && digits <= 3);
    FUZZ_CHECK(digits + stars < 6 ? digits == 1 : 1);
    /* A canonical number (phone_check's e164): one mask character per
     * digit, so the mask hides digits rather than dropping them. */
    if (valid)
        FUZZ_CHECK(1 + cc + digits + stars == strlen(e164));
}

static void
check_valid(const struct phone_result *r)
{
    struct phone_result again;
    char region[3];

    FUZZ_CHECK(is_e164(r->e164));
    FUZZ_CHECK(r->reason[0] == '\0');
    FUZZ_CHECK(in_list(types, r->type));
    FUZZ_CHECK(r->sms_capable ==
               (strcmp(r->type, "mobile") == 0 ||
                strcmp(r->type, "fixed_line_or_mobile") == 0));
    FUZZ_CHECK(r->region[0] == '\0' ||
               (strlen(r->region) == 2 && r->region[0] >= 'A' &&
                r->region[0] <= 'Z' && r->region[1] >= 'A' &&
                r->region[1] <= 'Z'));

    /* What contact-sync stores must read back the same everywhere. */
    FUZZ_CHECK(phone_check(r->e164, NULL, &again) == 0);
    FUZZ_CHECK(again.status == PHONE_VALID);
    FUZZ_CHECK(strcmp(again.e164, r->e164) == 0);
    FUZZ_CHECK(strcmp(again.region, r->region) == 0);
    FUZZ_CHECK(strcmp(again.type, r->type) == 0);
    if (r->region[0] != '\0') {
        FUZZ_CHECK(phone_region_of(r->e164, region) == 0);
        FUZZ_CHECK(strcmp(region, r->region) == 0);
        FUZZ_CHECK(phone_region_ok(r->region) == 1);
    } else {
        FUZZ_CHECK(phone_region_of(r->e164, region) == -1);
        FUZZ_CHECK(region[0] == '\0');
    }
    /* The masks: the full size a hint uses, and tight ones. */
    for (size_t n = 0; n <= 24; n++)
        check_mask(r->e164, n, 1);
    check_mask(r->e164, 64, 1);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct phone_result r;

    (void)argc;
    (void)argv;
    if (sodium_init() < 0)
        abort();
    /* Build libphonenumber's singleton now, not inside the first input
     * (its metadata would look like a leak of that input). */
    if (phone_check("+31612345678", "NL", &r) != 0)
        abort();
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct phone_result r;
    char region[3] = "", out_region[3];
    char *input;
    size_t rlen = size < 2 ? size : 2;

    memcpy(region, data, rlen);
    region[rlen] = '\0';
    input = fuzz_cstr(data + rlen, size - rlen);

    (void)phone_region_ok(region);
    FUZZ_CHECK(phone_check(input, region, &r) == 0);
    switch (r.status) {
    case PHONE_MISSING:
        FUZZ_CHECK(is_blank(input));
        FUZZ_CHECK(r.e164[0] == '\0' && r.reason[0] == '\0');
        break;
    case PHONE_VALID:
        FUZZ_CHECK(!is_blank(input));
        FUZZ_CHECK(!has_letter(input));
        FUZZ_CHECK(strlen(input) <= PHONE_INPUT_MAX);
        check_valid(&r);
        break;
    case PHONE_INVALID:
        FUZZ_CHECK(!is_blank(input));
        FUZZ_CHECK(in_list(reasons, r.reason));
        FUZZ_CHECK(r.e164[0] == '\0' && r.region[0] == '\0' &&
                   r.type[0] == '\0' && r.sms_capable == 0);
        if (strlen(input) > PHONE_INPUT_MAX)
            FUZZ_CHECK(strcmp(r.reason, "too long") == 0);
        break;
    default: FUZZ_CHECK(!"unknown status");
    }
    if (has_letter(input) && r.status != PHONE_MISSING)
        FUZZ_CHECK(r.status == PHONE_INVALID);

    /* Whatever a caller might mask before logging it. */
    check_mask(input, 64, 0);
    check_mask(input, 4, 0);
    if (phone_region_of(input, out_region) == 0)
        FUZZ_CHECK(strlen(out_region) == 2 && is_e164(input));
    else
        FUZZ_CHECK(out_region[0] == '\0');
    free(input);
    return 0;
}
