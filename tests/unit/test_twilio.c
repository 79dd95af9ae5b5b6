/* test_twilio.c - the Twilio client without a network (mfa/twilio): SID
 * and account checks, the request it builds, the classification of
 * answers, masking of numbers in provider texts. The request on the wire
 * is tested against Prism and a fake in tests/integration/test_sms.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "mfa/twilio.h"

#define AC "AC0123456789abcdef0123456789ABCDEF"
#define AC2 "ACffffffffffffffffffffffffffffffff"
#define SK "SK0123456789abcdef0123456789abcdef"

static void
test_sid_format(void **state)
{
    (void)state;
    assert_true(twilio_sid_ok(AC, "AC"));
    assert_true(twilio_sid_ok(SK, "SK"));
    assert_false(twilio_sid_ok(AC, "SK"));
    assert_false(twilio_sid_ok("AC0123", "AC"));
    assert_false(twilio_sid_ok(AC "0", "AC"));
    assert_false(twilio_sid_ok("AC0123456789abcdef0123456789abcdeg", "AC"));
    assert_false(twilio_sid_ok(NULL, "AC"));
}

static void
test_account_check(void **state)
{
    struct twilio_account a;
    char err[256];

    (void)state;
    assert_int_equal(twilio_account_check(AC, NULL, "+15005550006", "s3cr3t",
                                          &a, err, sizeof(err)),
                     0);
    assert_string_equal(a.account_sid, AC); /* defaults to the Client ID */
    assert_string_equal(a.secret, "s3cr3t");
    twilio_account_wipe(&a);
    assert_int_equal(a.secret[0], 0);

    assert_int_equal(twilio_account_check(SK, AC2, "+31612345678", "x", &a, err,
                                          sizeof(err)),
                     0);
    assert_string_equal(a.client_id, SK);
    assert_string_equal(a.account_sid, AC2);

    assert_int_equal(twilio_account_check(SK, NULL, "+15005550006", "x", &a,
                                          err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "--account-sid"));
    assert_int_equal(
        twilio_account_check(SK, SK, "+15005550006", "x", &a, err, sizeof(err)),
        -1);
    assert_non_null(strstr(err, "account sid"));
    assert_int_equal(twilio_account_check("ACxyz", NULL, "+15005550006", "x",
                                          &a, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "client id"));
    /* From: its E.164 form exactly ("+", 7 to 15 digits, a known calling
     * code), the reason said, the number never quoted */
    assert_int_equal(
        twilio_account_check(AC, NULL, "0612345678", "x", &a, err, sizeof(err)),
        -1);
    assert_string_equal(err, "from: must be a phone number in E.164 form "
                             "such as +15005550006 (no leading +)");
    assert_int_equal(twilio_account_check(AC, NULL, "+31 6 12345678", "x", &a,
                                          err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "(not only digits)"));
    assert_int_equal(
        twilio_account_check(AC, NULL, "+316123", "x", &a, err, sizeof(err)),
        -1);
    assert_non_null(strstr(err, "(too short)"));
    assert_null(strstr(err, "316123"));
    assert_int_equal(twilio_account_check(AC, NULL, "+9991234567", "x", &a, err,
                                          sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "(invalid country code)"));
    assert_int_equal(twilio_account_check(AC, NULL, "+0031612345678", "x", &a,
                                          err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "(leading zero)"));
    assert_int_equal(twilio_account_check(AC, NULL, "+3161234567890123", "x",
                                          &a, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "(too long)"));
    assert_int_equal(
        twilio_account_check(AC, NULL, NULL, "x", &a, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "(missing)"));
    /* The form, not validity (that is mfactl's phone_check, before the
     * row is stored): +1 555 is no area code, yet the form is right. */
    assert_int_equal(twilio_account_check(AC, NULL, "+15551234567", "x", &a,
                                          err, sizeof(err)),
                     0);
    assert_string_equal(a.from, "+15551234567");
    /* the secret: present, printable, bounded, never quoted */
    assert_int_equal(twilio_account_check(AC, NULL, "+15005550006", "", &a, err,
                                          sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "empty"));
    assert_int_equal(twilio_account_check(AC, NULL, "+15005550006", "has space",
                                          &a, err, sizeof(err)),
                     -1);
    assert_null(strstr(err, "has space"));
    {
        char longs[TWILIO_SECRET_MAX + 2];

        memset(longs, 'x', sizeof(longs) - 1);
        longs[sizeof(longs) - 1] = '\0';
        assert_int_equal(twilio_account_check(AC, NULL, "+15005550006", longs,
                                              &a, err, sizeof(err)),
                         -1);
    }
}

