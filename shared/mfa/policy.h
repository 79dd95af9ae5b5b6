/*
 * policy.h - the pure decisions of mfa-codes: what a typed code must look
 * like, when a send is allowed, how long to wait, how many tries are left.
 *
 * Callers: workers/codes (with facts read from PostgreSQL), mfa/methods,
 * tests/unit/test_policy.c. Nothing here reads a clock, the database or
 * the random source on its own: times arrive as ages in seconds, and the
 * code generator takes the uniform function (NULL = libsodium's CSPRNG;
 * tests inject a deterministic one).
 */
#ifndef MFA_POLICY_H
#define MFA_POLICY_H

#include <stddef.h>

#include "mfa/crypto.h"
#include "mfa/settings.h"
#include "util/cfg.h"

#define POLICY_HOUR_S 3600
#define POLICY_DAY_S 86400

/* 1 when code is exactly `length` ASCII digits, 0 otherwise (NULL too). */
int policy_code_wellformed(const char *code, long length);

/*
 * A new code of `length` digits (clamped to 1..MFA_CODE_MAX) into out
 * (room for MFA_CODE_MAX + 1). uniform NULL = randombytes_uniform. The
 * caller wipes out with sodium_memzero once the code is hashed and sealed.
 */
void policy_code_new(char *out, long length, code_uniform_fn uniform);

/*
 * What the send limits look at. Ages are seconds before now; "edge" is
 * the send that must leave the window before one more is allowed (the
 * limit-th most recent one), -1 when there is none.
 */
struct policy_send_facts {
    long login_sends;    /* codes already sent for this login */
    double since_last_s; /* since the login's last send; < 0: none */
    long user_sends;     /* the user's sends in the last hour */
    double user_edge_age_s;
    long number_sms;          /* SMS to this number in the last day */
    double number_edge_age_s; /* (both 0 / -1 for email) */
};

enum policy_send {
    POLICY_SEND_OK = 0,
    POLICY_SEND_COOLDOWN,     /* resend too soon after the last one */
    POLICY_SEND_LOGIN_LIMIT,  /* codes.max_sends_per_login reached */
    POLICY_SEND_USER_LIMIT,   /* codes.max_sends_per_user_per_hour */
    POLICY_SEND_NUMBER_LIMIT, /* phone.max_sms_per_number_per_day */
};

/*
 * Decides one send. *retry_after_s gets the seconds until every limit
 * that applies has cleared (>= 1), or -1 when waiting does not help (the
 * login's own budget is spent) or the send is allowed. When several limits
 * apply, the result names the one that lasts longest, the login limit
 * first of all.
 */
enum policy_send policy_send_check(const struct mfa_codes_config *codes,
                                   long max_sms_per_number_per_day,
                                   const struct policy_send_facts *f,
                                   long *retry_after_s);
/* "ok", "cooldown", "login_limit", "user_limit", "number_limit". */
const char *policy_send_name(enum policy_send p);

/* Whole seconds until something aged age_s leaves a window of window_s:
 * ceil(window_s - age_s), at least 1. */
long policy_wait_s(double window_s, double age_s);

/*
 * Tries left: the smaller of the login's (max_attempts - tries) and the
 * user's hourly budget (budget - failures), never below 0.
 */
long policy_attempts_left(long max_attempts, long tries, long budget,
                          long failures);

/* 1 when SMS may go to region: allowed NULL or empty = everywhere;
 * otherwise region must be listed (an unknown region "" never is). */
int policy_region_allowed(const char *region,
                          const struct cfg_strlist *allowed);

#endif
