/*
 * test_policy.c - unit tests for mfa/policy: the digit check on typed
 * codes, code generation with an injected random source, the send limits
 * (cooldown, per login, per user, per number) and their retry_after
 * arithmetic, tries left, the SMS region allow-list.
 */
#include "mfa/policy.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- typed codes ------------------------------------------------------ */

static void
test_wellformed(void **state)
{
    static const struct {
        const char *code;
        long length;
        int want;
    } rows[] = {
        {"123456", 6, 1},   {"000000", 6, 1}, {"1234567890", 10, 1},
        {"12345678", 8, 1}, {"12345", 6, 0}, /* too short */
        {"1234567", 6, 0},                   /* too long */
        {"12345a", 6, 0},                    /* a letter */
        {"12 456", 6, 0},                    /* a blank */
        {" 123456", 6, 0},                   /* leading blank */
        {"123456 ", 6, 0},                   /* trailing blank */
        {"-12345", 6, 0},                    /* a sign */
        {"١٢٣٤٥٦", 6, 0}, /* Arabic-Indic digits are not ASCII */
        {"", 6, 0},         {"123456", 0, 0}, /* nonsense lengths */
        {"123456", 11, 0},
    };
    size_t i;

    (void)state;
    for (i = 0; i < N(rows); i++) {
        if (policy_code_wellformed(rows[i].code, rows[i].length) !=
            rows[i].want)
            fail_msg("row %zu \"%s\"/%ld: want %d", i, rows[i].code,
                     rows[i].length, rows[i].want);
    }
    assert_int_equal(policy_code_wellformed(NULL, 6), 0);
}

/* A deterministic source: 7, 0, 9, 1, 8, 2, ... and records the bound. */
static uint32_t seq_calls;
static uint32_t seq_upper_seen;
static uint32_t
seq_uniform(uint32_t upper)
{
    static const uint32_t digits[] = {7, 0, 9, 1, 8, 2, 6, 3, 5, 4};

    seq_upper_seen = upper;
    return digits[seq_calls++ % N(digits)];
}

static void
test_code_new(void **state)
{
    char code[MFA_CODE_MAX + 1];

    (void)state;
    seq_calls = 0;
    policy_code_new(code, 6, seq_uniform);
    assert_string_equal(code, "709182");
    assert_int_equal(seq_upper_seen, 10); /* one draw per digit, 0..9 */
    assert_int_equal(seq_calls, 6);
    assert_true(policy_code_wellformed(code, 6));

    seq_calls = 0;
    policy_code_new(code, 8, seq_uniform);
    assert_string_equal(code, "70918263");
    /* out-of-range lengths are clamped, never overflow the buffer */
    seq_calls = 0;
    policy_code_new(code, 99, seq_uniform);
    assert_int_equal(strlen(code), MFA_CODE_MAX);
    seq_calls = 0;
    policy_code_new(code, 0, seq_uniform);
    assert_string_equal(code, "7");
    /* the real CSPRNG gives well-formed codes */
    policy_code_new(code, 6, NULL);
    assert_true(policy_code_wellformed(code, 6));
}

/* ---- send limits ------------------------------------------------------ */

static struct mfa_codes_config
defaults(void)
{
    struct mfa_codes_config c;

    memset(&c, 0, sizeof(c));
    c.length = 6;
    c.ttl_seconds = 300;
    c.max_attempts = 5;
    c.max_failures_per_user_per_hour = 10;
    c.resend_cooldown_seconds = 30;
    c.max_sends_per_login = 5;
    c.max_sends_per_user_per_hour = 10;
    c.min_remaining_seconds = 60;
    return c;
}

static struct policy_send_facts
fresh(void)
{
    struct policy_send_facts f;

    memset(&f, 0, sizeof(f));
    f.since_last_s = -1;
    f.user_edge_age_s = -1;
    f.number_edge_age_s = -1;
    return f;
}

static void
test_wait_rounding(void **state)
{
    (void)state;
    assert_int_equal(policy_wait_s(30, 0), 30);
    assert_int_equal(policy_wait_s(30, 0.2), 30); /* 29.8 -> 30 */
    assert_int_equal(policy_wait_s(30, 1), 29);
    assert_int_equal(policy_wait_s(30, 29.01), 1);
    assert_int_equal(policy_wait_s(30, 30), 1); /* never 0 */
    assert_int_equal(policy_wait_s(30, 45), 1); /* clock skew */
    assert_int_equal(policy_wait_s(3600, 600.5), 3000);
    assert_int_equal(policy_wait_s(86400, -1), 86401); /* unknown age */
}

static void
test_first_send_allowed(void **state)
{
    struct mfa_codes_config c = defaults();
    struct policy_send_facts f = fresh();
    long wait = 123;

    (void)state;
    assert_int_equal(policy_send_check(&c, 10, &f, &wait), POLICY_SEND_OK);
    assert_int_equal(wait, -1);
    assert_string_equal(policy_send_name(POLICY_SEND_OK), "ok");
}

