/*
 * test_methods.c - unit tests for mfa/methods: which methods are offered
 * and why not (methods_decide), when the SMS settings count as complete,
 * the names, and the masked hints (only for offered methods).
 */
#include "mfa/methods.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* A user for whom both methods work. */
static struct method_facts
good(void)
{
    struct method_facts f;

    memset(&f, 0, sizeof(f));
    f.found = 1;
    f.enabled = 1;
    f.email = "jane@example.com";
    f.email_status = "valid";
    f.email_confirmed = 1;
    f.phone_e164 = "+31612345678";
    f.phone_status = "valid";
    f.phone_sms_capable = 1;
    f.sms_settings_complete = 1;
    return f;
}

static void
test_both(void **state)
{
    struct method_facts f = good();
    struct methods m;

    (void)state;
    methods_decide(&f, NULL, &m);
    assert_true(m.found && m.enabled);
    assert_true(m.offered[METHOD_EMAIL] && m.offered[METHOD_SMS]);
    assert_int_equal(methods_count(&m), 2);
    assert_string_equal(m.why[METHOD_EMAIL], "");
    assert_string_equal(m.why[METHOD_SMS], "");
    assert_string_equal(m.email, "jane@example.com");
    assert_string_equal(m.phone, "+31612345678");
    assert_string_equal(m.region, "NL");
}

static void
test_reasons(void **state)
{
    struct methods m;
    struct method_facts f;

    (void)state;
    f = good();
    f.email_confirmed = 0;
    methods_decide(&f, NULL, &m);
    assert_false(m.offered[METHOD_EMAIL]);
    assert_string_equal(m.why[METHOD_EMAIL], "email: not confirmed");
    assert_string_equal(m.email, ""); /* no destination when not offered */
    assert_true(m.offered[METHOD_SMS]);

    f = good();
    f.email = NULL;
    f.email_status = "missing";
    f.email_confirmed = 0;
    methods_decide(&f, NULL, &m);
    assert_string_equal(m.why[METHOD_EMAIL], "email: missing");

    f = good();
    f.email = NULL;
    f.email_status = "invalid";
    f.email_reason = "no @";
    methods_decide(&f, NULL, &m);
    assert_string_equal(m.why[METHOD_EMAIL], "email: invalid: no @");

    f = good();
    f.sms_settings_complete = 0;
    methods_decide(&f, NULL, &m);
    assert_false(m.offered[METHOD_SMS]);
    assert_string_equal(m.why[METHOD_SMS], "sms: settings incomplete");
    assert_string_equal(m.phone, "");
    assert_true(m.offered[METHOD_EMAIL]);
    assert_int_equal(methods_count(&m), 1);

    f = good();
    f.phone_e164 = NULL;
    f.phone_status = "invalid";
    f.phone_reason = "too short";
    f.phone_sms_capable = 0;
    methods_decide(&f, NULL, &m);
    assert_string_equal(m.why[METHOD_SMS], "sms: phone invalid: too short");

    f = good();
    f.phone_e164 = NULL;
    f.phone_status = "missing";
    f.phone_sms_capable = 0;
    methods_decide(&f, NULL, &m);
    assert_string_equal(m.why[METHOD_SMS], "sms: phone missing");

    f = good();
    f.phone_e164 = "+31201234567"; /* Amsterdam landline */
    f.phone_sms_capable = 0;
    methods_decide(&f, NULL, &m);
    assert_string_equal(m.why[METHOD_SMS], "sms: not a mobile number");

    f = good();
    f.phone_sms_blocked = "21610 unsubscribed";
    methods_decide(&f, NULL, &m);
    assert_string_equal(m.why[METHOD_SMS], "sms: blocked (21610 unsubscribed)");

    /* the user's own reason is named before the settings' */
    f = good();
    f.phone_sms_blocked = "21610 unsubscribed";
    f.sms_settings_complete = 0;
    methods_decide(&f, NULL, &m);
    assert_string_equal(m.why[METHOD_SMS], "sms: blocked (21610 unsubscribed)");

    /* nothing at all */
    f = good();
    f.email_confirmed = 0;
    f.sms_settings_complete = 0;
    methods_decide(&f, NULL, &m);
    assert_int_equal(methods_count(&m), 0);
}

static void
test_regions(void **state)
{
    char *nl_be[] = {"NL", "BE"}, *de[] = {"DE"};
    struct cfg_strlist a = {nl_be, 2}, b = {de, 1};
    struct method_facts f = good();
    struct methods m;

    (void)state;
    methods_decide(&f, &a, &m);
    assert_true(m.offered[METHOD_SMS]);
    methods_decide(&f, &b, &m);
    assert_false(m.offered[METHOD_SMS]);
    assert_string_equal(m.why[METHOD_SMS], "sms: region NL not allowed");
    /* a number without a geographic region is never in a list */
    f.phone_e164 = "+80012345678";
    methods_decide(&f, &b, &m);
    assert_string_equal(m.why[METHOD_SMS], "sms: region unknown not allowed");
}

