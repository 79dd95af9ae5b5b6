/*
 * delivery.h - a dispatch worker's delivery row (mfa.deliveries) and the
 * code it carries (mfa.codes): read, judge, open, and move to its end.
 *
 * mfa-email and mfa-sms share these steps; the runtime's dispatch.c puts
 * them together for a job. All run on the job's connection inside the
 * runtime's transaction. A row only ever leaves 'queued' (to 'sent',
 * 'failed' or 'dropped'), so a delivery that reached its end never moves
 * again, whoever processes a duplicate.
 */
#ifndef MFA_DELIVERY_H
#define MFA_DELIVERY_H

#include <stddef.h>

#include "mfa/addr.h"
#include "mfa/crypto.h"
#include "mfa/db.h"

struct delivery {
    char status[16];                  /* queued | sent | failed | dropped */
    char kind[16];                    /* code | notice */
    char channel[8];                  /* email | sms */
    char login_id[ADDR_UUID_LEN + 1]; /* "" for notices */
    long attempts;
    int possible_duplicate; /* an ambiguous answer was retried already */
};

/* Whether a code may still go out. */
struct delivery_code {
    const char *reason;  /* NULL: it may; else "superseded", "used",
                            "expired", "expiring", "login closed" */
    long seconds_left;   /* the code's life left, by the database's clock */
    char contact_id[72]; /* the login's user */
    char why[64];        /* with reason: what to record, "expiring (12 s
                            left)" or the reason itself */
};

/* 1 found, 0 no such delivery, -1 database error. lock: FOR UPDATE (a
 * completion, which writes the row). */
int delivery_get(struct db *db, const char *delivery_id, int lock,
                 struct delivery *out) __attribute__((warn_unused_result));

/* 1 for sent, failed and dropped: nothing more happens to the row. */
int delivery_is_final(const char *status);

/* The code of delivery_id and its login, in one read: 1 found
 * (out->reason says whether it is still sendable: below min_remaining_s
 * of life left is "expiring"), 0 none, -1 database error. */
int delivery_code_get(struct db *db, const char *delivery_id,
                      long min_remaining_s, struct delivery_code *out)
    __attribute__((warn_unused_result));

/*
 * Opens a dispatch job's sealed code: the associated data
 * "<login_id>:<delivery_id>" binds it to its login and delivery, so a job
 * cannot borrow another delivery's code. 0 with clear holding the digits
 * (cap bytes, MFA_CODE_MAX + 1 will do; wipe it after use), or -1 when it
 * does not open or is not a code (clear wiped).
 */
int delivery_code_open(const unsigned char key[MFA_KEY_BYTES],
                       const char *login_id, const char *delivery_id,
                       const char *sealed_b64, char *clear, size_t cap)
    __attribute__((warn_unused_result));

/* queued -> sent, one more provider attempt, the provider's id for the
 * message (SMTP queue id, Message SID; NULL or "" when none). */
int delivery_sent(struct db *db, const char *delivery_id,
                  const char *provider_id) __attribute__((warn_unused_result));

/* queued -> status ("failed" or "dropped") with the reason; attempted: a
 * provider call was made (counts in attempts). */
int delivery_final(struct db *db, const char *delivery_id, const char *status,
                   const char *reason, int attempted)
    __attribute__((warn_unused_result));

/* A provider attempt that will be retried: attempts + 1, last_error, and
 * possible_duplicate set when the answer was ambiguous (kept once set). */
int delivery_attempt(struct db *db, const char *delivery_id, const char *reason,
                     int ambiguous) __attribute__((warn_unused_result));

#endif
