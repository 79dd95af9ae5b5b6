/* test_sms_text.c - SMS sizing (GSM-7 / UCS-2, segments), rendering with
 * the WebOTP line, and the one-segment check of the shipped sms.txt
 * templates (mfa/sms_text). Run from the repository root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mfa/sms_text.h"

static void
size_of(const char *s, struct sms_size *sz)
{
    assert_int_equal(sms_text_size(s, strlen(s), sz), 0);
}

/* n copies of unit (a UTF-8 string) */
static char *
repeat(const char *unit, size_t n)
{
    size_t u = strlen(unit);
    char *s = calloc(1, u * n + 1);

    for (size_t i = 0; i < n; i++)
        memcpy(s + i * u, unit, u);
    return s;
}

static void
test_gsm7_limits(void **state)
{
    struct sms_size sz;
    char *s;

    (void)state;
    s = repeat("a", 160);
    size_of(s, &sz);
    assert_int_equal(sz.coding, SMS_GSM7);
    assert_int_equal(sz.units, 160);
    assert_int_equal(sz.segments, 1);
    free(s);
    s = repeat("a", 161);
    size_of(s, &sz);
    assert_int_equal(sz.segments, 2); /* 153 + 8 */
    free(s);
    s = repeat("a", 307);
    size_of(s, &sz);
    assert_int_equal(sz.segments, 3); /* 2 x 153 = 306 */
    free(s);
}

static void
test_gsm7_national_letters_and_extension(void **state)
{
    struct sms_size sz;
    char buf[512];
    char *s;

    (void)state;
    /* German and Dutch letters are in the default alphabet. */
    size_of("Bestätigungscode für Müller, Straße, é è à ñ Å Ø Δ £ ¥ § ¿ ¡",
            &sz);
    assert_int_equal(sz.coding, SMS_GSM7);
    /* € [ ] { } ^ ~ | \ take an escape septet each. */
    size_of("€[]{}^~|\\", &sz);
    assert_int_equal(sz.coding, SMS_GSM7);
    assert_int_equal(sz.units, 18);
    s = repeat("a", 159);
    snprintf(buf, sizeof(buf), "%s€", s);
    size_of(buf, &sz);
    assert_int_equal(sz.units, 161);
    assert_int_equal(sz.segments, 2);
    free(s);
}

static void
test_ucs2_limits(void **state)
{
    struct sms_size sz;
    char *s;

    (void)state;
    size_of("`", &sz); /* backtick: not GSM-7 */
    assert_int_equal(sz.coding, SMS_UCS2);
    s = repeat("ł", 70);
    size_of(s, &sz);
    assert_int_equal(sz.coding, SMS_UCS2);
    assert_int_equal(sz.units, 70);
    assert_int_equal(sz.segments, 1);
    free(s);
    s = repeat("ł", 71);
    size_of(s, &sz);
    assert_int_equal(sz.segments, 2); /* 67 + 4 */
    free(s);
    /* Outside the BMP: a surrogate pair, two units. */
    s = repeat("\xF0\x9F\x98\x80", 35);
    size_of(s, &sz);
    assert_int_equal(sz.units, 70);
    assert_int_equal(sz.segments, 1);
    free(s);
    /* One non-GSM character turns the whole text into UCS-2. */
    s = repeat("a", 70);
    s[0] = '`';
    size_of(s, &sz);
    assert_int_equal(sz.coding, SMS_UCS2);
    assert_int_equal(sz.segments, 1);
    free(s);
}

static void
test_bad_utf8(void **state)
{
    static const char *bad[] = {"\xC0\x80", "\xED\xA0\x80", "ab\xE2\x82",
                                "\xF5\x80\x80\x80", "\x80"};
    struct sms_size sz;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(sms_text_size(bad[i], strlen(bad[i]), &sz), -1);
}

static struct tmpl_set *
shipped(void)
{
    char err[512];
    struct tmpl_set *s = tmpl_load("config/templates", "en", sms_template_files,
                                   sms_template_nfiles, err, sizeof(err));

    if (s == NULL)
        fail_msg("%s", err);
    return s;
}

static void
test_render_shipped_with_webotp(void **state)
{
    const char *locs[] = {"de", "en", "nl"};
    struct sms_text_vars v = {"482913", 5, "Customer Portal", "portal.example"};
    struct tmpl_set *s = shipped();
    char err[256];

    (void)state;
    assert_int_equal(tmpl_locale_count(s), 3);
    for (size_t i = 0; i < 3; i++) {
        struct buf b;
        struct sms_size sz;
        const char *last;

        assert_int_equal(sms_text_render(s, locs[i], &v, &b, err, sizeof(err)),
                         0);
        assert_non_null(strstr(b.data, "482913"));
        assert_non_null(strstr(b.data, "Customer Portal"));
        assert_non_null(strstr(b.data, " 5 "));
        last = strrchr(b.data, '\n');
        assert_non_null(last);
        assert_string_equal(last + 1, "@portal.example #482913");
        /* an empty line before the WebOTP line, no trailing newline */
        assert_non_null(strstr(b.data, ".\n\n@portal.example"));
        size_of(b.data, &sz);
        assert_int_equal(sz.coding, SMS_GSM7);
        assert_int_equal(sz.segments, 1);
        buf_free(&b);
    }
    /* without a domain: no WebOTP line, no trailing white space */
    v.webotp_domain = "";
    {
        struct buf b;

        assert_int_equal(sms_text_render(s, "en", &v, &b, err, sizeof(err)), 0);
        assert_null(strchr(b.data, '@'));
        assert_int_not_equal(b.data[b.len - 1], '\n');
        buf_free(&b);
    }
    tmpl_free(s);
}

static void
test_check_shipped_fits_one_segment(void **state)
{
    struct tmpl_set *s = shipped();
    char err[512];

    (void)state;
    if (sms_text_check(s, "config/templates", 10, "Customer Portal",
                       "portal.example", err, sizeof(err)) != 0)
        fail_msg("%s", err);
    tmpl_free(s);
}

static void
test_check_refuses_two_segments(void **state)
{
    struct tmpl_set *s = shipped();
    char err[512];

    (void)state;
    /* A long portal name pushes every locale over 160 septets; the first
     * locale (sorted) is named. */
    assert_int_equal(sms_text_check(s, "config/templates", 10,
                                    "The Very Long Name Of Our Customer "
                                    "Portal For Business Partners",
                                    "portal.example", err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "config/templates/de/sms.txt"));
    assert_non_null(strstr(err, "GSM-7"));
    assert_non_null(strstr(err, "2 SMS segments"));
    /* A name outside GSM-7 makes it UCS-2 with room for only 70. */
    assert_int_equal(sms_text_check(s, "config/templates", 10, "Портал", "",
                                    err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "UCS-2"));
    tmpl_free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gsm7_limits),
        cmocka_unit_test(test_gsm7_national_letters_and_extension),
        cmocka_unit_test(test_ucs2_limits),
        cmocka_unit_test(test_bad_utf8),
        cmocka_unit_test(test_render_shipped_with_webotp),
        cmocka_unit_test(test_check_shipped_fits_one_segment),
        cmocka_unit_test(test_check_refuses_two_segments),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
