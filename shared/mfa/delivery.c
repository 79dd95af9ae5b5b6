/*
 * delivery.c - the SQL and checks of a delivery (see delivery.h).
 *
 * Callers: the runtime's dispatch steps (shared/runtime/dispatch.c) and
 * the completions of mfa-email and mfa-sms (workers/email/handler.c,
 * workers/sms/handler.c), on the job's connection, inside the runtime's
 * transaction. State changes only ever leave 'queued'.
 *
 * Security notes: the code row is only asked whether it is still alive;
 * no code hash, key or clear code is read from the database. The sealed
 * code is opened here and its clear digits are the caller's to wipe; a
 * code that does not open is wiped before returning. last_error texts are
 * the callers' and must hold masked addresses only.
 */
#include "mfa/delivery.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

static const char SQL_DELIVERY_LOCK[] =
    "SELECT status, kind, channel, login_id, attempts, possible_duplicate "
    "FROM mfa.deliveries WHERE delivery_id = $1 FOR UPDATE";

/* Each answers with the row it changed: none when the delivery is no
 * longer queued (final meanwhile, or gone). */
static const char SQL_SENT[] =
    "UPDATE mfa.deliveries SET status = 'sent', attempts = attempts + 1, "
    " provider_message_id = $2, sent_at = now(), finished_at = now(), "
    " updated_at = now() "
    "WHERE delivery_id = $1 AND status = 'queued' "
    "RETURNING possible_duplicate";
static const char SQL_FINAL[] =
    "UPDATE mfa.deliveries SET status = $2, last_error = $3, "
    " attempts = attempts + $4::int, finished_at = now(), updated_at = now() "
    "WHERE delivery_id = $1 AND status = 'queued' RETURNING 1";
static const char SQL_ATTEMPT[] =
    "UPDATE mfa.deliveries SET attempts = attempts + 1, last_error = $2, "
    " possible_duplicate = possible_duplicate OR $3::boolean, "
    " updated_at = now() "
    "WHERE delivery_id = $1 AND status = 'queued' RETURNING attempts";

/* The shortest code mfa-codes makes (codes.length's minimum). */
#define DELIVERY_CODE_MIN 6

static void
delivery_copy(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
}

static int
delivery_true(const char *v)
{
    return v != NULL && strcmp(v, "t") == 0;
}

/* The delivery columns of a row at col: DELIVERY_FACTS_COLS' first six,
 * or SQL_DELIVERY_LOCK's. */
int
delivery_from_row(const PGresult *res, int row, int col, struct delivery *out)
{
    memset(out, 0, sizeof(*out));
    if (db_get(res, row, col) == NULL)
        return 0;
    delivery_copy(out->status, sizeof(out->status), db_get(res, row, col));
    delivery_copy(out->kind, sizeof(out->kind), db_get(res, row, col + 1));
    delivery_copy(out->channel, sizeof(out->channel),
                  db_get(res, row, col + 2));
    delivery_copy(out->login_id, sizeof(out->login_id),
                  db_get(res, row, col + 3));
    out->attempts = strtol(db_get(res, row, col + 4), NULL, 10);
    out->possible_duplicate = delivery_true(db_get(res, row, col + 5));
    return 1;
}

int
delivery_get_locked(struct db *db, const char *delivery_id,
                    struct delivery *out)
{
    const char *p[1] = {delivery_id};
    PGresult *res = db_query(db, SQL_DELIVERY_LOCK, 1, p);
    int rc;

    memset(out, 0, sizeof(*out));
    if (res == NULL)
        return -1;
    rc = PQntuples(res) == 1 ? delivery_from_row(res, 0, 0, out) : 0;
    PQclear(res);
    return rc;
}

int
delivery_is_final(const char *status)
{
    return strcmp(status, "sent") == 0 || strcmp(status, "failed") == 0 ||
           strcmp(status, "dropped") == 0;
}