static struct mfa_sms_config
sms_cfg(const char *base)
{
    struct mfa_sms_config c;

    memset(&c, 0, sizeof(c));
    c.twilio_api_base = (char *)base;
    c.concurrency = 4;
    c.timeout_seconds = 5;
    c.status_callback = "";
    c.webotp_domain = "";
    c.ca_file = "";
    return c;
}

static void
test_request_built(void **state)
{
    struct mfa_sms_config cfg = sms_cfg("http://127.0.0.1:9/");
    struct twilio_account a;
    struct twilio_call tc;
    struct twilio_msg m = {"+31612345678", "Code 123456 & more =ok", 20000,
                           "https://cb.example/s?a=1"};
    char err[256], b64[128];
    unsigned char bin[128];
    size_t binlen = 0;
    const char *auth;
    CURL *easy = curl_easy_init();

    (void)state;
    memset(&tc, 0, sizeof(tc));
    assert_int_equal(twilio_account_check(AC, NULL, "+15005550006", "s3cr3t",
                                          &a, err, sizeof(err)),
                     0);
    assert_int_equal(twilio_call_prepare(&tc, &cfg, &a, err, sizeof(err)), 0);
    twilio_account_wipe(&a);
    assert_string_equal(tc.url, "http://127.0.0.1:9/2010-04-01/Accounts/" AC
                                "/Messages.json");
    /* basic auth: base64("AC...:s3cr3t") */
    auth = tc.headers->data;
    assert_int_equal(strncmp(auth, "Authorization: Basic ", 21), 0);
    snprintf(b64, sizeof(b64), "%s", auth + 21);
    assert_int_equal(sodium_base642bin(bin, sizeof(bin), b64, strlen(b64), NULL,
                                       &binlen, NULL,
                                       sodium_base64_VARIANT_ORIGINAL),
                     0);
    assert_int_equal(binlen, strlen(AC ":s3cr3t"));
    assert_memory_equal(bin, AC ":s3cr3t", binlen);

    assert_int_equal(twilio_call_start(&tc, easy, &cfg, &m, err, sizeof(err)),
                     0);
    assert_string_equal(tc.form.data,
                        "To=%2B31612345678&From=%2B15005550006"
                        "&Body=Code%20123456%20%26%20more%20%3Dok"
                        "&ValidityPeriod=14400"
                        "&StatusCallback=https%3A%2F%2Fcb.example%2Fs%3Fa%3D1");
    /* a second request on the same call: fresh form, tiny validity */
    m.validity_s = -3;
    m.status_callback = NULL;
    assert_int_equal(twilio_call_start(&tc, easy, &cfg, &m, err, sizeof(err)),
                     0);
    assert_non_null(strstr(tc.form.data, "&ValidityPeriod=1"));
    assert_null(strstr(tc.form.data, "StatusCallback"));
    m.validity_s = 0; /* none at all */
    assert_int_equal(twilio_call_start(&tc, easy, &cfg, &m, err, sizeof(err)),
                     0);
    assert_null(strstr(tc.form.data, "ValidityPeriod"));
    twilio_call_clear(&tc);
    assert_null(tc.headers);
    assert_null(tc.form.data);
    assert_null(tc.easy);
    curl_easy_cleanup(easy);
}

/* The form is percent-encoded as curl_easy_escape would do it, for
 * every octet. */
static void
test_form_escaping(void **state)
{
    struct mfa_sms_config cfg = sms_cfg("http://127.0.0.1:9/");
    struct twilio_account a;
    struct twilio_call tc;
    struct twilio_msg m = {"+31612345678", NULL, 0, NULL};
    char err[256], body[256], *want, *esc;
    CURL *easy = curl_easy_init();

    (void)state;
    for (int i = 1; i < 256; i++)
        body[i - 1] = (char)i;
    body[255] = '\0';
    m.body = body;
    memset(&tc, 0, sizeof(tc));
    assert_int_equal(twilio_account_check(AC, NULL, "+15005550006", "s3cr3t",
                                          &a, err, sizeof(err)),
                     0);
    assert_int_equal(twilio_call_prepare(&tc, &cfg, &a, err, sizeof(err)), 0);
    twilio_account_wipe(&a);
    assert_int_equal(twilio_call_start(&tc, easy, &cfg, &m, err, sizeof(err)),
                     0);
    esc = curl_easy_escape(easy, body, 0);
    assert_non_null(esc);
    want = malloc(strlen(esc) + 64);
    assert_non_null(want);
    sprintf(want, "To=%%2B31612345678&From=%%2B15005550006&Body=%s", esc);
    assert_string_equal(tc.form.data, want);
    free(want);
    curl_free(esc);
    twilio_call_clear(&tc);
    curl_easy_cleanup(easy);
}

