/*
 * policy.c - pure policy arithmetic for codes and sends (see policy.h).
 *
 * Callers: workers/codes/send.c and verify.c, mfa/methods.c, unit tests.
 * Security notes: the digit check runs on untrusted input and looks at no
 * more than length + 1 bytes; the code generator draws each digit with
 * randombytes_uniform (rejection sampling, no modulo bias) unless a test
 * injects its own source. Nothing here logs.
 */
#include "mfa/policy.h"

#include <math.h>
#include <string.h>

int
policy_code_wellformed(const char *code, long length)
{
    long i;

    if (code == NULL || length < 1 || length > MFA_CODE_MAX)
        return 0;
    for (i = 0; i < length; i++) {
        /* also stops at the NUL of a shorter string */
        if (code[i] < '0' || code[i] > '9')
            return 0;
    }
    return code[length] == '\0';
}

void
policy_code_new(char *out, long length, code_uniform_fn uniform)
{
    if (length < 1)
        length = 1;
    if (length > MFA_CODE_MAX)
        length = MFA_CODE_MAX;
    code_generate(out, (int)length, uniform);
}

long
policy_wait_s(double window_s, double age_s)
{
    double left = ceil(window_s - age_s);

    /* A send that is just leaving the window still blocks this instant;
     * "retry after 0 s" would invite a request that fails again. */
    if (!(left >= 1.0))
        return 1;
    return (long)left;
}

/* Records a limit that clears after wait seconds; the longest one wins. */
static void
policy_note(enum policy_send *res, long *wait, enum policy_send p, long w)
{
    if (*res == POLICY_SEND_OK || w > *wait) {
        *res = p;
        *wait = w;
    }
}

enum policy_send
policy_send_check(const struct mfa_codes_config *codes,
                  long max_sms_per_number_per_day,
                  const struct policy_send_facts *f, long *retry_after_s)
{
    enum policy_send res = POLICY_SEND_OK;
    long wait = -1;

    *retry_after_s = -1;
    /* The login's own budget never comes back: start a new login. */
    if (f->login_sends >= codes->max_sends_per_login)
        return POLICY_SEND_LOGIN_LIMIT;
    if (f->since_last_s >= 0 &&
        f->since_last_s < (double)codes->resend_cooldown_seconds)
        policy_note(&res, &wait, POLICY_SEND_COOLDOWN,
                    policy_wait_s((double)codes->resend_cooldown_seconds,
                                  f->since_last_s));
    if (f->user_sends >= codes->max_sends_per_user_per_hour)
        policy_note(&res, &wait, POLICY_SEND_USER_LIMIT,
                    policy_wait_s(POLICY_HOUR_S, f->user_edge_age_s));
    if (f->number_sms >= max_sms_per_number_per_day)
        policy_note(&res, &wait, POLICY_SEND_NUMBER_LIMIT,
                    policy_wait_s(POLICY_DAY_S, f->number_edge_age_s));
    if (res != POLICY_SEND_OK)
        *retry_after_s = wait;
    return res;
}

const char *
policy_send_name(enum policy_send p)
{
    switch (p) {
    case POLICY_SEND_OK: return "ok";
    case POLICY_SEND_COOLDOWN: return "cooldown";
    case POLICY_SEND_LOGIN_LIMIT: return "login_limit";
    case POLICY_SEND_USER_LIMIT: return "user_limit";
    case POLICY_SEND_NUMBER_LIMIT: return "number_limit";
    }
    return "unknown";
}

long
policy_attempts_left(long max_attempts, long tries, long budget, long failures)
{
    long a = max_attempts - tries, b = budget - failures;
    long left = a < b ? a : b;

    return left > 0 ? left : 0;
}

int
policy_region_allowed(const char *region, const struct cfg_strlist *allowed)
{
    if (allowed == NULL || allowed->n == 0)
        return 1;
    if (region == NULL || region[0] == '\0')
        return 0;
    for (size_t i = 0; i < allowed->n; i++) {
        if (strcmp(allowed->v[i], region) == 0)
            return 1;
    }
    return 0;
}