static void
test_unknown_and_disabled(void **state)
{
    struct method_facts f;
    struct methods m;

    (void)state;
    memset(&f, 0, sizeof(f));
    methods_decide(&f, NULL, &m);
    assert_false(m.found);
    assert_int_equal(methods_count(&m), 0);

    /* disabled: still worked out (for mfactl), the caller refuses */
    f = good();
    f.enabled = 0;
    methods_decide(&f, NULL, &m);
    assert_true(m.found);
    assert_false(m.enabled);
    assert_int_equal(methods_count(&m), 2);
}

static void
test_settings_complete(void **state)
{
    static const struct {
        const char *json;
        int secret, want;
    } rows[] = {
        {"{\"client_id\":\"SK1\",\"account_sid\":\"AC1\",\"from\":\"+1500\"}",
         1, 1},
        /* extra keys are fine */
        {"{\"client_id\":\"SK1\",\"account_sid\":\"AC1\",\"from\":\"+1500\","
         "\"x\":1}",
         1, 1},
        /* no secret */
        {"{\"client_id\":\"SK1\",\"account_sid\":\"AC1\",\"from\":\"+1500\"}",
         0, 0},
        {"{\"account_sid\":\"AC1\",\"from\":\"+1500\"}", 1, 0},
        {"{\"client_id\":\"SK1\",\"from\":\"+1500\"}", 1, 0},
        {"{\"client_id\":\"SK1\",\"account_sid\":\"AC1\"}", 1, 0},
        {"{\"client_id\":\"\",\"account_sid\":\"AC1\",\"from\":\"+1500\"}", 1,
         0},
        {"{\"client_id\":\"  \",\"account_sid\":\"AC1\",\"from\":\"+1500\"}", 1,
         0},
        {"{\"client_id\":1,\"account_sid\":\"AC1\",\"from\":\"+1500\"}", 1, 0},
        {"{\"client_id\":null,\"account_sid\":\"AC1\",\"from\":\"+1500\"}", 1,
         0},
        {"[\"client_id\",\"account_sid\",\"from\"]", 1, 0},
        {"\"text\"", 1, 0},
        {"not json", 1, 0},
        {NULL, 1, 0},
    };
    char big[1024];
    size_t i;
    int pass, k;

    (void)state;
    /* Each row twice in a row, and the table twice over: the answer for
     * the text seen last is remembered, which must never change it. */
    for (pass = 0; pass < 4 * (int)N(rows); pass++) {
        i = (size_t)pass / 2 % N(rows);
        if (methods_sms_settings_complete(rows[i].json, rows[i].secret) !=
            rows[i].want)
            fail_msg("row %zu %s (secret %d): want %d", i,
                     rows[i].json ? rows[i].json : "NULL", rows[i].secret,
                     rows[i].want);
    }
    /* A value too long to be remembered is parsed every time. */
    snprintf(big, sizeof(big),
             "{\"client_id\":\"SK1\",\"account_sid\":\"AC1\","
             "\"from\":\"+1500\",\"note\":\"%0700d\"}",
             0);
    for (k = 0; k < 2; k++) {
        assert_int_equal(methods_sms_settings_complete(big, 1), 1);
        assert_int_equal(methods_sms_settings_complete(big, 0), 0);
    }
}

static void
test_names(void **state)
{
    (void)state;
    assert_string_equal(method_name(METHOD_EMAIL), "email");
    assert_string_equal(method_name(METHOD_SMS), "sms");
    assert_null(method_name(METHOD_COUNT));
    assert_int_equal(method_from_name("email"), METHOD_EMAIL);
    assert_int_equal(method_from_name("sms"), METHOD_SMS);
    assert_int_equal(method_from_name("SMS"), -1);
    assert_int_equal(method_from_name("voice"), -1);
    assert_int_equal(method_from_name(NULL), -1);
}

static void
test_hints(void **state)
{
    struct method_facts f = good();
    struct methods m;
    char eh[64], ph[64];

    (void)state;
    methods_decide(&f, NULL, &m);
    methods_hints(&m, eh, sizeof(eh), ph, sizeof(ph));
    assert_string_equal(eh, "j***@example.com");
    assert_string_equal(ph, "+31 6** *** *78");

    /* no hint for a method that is not offered */
    f.email_confirmed = 0;
    f.sms_settings_complete = 0;
    methods_decide(&f, NULL, &m);
    memset(eh, 'Z', sizeof(eh));
    memset(ph, 'Z', sizeof(ph));
    methods_hints(&m, eh, sizeof(eh), ph, sizeof(ph));
    assert_string_equal(eh, "");
    assert_string_equal(ph, "");

    /* too small for a hint: the mask's own fallback, never the address */
    f = good();
    methods_decide(&f, NULL, &m);
    methods_hints(&m, eh, 8, ph, 8);
    assert_string_equal(eh, "***");
    assert_string_equal(ph, "***");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_both),
        cmocka_unit_test(test_reasons),
        cmocka_unit_test(test_regions),
        cmocka_unit_test(test_unknown_and_disabled),
        cmocka_unit_test(test_settings_complete),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_hints),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
