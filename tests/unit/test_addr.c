/*
 * test_addr.c - unit tests for mfa/addr: email syntax and masks, UUIDs,
 * strict UTF-8, control bytes. Got/want tables; a failing row names itself.
 */
#include "mfa/addr.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* s repeated to exactly n bytes, in a rotating set of static buffers. */
static const char *
rep(const char *s, size_t n)
{
    static char bufs[4][600];
    static int k;
    char *b = bufs[k++ % 4];
    size_t i, sl = strlen(s);

    for (i = 0; i < n; i++)
        b[i] = s[i % sl];
    b[n] = '\0';
    return b;
}

static void
test_email_good(void **state)
{
    static const char *good[] = {
        "jane@example.com",
        "j.doe+tag@sub.example.co.uk",
        "o'brien@example.ie",
        "a_b-c!#$%&*/=?^`{|}~@example.org",
        "x@a-b.example",
        "user@xn--bcher-kva.example",
        "j\xc3\xb6rg@b\xc3\xbc"
        "cher.de", /* jörg@bücher.de */
        "a@b.co",
        "JANE@EXAMPLE.COM",
        "jane@123.example", /* numeric labels are fine below the TLD */
    };
    char reason[64];
    size_t i;

    (void)state;
    for (i = 0; i < N(good); i++) {
        strcpy(reason, "unchanged");
        if (addr_email_check(good[i], reason, sizeof(reason)) != 0)
            fail_msg("good[%zu] \"%s\" rejected: %s", i, good[i], reason);
        assert_string_equal(reason, "");
    }
    /* Exactly at the limits: 64-octet local part, 254-octet address. */
    {
        char e[300];

        snprintf(e, sizeof(e), "%s@example.com", rep("a", 64));
        assert_int_equal(addr_email_check(e, NULL, 0), 0);
        snprintf(e, sizeof(e), "a@%s.%s.%s.%s", rep("b", 63), rep("c", 63),
                 rep("d", 63), rep("e", 60));
        assert_int_equal(strlen(e), 254);
        assert_int_equal(addr_email_check(e, reason, sizeof(reason)), 0);
    }
}

static void
test_email_bad(void **state)
{
    static const struct {
        const char *in, *want;
    } bad[] = {
        {"", "empty"},
        {"janeexample.com", "no @"},
        {"a@b@example.com", "more than one @"},
        {"@example.com", "empty local part"},
        {"jane@", "empty domain"},
        {"jane@localhost", "domain has no dot"},
        {"ja ne@example.com", "contains spaces or control characters"},
        {"jane@example.com ", "contains spaces or control characters"},
        {"jane@exa\tmple.com", "contains spaces or control characters"},
        {"jane\r\n@example.com", "contains spaces or control characters"},
        {"jane\x7f@example.com", "contains spaces or control characters"},
        {"\xc0\xaf@example.com", "not valid UTF-8"},
        {"jane@exam\xed\xa0\x80ple.com", "not valid UTF-8"},
        {"jane@example.\xc3", "not valid UTF-8"},
        {".jane@example.com", "local part starts or ends with a dot"},
        {"jane.@example.com", "local part starts or ends with a dot"},
        {"ja..ne@example.com", "local part has two dots in a row"},
        {"ja(ne@example.com", "local part has an invalid character"},
        {"\"jane\"@example.com", "local part has an invalid character"},
        {"ja,ne@example.com", "local part has an invalid character"},
        {"jane@.example.com", "domain starts or ends with a dot"},
        {"jane@example.com.", "domain starts or ends with a dot"},
        {"jane@example..com", "domain has two dots in a row"},
        {"jane@exa_mple.com", "domain has an invalid character"},
        {"jane@[192.0.2.1]", "domain has an invalid character"},
        {"jane@-example.com", "domain label starts or ends with a hyphen"},
        {"jane@example-.com", "domain label starts or ends with a hyphen"},
        {"jane@example.-com", "domain label starts or ends with a hyphen"},
        {"jane@192.0.2.1", "top-level domain is numeric"},
    };
    char reason[64];
    size_t i;

    (void)state;
    for (i = 0; i < N(bad); i++) {
        reason[0] = '\0';
        if (addr_email_check(bad[i].in, reason, sizeof(reason)) != -1)
            fail_msg("bad[%zu] \"%s\" accepted", i, bad[i].in);
        if (strcmp(reason, bad[i].want) != 0)
            fail_msg("bad[%zu] \"%s\": got \"%s\", want \"%s\"", i, bad[i].in,
                     reason, bad[i].want);
    }
    assert_int_equal(addr_email_check(NULL, reason, sizeof(reason)), -1);
    assert_string_equal(reason, "empty");
    /* The reason buffer is optional and truncation is safe. */
    assert_int_equal(addr_email_check("nope", NULL, 0), -1);
    assert_int_equal(addr_email_check("nope", reason, 3), -1);
    assert_string_equal(reason, "no");
}

