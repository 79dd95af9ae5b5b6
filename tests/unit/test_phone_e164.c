/*
 * test_phone_e164.c - unit tests for mfa/phone_e164 (E.164 form, split and
 * masks in plain C, over the calling codes generated from libphonenumber).
 *
 * The masks are the ones phone.cc made with libphonenumber before the
 * split moved here (8.12.57, Debian 12), byte for byte: shared calling
 * codes (+1, +7, +44), Italian leading zeros, the non-geographic +800,
 * +881, +882 and +883, and codes no region has. test_phone.c's mask table
 * runs against this code too. A failing row names itself.
 */
#include "mfa/phone_e164.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void
test_known_masks(void **state)
{
    static const struct {
        const char *in, *want;
    } rows[] = {
        /* +1 and +7: one code, many regions; the split needs no region */
        {"+12025550123", "+1 2** *** **2 3"},
        {"+15005550006", "+1 5** *** **0 6"},
        {"+16135550123", "+1 6** *** **2 3"},
        {"+1242", "+1 2**"},
        {"+79123456789", "+7 9** *** **8 9"},
        {"+74951234567", "+7 4** *** **6 7"},
        /* +44: GB and the crown dependencies */
        {"+447911123456", "+44 7** *** **5 6"},
        {"+441481123456", "+44 1** *** **5 6"},
        /* +39: the leading zero belongs to the national number */
        {"+390612345678", "+39 0** *** **7 8"},
        {"+39061234567", "+39 0** *** *67"},
        {"+3902", "+39 0*"},
        /* non-geographic codes */
        {"+800123456", "+800 1** *56"},
        {"+80012345678", "+800 1** *** 78"},
        {"+881612345678", "+881 6** *** *78"},
        {"+882345678901", "+882 3** *** *01"},
        {"+8823456", "+882 3** *"},
        {"+883510012345", "+883 5** *** *45"},
        {"+88351001234567", "+883 5** *** *** 67"},
        {"+979123456789", "+979 1** *** *89"},
        /* three-digit codes next to unused two-digit prefixes */
        {"+38012345678", "+380 1** *** 78"},
        {"+42012", "+420 1*"},
        {"+421912123456", "+421 9** *** *56"},
        /* codes no region has, a leading 0, nothing after the code */
        {"+999123456789", "***"},
        {"+2101234567", "***"},
        {"+801234567", "***"},
        {"+0123456789", "***"},
        {"+00", "***"},
        {"+3", "***"},
        {"+4", "***"},
        {"+12", "***"},
        {"+7", "***"},
        {"+44", "***"},
        /* not E.164 */
        {"+44 7911 123456", "***"},
        {"447911123456", "***"},
        {"+4479111234567890", "***"}, /* 16 digits */
        {NULL, "***"},
    };
    char out[32];

    (void)state;
    for (size_t i = 0; i < N(rows); i++) {
        memset(out, 'Z', sizeof(out));
        phone_mask(rows[i].in, out, sizeof(out));
        if (strcmp(out, rows[i].want) != 0)
            fail_msg("mask row %zu \"%s\": got \"%s\", want \"%s\"", i,
                     rows[i].in ? rows[i].in : "(null)", out, rows[i].want);
    }
    /* The longest mask (15 digits, a 3-digit code) fits in 24 bytes. */
    phone_mask("+883510012345678", out, 24);
    assert_string_equal(out, "+883 5** *** *** *78");
    phone_mask("+883510012345678", out, 20);
    assert_string_equal(out, "***");
}

static void
test_split(void **state)
{
    const char *nsn = NULL;
    int cc = 0;

    (void)state;
    assert_int_equal(phone_e164_split("+31612345678", &cc, &nsn), 1);
    assert_int_equal(cc, 31);
    assert_string_equal(nsn, "612345678");
    assert_int_equal(phone_e164_split("+390612345678", &cc, &nsn), 1);
    assert_int_equal(cc, 39);
    assert_string_equal(nsn, "0612345678");
    assert_int_equal(phone_e164_split("+12025550123", &cc, &nsn), 1);
    assert_int_equal(cc, 1);
    assert_int_equal(phone_e164_split("+80012345678", &cc, &nsn), 1);
    assert_int_equal(cc, 800);
    assert_string_equal(nsn, "12345678");
    /* refused: unknown code, leading 0, under PHONE_NSN_MIN digits left,
     * not E.164 */
    assert_int_equal(phone_e164_split("+999123456789", &cc, &nsn), 0);
    assert_int_equal(phone_e164_split("+031612345678", &cc, &nsn), 0);
    assert_int_equal(phone_e164_split("+311", &cc, &nsn), 0);
    assert_int_equal(phone_e164_split("+3161234567890123", &cc, &nsn), 0);
    assert_int_equal(phone_e164_split("31612345678", &cc, &nsn), 0);
    assert_int_equal(phone_e164_split(NULL, &cc, &nsn), 0);
}

static void
test_check(void **state)
{
    static const struct {
        const char *in;
        size_t min;
        const char *why; /* NULL: the form is right */
    } rows[] = {
        {"+15005550006", 8, NULL},
        {"+31612345678", 8, NULL},
        {"+80012345678", 8, NULL},
        {"+390612345678", 8, NULL},
        {"+447911123456789", 8, NULL}, /* 15 digits: form, not validity */
        {"+15551234567", 8, NULL},     /* valid form, invalid number */
        {"+6834002", 8, "too short"},  /* Niue: valid, but 7 digits */
        {"+6834002", 7, NULL},
        {"+3161234", 8, "too short"},
        {"+311", 1, "too short"}, /* one digit after the calling code */
        {"+4479111234567890", 8, "too long"},
        {"+031612345678", 8, "leading zero"},
        {"+999123456789", 8, "invalid country code"},
        {"+2101234567", 8, "invalid country code"},
        {"31612345678", 8, "no leading +"},
        {"+31 612345678", 8, "not only digits"},
        {"+31612345678 ", 8, "not only digits"},
        {"+", 8, "too short"},
        {"", 8, "missing"},
        {NULL, 8, "missing"},
    };

    (void)state;
    for (size_t i = 0; i < N(rows); i++) {
        const char *why = phone_e164_check(rows[i].in, rows[i].min);
        const char *in = rows[i].in ? rows[i].in : "(null)";

        if (rows[i].why == NULL && why != NULL)
            fail_msg("check row %zu \"%s\": refused (%s)", i, in, why);
        if (rows[i].why != NULL &&
            (why == NULL || strcmp(why, rows[i].why) != 0))
            fail_msg("check row %zu \"%s\": got %s, want %s", i, in,
                     why ? why : "NULL", rows[i].why);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_masks),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_check),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
