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

static const char SQL_DELIVERY[] =
    "SELECT status, kind, channel, login_id, attempts, possible_duplicate "
    "FROM mfa.deliveries WHERE delivery_id = $1";
static const char SQL_DELIVERY_LOCK[] =
    "SELECT status, kind, channel, login_id, attempts, possible_duplicate "
    "FROM mfa.deliveries WHERE delivery_id = $1 FOR UPDATE";

/* Everything that says whether the code may still go out, in one read:
 * its own state, its remaining life (the database's clock, like the one
 * that wrote expires_at), and its login's state. */
static const char SQL_CODE[] =
    "SELECT l.contact_id, c.superseded_at IS NOT NULL, "
    " c.used_at IS NOT NULL, "
    " floor(extract(epoch FROM c.expires_at - now()))::bigint, l.status, "
    " l.expires_at <= now() "
    "FROM mfa.codes c JOIN mfa.logins l ON l.login_id = c.login_id "
    "WHERE c.delivery_id = $1";

static const char SQL_SENT[] =
    "UPDATE mfa.deliveries SET status = 'sent', attempts = attempts + 1, "
    " provider_message_id = $2, sent_at = now(), finished_at = now(), "
    " updated_at = now() "
    "WHERE delivery_id = $1 AND status = 'queued'";
static const char SQL_FINAL[] =
    "UPDATE mfa.deliveries SET status = $2, last_error = $3, "
    " attempts = attempts + $4::int, finished_at = now(), updated_at = now() "
    "WHERE delivery_id = $1 AND status = 'queued'";
static const char SQL_ATTEMPT[] =
    "UPDATE mfa.deliveries SET attempts = attempts + 1, last_error = $2, "
    " possible_duplicate = possible_duplicate OR $3::boolean, "
    " updated_at = now() "
    "WHERE delivery_id = $1 AND status = 'queued'";

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

int
delivery_get(struct db *db, const char *delivery_id, int lock,
             struct delivery *out)
{
    const char *p[1] = {delivery_id};
    PGresult *res = db_query(db, lock ? SQL_DELIVERY_LOCK : SQL_DELIVERY, 1, p);
    int rc = 0;

    if (res == NULL)
        return -1;
    memset(out, 0, sizeof(*out));
    if (PQntuples(res) == 1) {
        delivery_copy(out->status, sizeof(out->status), db_get(res, 0, 0));
        delivery_copy(out->kind, sizeof(out->kind), db_get(res, 0, 1));
        delivery_copy(out->channel, sizeof(out->channel), db_get(res, 0, 2));
        delivery_copy(out->login_id, sizeof(out->login_id), db_get(res, 0, 3));
        out->attempts = strtol(db_get(res, 0, 4), NULL, 10);
        out->possible_duplicate = delivery_true(db_get(res, 0, 5));
        rc = 1;
    }
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
delivery_code_get(struct db *db, const char *delivery_id, long min_remaining_s,
                  struct delivery_code *out)
{
    const char *p[1] = {delivery_id};
    PGresult *res = db_query(db, SQL_CODE, 1, p);
    const char *login_status;
    int rc = 0;

    if (res == NULL)
        return -1;
    memset(out, 0, sizeof(*out));
    if (PQntuples(res) != 1)
        goto out;
    rc = 1;
    delivery_copy(out->contact_id, sizeof(out->contact_id), db_get(res, 0, 0));
    out->seconds_left = strtol(db_get(res, 0, 3), NULL, 10);
    login_status = db_get(res, 0, 4);
    if (delivery_true(db_get(res, 0, 1)))
        out->reason = "superseded";
    else if (delivery_true(db_get(res, 0, 2)))
        out->reason = "used";
    else if (out->seconds_left <= 0)
        out->reason = "expired";
    else if (out->seconds_left < min_remaining_s)
        out->reason = "expiring";
    else if ((strcmp(login_status, "pending") != 0 &&
              strcmp(login_status, "code_sent") != 0) ||
             delivery_true(db_get(res, 0, 5)))
        out->reason = "login closed";
    /* How long it had left says why "expiring" was too short. */
    if (out->reason != NULL && strcmp(out->reason, "expiring") == 0)
        snprintf(out->why, sizeof(out->why), "%s (%ld s left)", out->reason,
                 out->seconds_left > 0 ? out->seconds_left : 0);
    else if (out->reason != NULL)
        delivery_copy(out->why, sizeof(out->why), out->reason);
out:
    PQclear(res);
    return rc;
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

int
delivery_sent(struct db *db, const char *delivery_id, const char *provider_id)
{
    const char *p[2] = {delivery_id,
                        provider_id && *provider_id ? provider_id : NULL};

    return db_exec(db, SQL_SENT, 2, p);
}

int
delivery_final(struct db *db, const char *delivery_id, const char *status,
               const char *reason, int attempted)
{
    const char *p[4] = {delivery_id, status, reason, attempted ? "1" : "0"};

    return db_exec(db, SQL_FINAL, 4, p);
}

int
delivery_attempt(struct db *db, const char *delivery_id, const char *reason,
                 int ambiguous)
{
    const char *p[3] = {delivery_id, reason, ambiguous ? "true" : "false"};

    return db_exec(db, SQL_ATTEMPT, 3, p);
}