static void
test_email_limits(void **state)
{
    char e[400], reason[64];

    (void)state;
    snprintf(e, sizeof(e), "%s@example.com", rep("a", 65));
    assert_int_equal(addr_email_check(e, reason, sizeof(reason)), -1);
    assert_string_equal(reason, "local part too long");
    /* 255 octets: one more than the 254 limit. */
    snprintf(e, sizeof(e), "a@%s.%s.%s.%s", rep("b", 63), rep("c", 63),
             rep("d", 63), rep("e", 61));
    assert_int_equal(strlen(e), 255);
    assert_int_equal(addr_email_check(e, reason, sizeof(reason)), -1);
    assert_string_equal(reason, "too long");
    snprintf(e, sizeof(e), "a@%s.example", rep("b", 64));
    assert_int_equal(addr_email_check(e, reason, sizeof(reason)), -1);
    assert_string_equal(reason, "domain label too long");
    snprintf(e, sizeof(e), "a@%s.example", rep("b", 63));
    assert_int_equal(addr_email_check(e, reason, sizeof(reason)), 0);
}

static void
test_email_mask(void **state)
{
    static const struct {
        const char *in, *want;
    } t[] = {
        {"jane@example.com", "j***@example.com"},
        {"j@x.io", "j***@x.io"},
        {"Jane.Doe+tag@Example.COM", "J***@Example.COM"},
        {"\xc3\xa9mile@example.fr", "\xc3\xa9***@example.fr"}, /* émile */
        {"noat", "***"},
        {"@example.com", "***"},
        {"jane@", "***"},
        {"a@b@c.com", "***"},
        {"\xc3@example.com", "***"},   /* not a whole UTF-8 character */
        {"ja\nne@example.com", "***"}, /* control bytes never echoed */
        {"", "***"},
    };
    char out[64];
    size_t i;

    (void)state;
    for (i = 0; i < N(t); i++) {
        addr_email_mask(t[i].in, out, sizeof(out));
        if (strcmp(out, t[i].want) != 0)
            fail_msg("mask[%zu] \"%s\": got \"%s\", want \"%s\"", i, t[i].in,
                     out, t[i].want);
    }
    addr_email_mask(NULL, out, sizeof(out));
    assert_string_equal(out, "***");
    /* Too small for the whole hint: no partial hint, just the mask. */
    addr_email_mask("jane@example.com", out, 16);
    assert_string_equal(out, "***");
    addr_email_mask("jane@example.com", out, 17);
    assert_string_equal(out, "j***@example.com");
    addr_email_mask("jane@example.com", out, 3);
    assert_string_equal(out, "**");
    out[0] = 'x';
    addr_email_mask("jane@example.com", out, 0);
    assert_int_equal(out[0], 'x');
}

