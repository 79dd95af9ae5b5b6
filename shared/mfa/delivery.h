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
    long minutes_left;   /* the same for "valid for N minutes": rounded,
                            at least 1 */
    char contact_id[72]; /* the login's user */
    char why[64];        /* with reason: what to record, "expiring (12 s
                            left)" or the reason itself */
};

/*
 * What a dispatch job's handler reads of its delivery, its code and the
 * code's login, as columns of a bigger SELECT over rows r(did) (one per
 * job): DELIVERY_FACTS_COLS in its select list, DELIVERY_FACTS_JOIN after
 * its FROM. A delivery that does not exist, or has no code (a notice),
 * gives NULL columns. Each row is found by its key (LATERAL ... LIMIT 1:
 * the planner cannot turn them into joins): a prepared statement keeps
 * its generic plan for the connection's life, and one made while the
 * tables were small would otherwise keep scanning them whole (measured:
 * e2e flows/s halving from one bench run to the next).
 */
#define DELIVERY_FACTS_COLS                                                    \
    "d.status, d.kind, d.channel, d.login_id, d.attempts, "                    \
    "d.possible_duplicate, l.contact_id, c.superseded_at IS NOT NULL, "        \
    "c.used_at IS NOT NULL, "                                                  \
    "floor(extract(epoch FROM c.expires_at - now()))::bigint, l.status, "      \
    "l.expires_at <= now(), c.delivery_id IS NOT NULL"
#define DELIVERY_FACTS_NCOLS 13
#define DELIVERY_FACTS_CODE_COL 6 /* where the code's columns start */
#define DELIVERY_FACTS_JOIN                                                    \
    "LEFT JOIN LATERAL (SELECT * FROM mfa.deliveries "                         \
    " WHERE delivery_id = r.did LIMIT 1) d ON true "                           \
    "LEFT JOIN LATERAL (SELECT * FROM mfa.codes "                              \
    " WHERE delivery_id = r.did LIMIT 1) c ON true "                           \
    "LEFT JOIN LATERAL (SELECT * FROM mfa.logins "                             \
    " WHERE login_id = c.login_id LIMIT 1) l ON true"

/* The delivery of such a row (DELIVERY_FACTS_COLS from col): 1, or 0
 * when there is no such delivery. */
int delivery_from_row(const PGresult *res, int row, int col,
                      struct delivery *out);

/* The code of such a row (from col, as above): 1 found (out->reason says
 * whether it is still sendable: below min_remaining_s of life left is
 * "expiring"), 0 none. */
int delivery_code_from_row(const PGresult *res, int row, int col,
                           long min_remaining_s, struct delivery_code *out);

/* A completion's read of the row it may write, FOR UPDATE: 1 found, 0 no
 * such delivery, -1 database error. */
int delivery_get_locked(struct db *db, const char *delivery_id,
                        struct delivery *out)
    __attribute__((warn_unused_result));

/* 1 for sent, failed and dropped: nothing more happens to the row. */
int delivery_is_final(const char *status);

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

/*
 * The writes below change a delivery only while it is 'queued', and say
 * whether they did: 1 changed, 0 not (final meanwhile, or gone: the
 * caller records nothing more), -1 database error.
 *
 * queued -> sent, one more provider attempt, the provider's id for the
 * message (SMTP queue id, Message SID; NULL or "" when none);
 * *possible_duplicate: an ambiguous answer was retried before.
 */
int delivery_sent(struct db *db, const char *delivery_id,
                  const char *provider_id, int *possible_duplicate)
    __attribute__((warn_unused_result));

/* queued -> status ("failed" or "dropped") with the reason; attempted: a
 * provider call was made (counts in attempts). */
int delivery_final(struct db *db, const char *delivery_id, const char *status,
                   const char *reason, int attempted)
    __attribute__((warn_unused_result));

/* A provider attempt that will be retried: attempts + 1 (the new count in
 * *attempts when given), last_error, and possible_duplicate set when the
 * answer was ambiguous (kept once set). */
int delivery_attempt(struct db *db, const char *delivery_id, const char *reason,
                     int ambiguous, long *attempts)
    __attribute__((warn_unused_result));

#endif