static void
test_cooldown(void **state)
{
    struct mfa_codes_config c = defaults();
    struct policy_send_facts f = fresh();
    long wait;

    (void)state;
    f.login_sends = 1;
    f.since_last_s = 0.4;
    assert_int_equal(policy_send_check(&c, 10, &f, &wait),
                     POLICY_SEND_COOLDOWN);
    assert_int_equal(wait, 30);
    f.since_last_s = 12.5;
    assert_int_equal(policy_send_check(&c, 10, &f, &wait),
                     POLICY_SEND_COOLDOWN);
    assert_int_equal(wait, 18); /* ceil(17.5) */
    f.since_last_s = 30;        /* exactly over: allowed */
    assert_int_equal(policy_send_check(&c, 10, &f, &wait), POLICY_SEND_OK);
    assert_int_equal(wait, -1);
    /* cooldown 0 = none */
    c.resend_cooldown_seconds = 0;
    f.since_last_s = 0;
    assert_int_equal(policy_send_check(&c, 10, &f, &wait), POLICY_SEND_OK);
    assert_string_equal(policy_send_name(POLICY_SEND_COOLDOWN), "cooldown");
}

static void
test_login_limit_is_final(void **state)
{
    struct mfa_codes_config c = defaults();
    struct policy_send_facts f = fresh();
    long wait;

    (void)state;
    f.login_sends = 4;
    f.since_last_s = 100;
    assert_int_equal(policy_send_check(&c, 10, &f, &wait), POLICY_SEND_OK);
    f.login_sends = 5;
    assert_int_equal(policy_send_check(&c, 10, &f, &wait),
                     POLICY_SEND_LOGIN_LIMIT);
    assert_int_equal(wait, -1); /* waiting does not help */
    /* it wins over a cooldown that would end */
    f.since_last_s = 1;
    assert_int_equal(policy_send_check(&c, 10, &f, &wait),
                     POLICY_SEND_LOGIN_LIMIT);
    assert_int_equal(wait, -1);
    assert_string_equal(policy_send_name(POLICY_SEND_LOGIN_LIMIT),
                        "login_limit");
}

static void
test_user_limit(void **state)
{
    struct mfa_codes_config c = defaults();
    struct policy_send_facts f = fresh();
    long wait;

    (void)state;
    f.user_sends = 9;
    f.user_edge_age_s = -1;
    assert_int_equal(policy_send_check(&c, 10, &f, &wait), POLICY_SEND_OK);
    f.user_sends = 10;
    f.user_edge_age_s = 600; /* the 10th newest send was 10 min ago */
    assert_int_equal(policy_send_check(&c, 10, &f, &wait),
                     POLICY_SEND_USER_LIMIT);
    assert_int_equal(wait, 3000);
    /* the longer of two limits is what the user must wait for */
    f.since_last_s = 5;
    assert_int_equal(policy_send_check(&c, 10, &f, &wait),
                     POLICY_SEND_USER_LIMIT);
    assert_int_equal(wait, 3000);
    f.user_edge_age_s = 3590; /* leaves the window in 10 s; cooldown 25 */
    assert_int_equal(policy_send_check(&c, 10, &f, &wait),
                     POLICY_SEND_COOLDOWN);
    assert_int_equal(wait, 25);
    assert_string_equal(policy_send_name(POLICY_SEND_USER_LIMIT), "user_limit");
}

static void
test_number_limit(void **state)
{
    struct mfa_codes_config c = defaults();
    struct policy_send_facts f = fresh();
    long wait;

    (void)state;
    f.number_sms = 2;
    f.number_edge_age_s = 3600;
    assert_int_equal(policy_send_check(&c, 3, &f, &wait), POLICY_SEND_OK);
    f.number_sms = 3;
    assert_int_equal(policy_send_check(&c, 3, &f, &wait),
                     POLICY_SEND_NUMBER_LIMIT);
    assert_int_equal(wait, 86400 - 3600);
    assert_string_equal(policy_send_name(POLICY_SEND_NUMBER_LIMIT),
                        "number_limit");
}

/* ---- tries ------------------------------------------------------------- */

static void
test_attempts_left(void **state)
{
    (void)state;
    assert_int_equal(policy_attempts_left(5, 0, 10, 0), 5);
    assert_int_equal(policy_attempts_left(5, 1, 10, 1), 4);
    assert_int_equal(policy_attempts_left(5, 5, 10, 5), 0);
    /* the user's budget is the smaller one */
    assert_int_equal(policy_attempts_left(5, 1, 10, 8), 2);
    assert_int_equal(policy_attempts_left(5, 1, 10, 10), 0);
    /* never negative */
    assert_int_equal(policy_attempts_left(5, 7, 10, 12), 0);
}

/* ---- regions ----------------------------------------------------------- */

static void
test_regions(void **state)
{
    char *v[] = {"NL", "BE"};
    struct cfg_strlist some = {v, 2}, none = {NULL, 0};

    (void)state;
    assert_int_equal(policy_region_allowed("NL", NULL), 1);
    assert_int_equal(policy_region_allowed("US", &none), 1);
    assert_int_equal(policy_region_allowed("", &none), 1);
    assert_int_equal(policy_region_allowed("NL", &some), 1);
    assert_int_equal(policy_region_allowed("BE", &some), 1);
    assert_int_equal(policy_region_allowed("DE", &some), 0);
    assert_int_equal(policy_region_allowed("nl", &some), 0);
    assert_int_equal(policy_region_allowed("", &some), 0);
    assert_int_equal(policy_region_allowed(NULL, &some), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wellformed),
        cmocka_unit_test(test_code_new),
        cmocka_unit_test(test_wait_rounding),
        cmocka_unit_test(test_first_send_allowed),
        cmocka_unit_test(test_cooldown),
        cmocka_unit_test(test_login_limit_is_final),
        cmocka_unit_test(test_user_limit),
        cmocka_unit_test(test_number_limit),
        cmocka_unit_test(test_attempts_left),
        cmocka_unit_test(test_regions),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