static void
test_email_equal_ci(void **state)
{
    static const struct {
        const char *a, *b;
        int want;
    } t[] = {
        {"Jane@Example.COM", "jane@example.com", 1},
        {"jane@example.com", "jane@example.com", 1},
        {"jane@example.com", "jane@example.co", 0},
        {"jane@example.co", "jane@example.com", 0},
        {"j\xc3\xb6rg@x.de", "J\xc3\xb6RG@X.DE", 1},
        /* Non-ASCII is compared as bytes: Ö and ö differ. */
        {"J\xc3\x96RG@x.de", "j\xc3\xb6rg@x.de", 0},
        {"", "", 1},
        {"a@b.c", "", 0},
        {"[@x.y", "{@x.y", 0}, /* not letters: no folding */
    };
    size_t i;

    (void)state;
    for (i = 0; i < N(t); i++)
        if (addr_email_equal_ci(t[i].a, t[i].b) != t[i].want)
            fail_msg("equal[%zu] \"%s\" \"%s\": want %d", i, t[i].a, t[i].b,
                     t[i].want);
    assert_int_equal(addr_email_equal_ci(NULL, "a"), 0);
    assert_int_equal(addr_email_equal_ci("a", NULL), 0);
    assert_int_equal(addr_email_equal_ci(NULL, NULL), 0);
}

static void
test_uuid_check(void **state)
{
    static const struct {
        const char *in;
        int want;
    } t[] = {
        {"6f1c2b3a-1d2e-4f5a-8b9c-0d1e2f3a4b5c", 0},
        {"6F1C2B3A-1D2E-4F5A-8B9C-0D1E2F3A4B5C", 0},
        {"6f1C2b3A-1d2E-4f5A-8b9C-0d1E2f3A4b5C", 0},
        {"00000000-0000-0000-0000-000000000000", 0},
        {"01890a5d-ac96-774b-bcce-b302099a8057", 0}, /* v7: any version */
        {"", -1},
        {"6f1c2b3a-1d2e-4f5a-8b9c-0d1e2f3a4b5", -1},   /* 35 */
        {"6f1c2b3a-1d2e-4f5a-8b9c-0d1e2f3a4b5c0", -1}, /* 37 */
        {"6f1c2b3a-1d2e-4f5a-8b9c-0d1e2f3a4b5c\n", -1},
        {"6f1c2b3a1d2e-4f5a-8b9c-0d1e2f3a4b5c-", -1},
        {"6f1c2b3a-1d2e-4f5a-8b9c_0d1e2f3a4b5c", -1},
        {"6f1c2b3g-1d2e-4f5a-8b9c-0d1e2f3a4b5c", -1},
        {"{6f1c2b3a-1d2e-4f5a-8b9c-0d1e2f3a4b5c}", -1},
        {"6f1c2b3a1d2e4f5a8b9c0d1e2f3a4b5c", -1},
        {" 6f1c2b3a-1d2e-4f5a-8b9c-0d1e2f3a4b5c", -1},
    };
    size_t i;

    (void)state;
    for (i = 0; i < N(t); i++)
        if (addr_uuid_check(t[i].in) != t[i].want)
            fail_msg("uuid[%zu] \"%s\": want %d", i, t[i].in, t[i].want);
    assert_int_equal(addr_uuid_check(NULL), -1);
}

static void
test_uuid_lower(void **state)
{
    char s[] = "6F1C2B3A-1D2E-4F5A-8B9C-0D1E2F3A4B5C";

    (void)state;
    addr_uuid_lower(s);
    assert_string_equal(s, "6f1c2b3a-1d2e-4f5a-8b9c-0d1e2f3a4b5c");
}

static void
test_uuid_new(void **state)
{
    char a[ADDR_UUID_LEN + 1], b[ADDR_UUID_LEN + 1];
    size_t i;

    (void)state;
    addr_uuid_new(a);
    addr_uuid_new(b);
    assert_int_equal(strlen(a), ADDR_UUID_LEN);
    assert_int_equal(addr_uuid_check(a), 0);
    assert_int_equal(addr_uuid_check(b), 0);
    assert_string_not_equal(a, b);
    assert_int_equal(a[14], '4');           /* version 4 */
    assert_non_null(strchr("89ab", a[19])); /* RFC 4122 variant */
    for (i = 0; i < ADDR_UUID_LEN; i++)
        assert_false(a[i] >= 'A' && a[i] <= 'Z'); /* already lowercase */
}