static void
test_classify(void **state)
{
    struct twilio_result r;

    (void)state;
    twilio_classify(CURLE_OK, 201, 1,
                    "{\"sid\":\"SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
                    "\"status\":\"queued\"}",
                    NULL, &r);
    assert_int_equal(r.outcome, TWILIO_SENT);
    assert_string_equal(r.sid, "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_string_equal(r.status, "queued");

    twilio_classify(CURLE_OK, 429, 1,
                    "{\"code\":20429,\"message\":\"Too "
                    "Many Requests\"}",
                    NULL, &r);
    assert_int_equal(r.outcome, TWILIO_RETRY);
    assert_string_equal(r.text, "20429 Too Many Requests");

    twilio_classify(CURLE_OK, 400, 1,
                    "{\"code\":21211,\"message\":\"The "
                    "'To' number +15005550001 is not a valid phone number.\","
                    "\"status\":400}",
                    NULL, &r);
    assert_int_equal(r.outcome, TWILIO_REFUSED);
    assert_int_equal(r.error_code, 21211);
    assert_int_equal(strncmp(r.text, "21211 The 'To' number +1 ", 25), 0);
    assert_null(strstr(r.text, "5550001"));

    twilio_classify(CURLE_OK, 401, 1,
                    "{\"code\":20003,\"message\":"
                    "\"Authenticate\"}",
                    NULL, &r);
    assert_int_equal(r.outcome, TWILIO_AUTH);
    twilio_classify(CURLE_OK, 403, 1, NULL, NULL, &r);
    assert_int_equal(r.outcome, TWILIO_AUTH);
    assert_string_equal(r.text, "HTTP 403");

    twilio_classify(CURLE_OK, 503, 1, "<html>busy</html>", NULL, &r);
    assert_int_equal(r.outcome, TWILIO_AMBIGUOUS);
    assert_string_equal(r.text, "HTTP 503");
    twilio_classify(CURLE_OK, 404, 1,
                    "{\"code\":20404,\"message\":\"The "
                    "requested resource was not found\"}",
                    NULL, &r);
    assert_int_equal(r.outcome, TWILIO_REFUSED);

    /* transport: before or after the request went out */
    twilio_classify(CURLE_COULDNT_CONNECT, 0, 0, NULL, "Failed to connect", &r);
    assert_int_equal(r.outcome, TWILIO_RETRY);
    assert_string_equal(r.text, "Failed to connect");
    twilio_classify(CURLE_OPERATION_TIMEDOUT, 0, 0, NULL, NULL, &r);
    assert_int_equal(r.outcome, TWILIO_RETRY);
    twilio_classify(CURLE_OPERATION_TIMEDOUT, 0, 1, NULL, "timed out", &r);
    assert_int_equal(r.outcome, TWILIO_AMBIGUOUS);
    assert_string_equal(r.text, "timed out (after sending)");
    twilio_classify(CURLE_GOT_NOTHING, 0, 1, NULL, NULL, &r);
    assert_int_equal(r.outcome, TWILIO_AMBIGUOUS);
    twilio_classify(CURLE_COULDNT_RESOLVE_HOST, 0, 1, NULL, NULL, &r);
    assert_int_equal(r.outcome, TWILIO_RETRY);
}

static void
test_scrub(void **state)
{
    char out[128];

    (void)state;
    twilio_scrub("to +31612345678 and +4915123456789, code 21211 +12", out,
                 sizeof(out));
    assert_null(strstr(out, "612345678"));
    assert_null(strstr(out, "15123456789"));
    assert_non_null(strstr(out, "+31 6"));
    assert_non_null(strstr(out, "code 21211 +12"));
    twilio_scrub("abcdef", out, 4);
    assert_string_equal(out, "abc");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sid_format),
        cmocka_unit_test(test_account_check),
        cmocka_unit_test(test_request_built),
        cmocka_unit_test(test_form_escaping),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_scrub),
    };
    int rc;

    if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        return 1;
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