int
delivery_code_from_row(const PGresult *res, int row, int col,
                       long min_remaining_s, struct delivery_code *out)
{
    const char *login_status;

    memset(out, 0, sizeof(*out));
    col += DELIVERY_FACTS_CODE_COL;
    if (!delivery_true(db_get(res, row, col + 6)))
        return 0;
    delivery_copy(out->contact_id, sizeof(out->contact_id),
                  db_get(res, row, col));
    out->seconds_left = strtol(db_get(res, row, col + 3), NULL, 10);
    out->minutes_left = (out->seconds_left + 30) / 60;
    if (out->minutes_left < 1)
        out->minutes_left = 1;
    login_status = db_get(res, row, col + 4);
    if (delivery_true(db_get(res, row, col + 1)))
        out->reason = "superseded";
    else if (delivery_true(db_get(res, row, col + 2)))
        out->reason = "used";
    else if (out->seconds_left <= 0)
        out->reason = "expired";
    else if (out->seconds_left < min_remaining_s)
        out->reason = "expiring";
    else if ((strcmp(login_status, "pending") != 0 &&
              strcmp(login_status, "code_sent") != 0) ||
             delivery_true(db_get(res, row, col + 5)))
        out->reason = "login closed";
    /* How long it had left says why "expiring" was too short. */
    if (out->reason != NULL && strcmp(out->reason, "expiring") == 0)
        snprintf(out->why, sizeof(out->why), "%s (%ld s left)", out->reason,
                 out->seconds_left > 0 ? out->seconds_left : 0);
    else if (out->reason != NULL)
        delivery_copy(out->why, sizeof(out->why), out->reason);
    return 1;
}

int
delivery_code_open(const unsigned char key[MFA_KEY_BYTES], const char *login_id,
                   const char *delivery_id, const char *sealed_b64, char *clear,
                   size_t cap)
{
    char ad[2 * ADDR_UUID_LEN + 2];
    size_t clen = 0;

    snprintf(ad, sizeof(ad), "%s:%s", login_id, delivery_id);
    if (unseal_b64(key, ad, sealed_b64, clear, cap, &clen) != 0 ||
        clen < DELIVERY_CODE_MIN || strspn(clear, "0123456789") != clen) {
        sodium_memzero(clear, cap);
        return -1;
    }
    return 0;
}

/* A statement of SQL_SENT's kind: 1 with the row changed (its first
 * column copied to first, when given), 0 when none was, -1 on error. */
static int
delivery_change(struct db *db, const char *sql, int nparams,
                const char *const *p, char *first, size_t n)
{
    PGresult *res = db_query(db, sql, nparams, p);
    int rc;

    if (res == NULL)
        return -1;
    rc = PQntuples(res) == 1;
    if (rc && first != NULL)
        delivery_copy(first, n, db_get(res, 0, 0));
    PQclear(res);
    return rc;
}

int
delivery_sent(struct db *db, const char *delivery_id, const char *provider_id,
              int *possible_duplicate)
{
    const char *p[2] = {delivery_id,
                        provider_id && *provider_id ? provider_id : NULL};
    char dup[8] = "";
    int rc = delivery_change(db, SQL_SENT, 2, p, dup, sizeof(dup));

    *possible_duplicate = delivery_true(dup);
    return rc;
}

int
delivery_final(struct db *db, const char *delivery_id, const char *status,
               const char *reason, int attempted)
{
    const char *p[4] = {delivery_id, status, reason, attempted ? "1" : "0"};

    return delivery_change(db, SQL_FINAL, 4, p, NULL, 0);
}

int
delivery_attempt(struct db *db, const char *delivery_id, const char *reason,
                 int ambiguous, long *attempts)
{
    const char *p[3] = {delivery_id, reason, ambiguous ? "true" : "false"};
    char n[24] = "0";
    int rc = delivery_change(db, SQL_ATTEMPT, 3, p, n, sizeof(n));

    if (attempts != NULL)
        *attempts = strtol(n, NULL, 10);
    return rc;
}
