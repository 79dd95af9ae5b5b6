/*
 * store.c - mfa-sms's SQL.
 *
 * Called by handler.c on the job's connection, inside the runtime's
 * transaction (the handler's reads; the completion's writes with the
 * delivery row locked). State changes only ever leave 'queued', so a
 * delivery that reached sent/failed/dropped never moves again, whoever
 * processes a duplicate.
 *
 * Security notes: no code or secret is read or written here; the code row
 * is only asked whether it is still alive. The user's phone number is
 * read to send to it and never logged from here.
 */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* A phone counts only when valid (the table's checks make phone_e164
 * NULL otherwise). */
static const char SQL_USER[] =
    "SELECT CASE WHEN phone_status = 'valid' THEN phone_e164 END, locale, "
    " enabled, phone_sms_blocked FROM mfa.users WHERE contact_id = $1";

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

/* Only the number we sent to: if the CRM changed the phone meanwhile,
 * the new number is not blocked for the old one's sake. */
static const char SQL_BLOCK[] =
    "UPDATE mfa.users SET phone_sms_blocked = $3, updated_at = now() "
    "WHERE contact_id = $1 AND phone_e164 = $2";

static const char SQL_AUDIT[] =
    "INSERT INTO mfa.audit (actor, action, contact_id, login_id, event_id, "
    " detail) VALUES ('mfa-sms', $1, $2, $3, $4, $5::jsonb)";

static void
store_copy(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
}

static int
store_true(const char *v)
{
    return v != NULL && strcmp(v, "t") == 0;
}

int
store_delivery_get(struct db *db, const char *delivery_id, int lock,
                   struct store_delivery *out)
{
    const char *p[1] = {delivery_id};
    PGresult *res = db_query(db, lock ? SQL_DELIVERY_LOCK : SQL_DELIVERY, 1, p);
    int rc = 0;

    if (res == NULL)
        return -1;
    memset(out, 0, sizeof(*out));
    if (PQntuples(res) == 1) {
        store_copy(out->status, sizeof(out->status), db_get(res, 0, 0));
        store_copy(out->kind, sizeof(out->kind), db_get(res, 0, 1));
        store_copy(out->channel, sizeof(out->channel), db_get(res, 0, 2));
        store_copy(out->login_id, sizeof(out->login_id), db_get(res, 0, 3));
        out->attempts = strtol(db_get(res, 0, 4), NULL, 10);
        out->possible_duplicate = store_true(db_get(res, 0, 5));
        rc = 1;
    }
    PQclear(res);
    return rc;
}

int
store_code_get(struct db *db, const char *delivery_id, long min_remaining_s,
               struct store_code *out)
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
    store_copy(out->contact_id, sizeof(out->contact_id), db_get(res, 0, 0));
    out->seconds_left = strtol(db_get(res, 0, 3), NULL, 10);
    login_status = db_get(res, 0, 4);
    if (store_true(db_get(res, 0, 1)))
        out->reason = "superseded";
    else if (store_true(db_get(res, 0, 2)))
        out->reason = "used";
    else if (out->seconds_left <= 0)
        out->reason = "expired";
    else if (out->seconds_left < min_remaining_s)
        out->reason = "expiring";
    else if ((strcmp(login_status, "pending") != 0 &&
              strcmp(login_status, "code_sent") != 0) ||
             store_true(db_get(res, 0, 5)))
        out->reason = "login closed";
out:
    PQclear(res);
    return rc;
}

int
store_user_get(struct db *db, const char *contact_id, struct store_user *out)
{
    const char *p[1] = {contact_id};
    PGresult *res = db_query(db, SQL_USER, 1, p);
    int rc = 0;

    if (res == NULL)
        return -1;
    memset(out, 0, sizeof(*out));
    if (PQntuples(res) == 1) {
        store_copy(out->phone, sizeof(out->phone), db_get(res, 0, 0));
        store_copy(out->locale, sizeof(out->locale), db_get(res, 0, 1));
        out->enabled = store_true(db_get(res, 0, 2));
        store_copy(out->blocked, sizeof(out->blocked), db_get(res, 0, 3));
        rc = 1;
    }
    PQclear(res);
    return rc;
}

int
store_sent(struct db *db, const char *delivery_id, const char *sid)
{
    const char *p[2] = {delivery_id, sid && *sid ? sid : NULL};

    return db_exec(db, SQL_SENT, 2, p);
}

int
store_final(struct db *db, const char *delivery_id, const char *status,
            const char *reason, int attempted)
{
    const char *p[4] = {delivery_id, status, reason, attempted ? "1" : "0"};

    return db_exec(db, SQL_FINAL, 4, p);
}

int
store_attempt(struct db *db, const char *delivery_id, const char *reason,
              int ambiguous)
{
    const char *p[3] = {delivery_id, reason, ambiguous ? "true" : "false"};

    return db_exec(db, SQL_ATTEMPT, 3, p);
}

int
store_block_phone(struct db *db, const char *contact_id, const char *phone,
                  const char *why)
{
    const char *p[3] = {contact_id, phone, why};

    return db_exec(db, SQL_BLOCK, 3, p);
}

int
store_audit(struct db *db, const char *action, const char *contact_id,
            const char *login_id, const char *event_id, const char *detail)
{
    const char *p[5] = {action, contact_id,
                        login_id && *login_id ? login_id : NULL, event_id,
                        detail};

    return db_exec(db, SQL_AUDIT, 5, p);
}
