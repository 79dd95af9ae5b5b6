/*
 * test_scrub.c - unit tests for mfa/scrub: addresses and numbers masked
 * inside provider texts, nothing unmasked left beside a mask, terminal-
 * safe output, and the cap. Got/want tables; a failing row names itself.
 */
#include "mfa/scrub.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

struct row {
    const char *in, *want;
};

static void
check_rows(const struct row *rows, size_t n)
{
    char out[512];

    for (size_t i = 0; i < n; i++) {
        scrub_text(rows[i].in, out, sizeof(out));
        if (strcmp(out, rows[i].want) != 0)
            fail_msg("row %zu: scrub(\"%s\") = \"%s\", want \"%s\"", i,
                     rows[i].in, out, rows[i].want);
    }
}

static void
test_plain_text_unchanged(void **state)
{
    static const struct row rows[] = {
        {"", ""},
        {"421 4.7.0 try again later", "421 4.7.0 try again later"},
        {"a+b = c", "a+b = c"},
        {"21211 Invalid 'To' Phone Number", "21211 Invalid 'To' Phone Number"},
        {"@example.com", "@example.com"},
        {"1 + 1", "1 + 1"},
    };

    (void)state;
    check_rows(rows, N(rows));
}

static void
test_emails_masked(void **state)
{
    static const struct row rows[] = {
        {"jane@example.com", "j***@example.com"},
        {"550 5.1.1 <jane.doe@example.com>: Recipient address rejected",
         "550 5.1.1 <j***@example.com>: Recipient address rejected"},
        /* nothing of the local part stays beside the mask */
        {"jane+tag@example.com", "j***@example.com"},
        {"o'brien@example.ie", "o***@example.ie"},
        {"to:jane@example.com,bob@example.org",
         "to:j***@example.com,b***@example.org"},
        {"'jane@example.com'", "'***@example.com'"},
        /* anything address-like that does not mask cleanly goes whole */
        {"x@ y", "*** y"},
    };

    (void)state;
    check_rows(rows, N(rows));
}

static void
test_numbers_masked(void **state)
{
    static const struct row rows[] = {
        {"The 'To' number +31612345678 is not a valid phone number.",
         "The 'To' number +31 6** *** *78 is not a valid phone number."},
        {"+31612345678", "+31 6** *** *78"},
        {"call+31612345678", "call+31 6** *** *78"},
        /* too long for E.164: masked whole, not copied */
        {"+12345678901234567890", "***"},
        /* no country code we know: still not shown */
        {"+999123456", "***"},
    };

    (void)state;
    check_rows(rows, N(rows));
}

static void
test_terminal_safe(void **state)
{
    char out[64];

    (void)state;
    scrub_text("bad\x1b[31m\r\nend", out, sizeof(out));
    assert_string_equal(out, "bad?[31m??end");
    scrub_text("caf\xc3\xa9", out, sizeof(out));
    assert_string_equal(out, "caf??");
    scrub_text(NULL, out, sizeof(out));
    assert_string_equal(out, "");
}

static void
test_cap_never_leaks(void **state)
{
    char small[12], big[600];

    (void)state;
    /* the mask does not fit: it is cut, never replaced by the address */
    scrub_text("<jane.doe@example.com>", small, sizeof(small));
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_null(strstr(small, "jane"));
    assert_string_equal(small, "<j***@examp");
    /* an address longer than any valid one */
    memset(big, 'a', 300);
    memcpy(big + 300, "@example.com", 13);
    scrub_text(big, small, sizeof(small));
    assert_string_equal(small, "***");
    scrub_text("abc", small, 1);
    assert_string_equal(small, "");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_text_unchanged),
        cmocka_unit_test(test_emails_masked),
        cmocka_unit_test(test_numbers_masked),
        cmocka_unit_test(test_terminal_safe),
        cmocka_unit_test(test_cap_never_leaks),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
