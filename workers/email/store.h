/*
 * store.h - mfa-email's reads and writes: mfa.deliveries, mfa.codes,
 * mfa.users, mfa.audit. All run on the job's connection, inside the
 * runtime's transaction.
 */
#ifndef EMAIL_STORE_H
#define EMAIL_STORE_H

#include "mfa/addr.h"
#include "mfa/db.h"

struct store_delivery {
    char status[16];                  /* queued | sent | failed | dropped */
    char kind[16];                    /* code | notice */
    char channel[8];                  /* email | sms */
    char login_id[ADDR_UUID_LEN + 1]; /* "" for notices */
    long attempts;
};

/* Why a code must not be sent; NULL reason = it may. */
struct store_code {
    const char *reason; /* "superseded", "used", "expired", ... */
    long seconds_left;
    char contact_id[72]; /* the login's user */
};

/* Strings are malloc'd or NULL; store_user_free() wipes and frees. */
struct store_user {
    char *email;
    char *display_name;
    char *locale;
    int email_confirmed;
    int enabled;
};

/* Returns 1 found, 0 no such delivery, -1 database error. lock: FOR
 * UPDATE (completions, which write the row). */
int store_delivery_get(struct db *db, const char *delivery_id, int lock,
                       struct store_delivery *out)
    __attribute__((warn_unused_result));

/* 1 found (out->reason says whether it is still sendable), 0 none, -1. */
int store_code_get(struct db *db, const char *delivery_id, long min_remaining_s,
                   struct store_code *out) __attribute__((warn_unused_result));

/* 1 found, 0 none, -1 database error. */
int store_user_get(struct db *db, const char *contact_id,
                   struct store_user *out) __attribute__((warn_unused_result));
void store_user_free(struct store_user *u);

/* queued -> sent, one more provider attempt. queue_id may be NULL. */
int store_sent(struct db *db, const char *delivery_id, const char *queue_id)
    __attribute__((warn_unused_result));
/* queued -> status ("failed" or "dropped") with the reason; attempted:
 * a provider call was made (counts in attempts). */
int store_final(struct db *db, const char *delivery_id, const char *status,
                const char *reason, int attempted)
    __attribute__((warn_unused_result));
/* A provider attempt that will be retried: attempts + 1, last_error. */
int store_attempt(struct db *db, const char *delivery_id, const char *reason)
    __attribute__((warn_unused_result));

/* One audit row; login_id may be NULL; detail is a JSON object text
 * without secrets (masked addresses only). */
int store_audit(struct db *db, const char *action, const char *contact_id,
                const char *login_id, const char *event_id, const char *detail)
    __attribute__((warn_unused_result));

#endif
