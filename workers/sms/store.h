/*
 * store.h - mfa-sms's reads and writes: mfa.deliveries, mfa.codes,
 * mfa.users, mfa.audit. All run on the job's connection, inside the
 * runtime's transaction.
 */
#ifndef SMS_STORE_H
#define SMS_STORE_H

#include "mfa/addr.h"
#include "mfa/db.h"

struct store_delivery {
    char status[16]; /* queued | sent | failed | dropped */
    char kind[16];   /* code | notice */
    char channel[8]; /* email | sms */
    char login_id[ADDR_UUID_LEN + 1];
    long attempts;
    int possible_duplicate; /* an ambiguous answer was retried already */
};

/* Why a code must not be sent; NULL reason = it may. */
struct store_code {
    const char *reason; /* "superseded", "used", "expired", "expiring",
                           "login closed" */
    long seconds_left;
    char contact_id[72]; /* the login's user */
};

/* The user's phone as it is now. */
struct store_user {
    char phone[20]; /* E.164; "" when none or not valid */
    char locale[36];
    char blocked[128]; /* phone_sms_blocked; "" when not */
    int enabled;
};

/* 1 found, 0 no such delivery, -1 database error. lock: FOR UPDATE. */
int store_delivery_get(struct db *db, const char *delivery_id, int lock,
                       struct store_delivery *out)
    __attribute__((warn_unused_result));

/* 1 found (out->reason says whether it is still sendable), 0 none, -1. */
int store_code_get(struct db *db, const char *delivery_id, long min_remaining_s,
                   struct store_code *out) __attribute__((warn_unused_result));

/* 1 found, 0 none, -1 database error. Wipe out after use. */
int store_user_get(struct db *db, const char *contact_id,
                   struct store_user *out) __attribute__((warn_unused_result));

/* queued -> sent, one more provider attempt, the Message SID. */
int store_sent(struct db *db, const char *delivery_id, const char *sid)
    __attribute__((warn_unused_result));
/* queued -> "failed" or "dropped" with the reason; attempted: a provider
 * call was made (counts in attempts). */
int store_final(struct db *db, const char *delivery_id, const char *status,
                const char *reason, int attempted)
    __attribute__((warn_unused_result));
/* A provider attempt that will be retried: attempts + 1, last_error, and
 * possible_duplicate set when the answer was ambiguous. */
int store_attempt(struct db *db, const char *delivery_id, const char *reason,
                  int ambiguous) __attribute__((warn_unused_result));

/* Records on the user that SMS to phone must not be offered (Twilio
 * 21610/21614), only while phone is still the user's number. */
int store_block_phone(struct db *db, const char *contact_id, const char *phone,
                      const char *why) __attribute__((warn_unused_result));

/* One audit row (actor mfa-sms); login_id may be NULL; detail is a JSON
 * object text with masked numbers only, never a code or secret. */
int store_audit(struct db *db, const char *action, const char *contact_id,
                const char *login_id, const char *event_id, const char *detail)
    __attribute__((warn_unused_result));

#endif