static void
test_utf8(void **state)
{
    static const struct {
        const char *in;
        size_t len;
        int want;
        const char *what;
    } t[] = {
        {"", 0, 0, "empty"},
        {"abc", 3, 0, "ASCII"},
        {"a\0b", 3, 0, "NUL is a valid code point"},
        {"\xc3\xa9", 2, 0, "U+00E9"},
        {"\xc2\x80", 2, 0, "U+0080 smallest 2-byte"},
        {"\xdf\xbf", 2, 0, "U+07FF"},
        {"\xe0\xa0\x80", 3, 0, "U+0800 smallest 3-byte"},
        {"\xe2\x82\xac", 3, 0, "U+20AC euro"},
        {"\xed\x9f\xbf", 3, 0, "U+D7FF just below surrogates"},
        {"\xee\x80\x80", 3, 0, "U+E000 just above surrogates"},
        {"\xef\xbf\xbf", 3, 0, "U+FFFF"},
        {"\xf0\x90\x80\x80", 4, 0, "U+10000 smallest 4-byte"},
        {"\xf0\x9f\x98\x80", 4, 0, "U+1F600"},
        {"\xf4\x8f\xbf\xbf", 4, 0, "U+10FFFF"},
        {"\xc0\xaf", 2, -1, "overlong /"},
        {"\xc1\xbf", 2, -1, "overlong 2-byte"},
        {"\xe0\x80\xaf", 3, -1, "overlong 3-byte"},
        {"\xe0\x9f\xbf", 3, -1, "overlong U+07FF"},
        {"\xf0\x80\x80\xaf", 4, -1, "overlong 4-byte"},
        {"\xf0\x8f\xbf\xbf", 4, -1, "overlong U+FFFF"},
        {"\xed\xa0\x80", 3, -1, "surrogate U+D800"},
        {"\xed\xbf\xbf", 3, -1, "surrogate U+DFFF"},
        {"\xf4\x90\x80\x80", 4, -1, "U+110000"},
        {"\xf5\x80\x80\x80", 4, -1, "F5 lead"},
        {"\xff", 1, -1, "FF"},
        {"\xfe", 1, -1, "FE"},
        {"\x80", 1, -1, "lone continuation"},
        {"a\xbf", 2, -1, "continuation after ASCII"},
        {"\xc3", 1, -1, "truncated 2-byte"},
        {"\xe2\x82", 2, -1, "truncated 3-byte"},
        {"\xf0\x9f\x98", 3, -1, "truncated 4-byte"},
        {"\xc3\x28", 2, -1, "bad continuation"},
        {"\xe2\x28\xa1", 3, -1, "bad second byte"},
        {"\xe2\x82\x28", 3, -1, "bad third byte"},
        {"\xc3\xa9", 1, -1, "length cuts a sequence"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < N(t); i++)
        if (addr_utf8_check(t[i].in, t[i].len) != t[i].want)
            fail_msg("utf8[%zu] %s: want %d", i, t[i].what, t[i].want);
}

static void
test_has_control(void **state)
{
    static const struct {
        const char *in;
        int want;
    } t[] = {
        {"", 0},     {"abc", 0},   {"a b", 0},  {"\xc3\xa9", 0},
        {"~", 0},    {"a\tb", 1},  {"a\nb", 1}, {"\r", 1},
        {"\x1f", 1}, {"x\x7f", 1}, {"\x01", 1}, {"\xc2\x85", 0},
    };
    size_t i;

    (void)state;
    for (i = 0; i < N(t); i++)
        if (addr_has_control(t[i].in) != t[i].want)
            fail_msg("control[%zu]: want %d", i, t[i].want);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_email_good),
        cmocka_unit_test(test_email_bad),
        cmocka_unit_test(test_email_limits),
        cmocka_unit_test(test_email_mask),
        cmocka_unit_test(test_email_equal_ci),
        cmocka_unit_test(test_uuid_check),
        cmocka_unit_test(test_uuid_lower),
        cmocka_unit_test(test_uuid_new),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_has_control),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
