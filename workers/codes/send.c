/*
 * send.c - mfa-codes: login.code_requested issues a code and dispatches it.
 *
 * Called by handler.c inside the runtime's transaction. Order of checks:
 *   unknown login                           -> unknown_login
 *   login locked                            -> locked
 *   method not offered at login.started     -> method_unavailable
 *   login over (verified, cancelled, timed out, or with less life left
 *   than codes.min_remaining_seconds, so the dispatch would be dropped)
 *                                           -> expired
 *   method no longer available now (email changed, phone blocked, SMS
 *   settings cleared, region no longer allowed)  -> method_unavailable
 *   send limits (mfa/policy)                -> rate_limited [retry_after_s]
 *   otherwise: new code                     -> sent, expires_at
 *
 * Rate limits count requests, not deliveries: every accepted request
 * (each code issued) counts at once, whatever later becomes of its email
 * or SMS. Every request for a known login is recorded in
 * mfa.code_requests with its outcome, but only outcome 'sent' counts
 * toward the limits, so a user pressing "resend" during the cooldown does
 * not push the cooldown further out. The per-number SMS limit counts by a
 * keyed hash of the number (dest_hash), never the number.
 *
 * Concurrency: the user's row (FOR NO KEY UPDATE), then the login's row
 * (FOR UPDATE), then for SMS a transaction advisory lock on the number's
 * hash; that order is the one mfa-contact-sync takes (user, then logins,
 * then codes), so per-user and per-number counts cannot be raced.
 *
 * Security notes: the clear code lives in one stack buffer from
 * generation to hashing and sealing, then is wiped. Only its keyed hash
 * (bound to the login, tagged with the key id) is stored; it travels
 * sealed with AD "<login_id>:<delivery_id>" (docs/internals.md). Logs and
 * audit rows get the masked destination.
 */
#include "codes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "mfa/methods.h"
#include "mfa/policy.h"
#include "runtime/topology.h"
#include "util/log.h"

static const char SQL_OWNER[] =
    "SELECT contact_id FROM mfa.logins WHERE login_id = $1";
static const char SQL_USER_LOCK[] =
    "SELECT 1 FROM mfa.users WHERE contact_id = $1 FOR NO KEY UPDATE";
/* Ages with clock_timestamp(): now() is the batch's start, older than the
 * rows a competing worker committed while we waited for the lock. */
static const char SQL_LOGIN_LOCK[] =
    "SELECT status, $2::text = ANY (methods), "
    " extract(epoch FROM expires_at - clock_timestamp())::float8, sends, "
    " extract(epoch FROM clock_timestamp() - last_code_at)::float8 "
    "FROM mfa.logins WHERE login_id = $1 FOR UPDATE";
static const char SQL_NUMBER_LOCK[] =
    "SELECT pg_advisory_xact_lock(hashtextextended(encode($1::bytea, "
    " 'hex'), 20117))";
/* Count and the age of the limit-th most recent accepted request. */
static const char SQL_USER_SENDS[] =
    "SELECT count(*), coalesce((SELECT extract(epoch FROM "
    "  clock_timestamp() - r.created_at)::float8 "
    "  FROM mfa.code_requests r WHERE r.contact_id = $1 "
    "  AND r.outcome = 'sent' "
    "  AND r.created_at > clock_timestamp() - interval '1 hour' "
    "  ORDER BY r.created_at DESC OFFSET $2::int - 1 LIMIT 1), -1) "
    "FROM mfa.code_requests WHERE contact_id = $1 AND outcome = 'sent' "
    " AND created_at > clock_timestamp() - interval '1 hour'";
static const char SQL_NUMBER_SENDS[] =
    "SELECT count(*), coalesce((SELECT extract(epoch FROM "
    "  clock_timestamp() - r.created_at)::float8 "
    "  FROM mfa.code_requests r WHERE r.dest_hash = $1::bytea "
    "  AND r.channel = 'sms' AND r.outcome = 'sent' "
    "  AND r.created_at > clock_timestamp() - interval '1 day' "
    "  ORDER BY r.created_at DESC OFFSET $2::int - 1 LIMIT 1), -1) "
    "FROM mfa.code_requests WHERE dest_hash = $1::bytea AND channel = 'sms' "
    " AND outcome = 'sent' "
    " AND created_at > clock_timestamp() - interval '1 day'";
static const char SQL_REQUEST[] =
    "INSERT INTO mfa.code_requests (login_id, contact_id, channel, "
    " dest_hash, region, created_at, outcome) "
    "VALUES ($1, $2, $3, $4::bytea, $5, clock_timestamp(), $6)";
/* One live code per login (schema index codes_live). */
static const char SQL_SUPERSEDE[] =
    "UPDATE mfa.codes SET superseded_at = clock_timestamp() "
    "WHERE login_id = $1 AND used_at IS NULL AND superseded_at IS NULL";
static const char SQL_DELIVERY[] =
    "INSERT INTO mfa.deliveries (delivery_id, login_id, contact_id, "
    " channel, kind, status) VALUES ($1, $2, $3, $4, 'code', 'queued')";
/* Whole seconds, so the reply, the job and the row say the same time;
 * never past the login's own end. */
static const char SQL_CODE[] =
    "INSERT INTO mfa.codes (login_id, delivery_id, channel, code_hash, "
    " key_id, created_at, expires_at) "
    "VALUES ($1, $2, $3, $4::bytea, $5, clock_timestamp(), "
    " date_trunc('second', least(clock_timestamp() + "
    "  make_interval(secs => $6::int), "
    "  (SELECT expires_at FROM mfa.logins WHERE login_id = $1)))) "
    "RETURNING to_char(expires_at AT TIME ZONE 'UTC', "
    " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')";
static const char SQL_LOGIN_SENT[] =
    "UPDATE mfa.logins SET status = 'code_sent', sends = sends + 1, "
    " last_code_at = clock_timestamp() WHERE login_id = $1";

#define SEND_HEX_MAX (2 + MFA_HASH_BYTES * 2 + 1)

/* One request on its way through the checks. */
struct send {
    struct job *job;
    const char *login_id;
    const char *method;
    int mid;
    char contact_id[CODES_CONTACT_MAX];
    char dest_hex[SEND_HEX_MAX]; /* "\x..." keyed hash, "" until known */
    char region[3];
    char masked[ADDR_EMAIL_MAX + 8];
};

/* Records a refused request (known login only), audits it, replies. */
static enum mfa_verdict
send_refuse(struct send *s, const char *status, const char *reason,
            long retry_after_s)
{
    struct json_object *d, *r;
    const char *p[6];

    if (s->contact_id[0]) {
        p[0] = s->login_id;
        p[1] = s->contact_id;
        p[2] = s->method;
        p[3] = s->dest_hex[0] ? s->dest_hex : NULL;
        p[4] = s->region[0] ? s->region : NULL;
        p[5] = status;
        if (db_exec(job_db(s->job), SQL_REQUEST, 6, p) != 0)
            return codes_dberr(s->job, "record request");
    }
    d = json_object_new_object();
    json_object_object_add(d, "status", json_object_new_string(status));
    json_object_object_add(d, "channel", json_object_new_string(s->method));
    json_object_object_add(d, "reason", json_object_new_string(reason));
    if (retry_after_s >= 0)
        json_object_object_add(d, "retry_after_s",
                               json_object_new_int64(retry_after_s));
    if (codes_audit(s->job, "code.refused",
                    s->contact_id[0] ? s->contact_id : NULL, s->login_id,
                    d) != 0)
        return codes_dberr(s->job, "audit");
    log_kv(LOGL_INFO, "code request refused", "login_id", s->login_id,
           "channel", s->method, "status", status, "reason", reason, NULL);
    r = codes_reply_new(s->login_id, status);
    if (retry_after_s >= 0)
        json_object_object_add(r, "retry_after_s",
                               json_object_new_int64(retry_after_s));
    job_reply(s->job, r);
    return MFA_OK;
}

/* count and edge age from SQL_USER_SENDS / SQL_NUMBER_SENDS. */
static int
send_count(struct send *s, const char *sql, const char *key, long limit,
           long *count, double *edge_age)
{
    char lim[24];
    const char *p[2] = {key, lim};
    PGresult *res;

    snprintf(lim, sizeof(lim), "%ld", limit);
    res = db_query(job_db(s->job), sql, 2, p);
    if (res == NULL)
        return -1;
    *count = (long)codes_num(db_get(res, 0, 0), 0);
    *edge_age = codes_num(db_get(res, 0, 1), -1);
    PQclear(res);
    return 0;
}

/* The policy facts; SMS first takes the number's lock. 0 or -1. */
static int
send_facts(struct send *s, long login_sends, double since_last,
           struct policy_send_facts *f)
{
    const struct mfa_config *cfg = codes_cfg(s->job);
    const char *p[1] = {s->dest_hex};

    memset(f, 0, sizeof(*f));
    f->login_sends = login_sends;
    f->since_last_s = since_last;
    f->number_edge_age_s = -1;
    if (s->mid == METHOD_SMS &&
        (db_exec(job_db(s->job), SQL_NUMBER_LOCK, 1, p) != 0 ||
         send_count(s, SQL_NUMBER_SENDS, s->dest_hex,
                    cfg->phone.max_sms_per_number_per_day, &f->number_sms,
                    &f->number_edge_age_s) != 0))
        return -1;
    return send_count(s, SQL_USER_SENDS, s->contact_id,
                      cfg->codes.max_sends_per_user_per_hour, &f->user_sends,
                      &f->user_edge_age_s);
}

/* New code, rows, dispatch job, reply. The clear code is wiped here. */
static enum mfa_verdict
send_issue(struct send *s)
{
    const struct mfa_config *cfg = codes_cfg(s->job);
    const struct mfa_keys *keys = worker_keys(job_worker(s->job));
    struct db *db = job_db(s->job);
    char code[MFA_CODE_MAX + 1], did[ADDR_UUID_LEN + 1], ad[80];
    char hhex[SEND_HEX_MAX], ttl[24], expires[40];
    unsigned char h[MFA_HASH_BYTES];
    const char *p[6], *what = NULL;
    struct json_object *d, *r;
    char *sealed;
    PGresult *res;

    addr_uuid_new(did);
    policy_code_new(code, cfg->codes.length, NULL);
    code_hash(keys, s->login_id, code, h);
    snprintf(ad, sizeof(ad), "%s:%s", s->login_id, did);
    sealed = seal_b64(keys->seal, ad, code, strlen(code));
    sodium_memzero(code, sizeof(code));
    hhex[0] = '\\';
    hhex[1] = 'x';
    sodium_bin2hex(hhex + 2, sizeof(hhex) - 2, h, sizeof(h));
    sodium_memzero(h, sizeof(h));

    p[0] = s->login_id;
    if (db_exec(db, SQL_SUPERSEDE, 1, p) != 0) {
        what = "supersede codes";
        goto out;
    }
    p[0] = did;
    p[1] = s->login_id;
    p[2] = s->contact_id;
    p[3] = s->method;
    if (db_exec(db, SQL_DELIVERY, 4, p) != 0) {
        what = "insert delivery";
        goto out;
    }
    snprintf(ttl, sizeof(ttl), "%ld", cfg->codes.ttl_seconds);
    p[0] = s->login_id;
    p[1] = did;
    p[2] = s->method;
    p[3] = hhex;
    p[4] = keys->key_id;
    p[5] = ttl;
    res = db_query(db, SQL_CODE, 6, p);
    if (res == NULL) {
        what = "insert code";
        goto out;
    }
    snprintf(expires, sizeof(expires), "%s", db_get(res, 0, 0));
    PQclear(res);
    p[0] = s->login_id;
    if (db_exec(db, SQL_LOGIN_SENT, 1, p) != 0) {
        what = "update login";
        goto out;
    }
    p[0] = s->login_id;
    p[1] = s->contact_id;
    p[2] = s->method;
    p[3] = s->dest_hex;
    p[4] = s->region[0] ? s->region : NULL;
    p[5] = "sent";
    if (db_exec(db, SQL_REQUEST, 6, p) != 0) {
        what = "record request";
        goto out;
    }

    d = json_object_new_object();
    json_object_object_add(d, "delivery_id", json_object_new_string(did));
    json_object_object_add(d, "login_id", json_object_new_string(s->login_id));
    json_object_object_add(d, "contact_id",
                           json_object_new_string(s->contact_id));
    json_object_object_add(d, "channel", json_object_new_string(s->method));
    json_object_object_add(d, "sealed", json_object_new_string(sealed));
    json_object_object_add(d, "expires_at", json_object_new_string(expires));
    job_emit(s->job, MFA_EX_DISPATCH, s->method, "dispatch.code", d);

    d = json_object_new_object();
    json_object_object_add(d, "channel", json_object_new_string(s->method));
    json_object_object_add(d, "delivery_id", json_object_new_string(did));
    json_object_object_add(d, "to", json_object_new_string(s->masked));
    json_object_object_add(d, "expires_at", json_object_new_string(expires));
    if (codes_audit(s->job, "code.sent", s->contact_id, s->login_id, d) != 0) {
        what = "audit";
        goto out;
    }
    log_kv(LOGL_INFO, "code issued", "login_id", s->login_id, "contact_id",
           s->contact_id, "channel", s->method, "to", s->masked, "delivery_id",
           did, "expires_at", expires, NULL);
    r = codes_reply_new(s->login_id, "sent");
    json_object_object_add(r, "expires_at", json_object_new_string(expires));
    job_reply(s->job, r);
out:
    free(sealed);
    return what ? codes_dberr(s->job, what) : MFA_OK;
}

/* The destination's keyed hash ("\x..." bytea text) and mask. */
static void
send_destination(struct send *s, const struct methods *m)
{
    const struct mfa_keys *keys = worker_keys(job_worker(s->job));
    const char *dest = s->mid == METHOD_SMS ? m->phone : m->email;
    unsigned char h[MFA_HASH_BYTES];
    char eh[ADDR_EMAIL_MAX + 8], ph[64];

    dest_hash(keys, dest, h);
    s->dest_hex[0] = '\\';
    s->dest_hex[1] = 'x';
    sodium_bin2hex(s->dest_hex + 2, sizeof(s->dest_hex) - 2, h, sizeof(h));
    if (s->mid == METHOD_SMS)
        memcpy(s->region, m->region, sizeof(s->region));
    methods_hints(m, eh, sizeof(eh), ph, sizeof(ph));
    snprintf(s->masked, sizeof(s->masked), "%s",
             s->mid == METHOD_SMS ? ph : eh);
}

/* After the login checks: is the method still there, are limits kept. */
static enum mfa_verdict
send_checked(struct send *s, long login_sends, double since_last)
{
    const struct mfa_config *cfg = codes_cfg(s->job);
    struct policy_send_facts f;
    enum policy_send pol;
    struct methods m;
    long wait;

    if (methods_check(job_db(s->job), s->contact_id,
                      &cfg->phone.sms_allowed_regions, &m) != 0)
        return codes_dberr(s->job, "methods");
    /* Demotion cancels the user's logins; this only covers a race. */
    if (!m.found || !m.enabled)
        return send_refuse(s, "expired", "user disabled", -1);
    if (!m.offered[s->mid])
        return send_refuse(s, "method_unavailable", m.why[s->mid], -1);
    send_destination(s, &m);
    if (send_facts(s, login_sends, since_last, &f) != 0)
        return codes_dberr(s->job, "rate facts");
    pol = policy_send_check(&cfg->codes, cfg->phone.max_sms_per_number_per_day,
                            &f, &wait);
    if (pol != POLICY_SEND_OK)
        return send_refuse(s, "rate_limited", policy_send_name(pol), wait);
    return send_issue(s);
}

enum mfa_verdict
codes_code_requested(struct job *job)
{
    const struct envelope *ev = job_event(job);
    const struct mfa_config *cfg = codes_cfg(job);
    struct db *db = job_db(job);
    struct send s;
    const char *p[2], *status;
    PGresult *res;
    int offered;
    double left, since_last;
    long sends;

    memset(&s, 0, sizeof(s));
    s.job = job;
    s.login_id = ev->u.code_requested.login_id;
    s.method = ev->u.code_requested.method;
    s.mid = method_from_name(s.method);
    if (s.mid < 0) {
        /* The envelope only lets "email" and "sms" through. */
        job_fail(job, "data.method: not a known method");
        return MFA_REJECT;
    }

    p[0] = s.login_id;
    res = db_query(db, SQL_OWNER, 1, p);
    if (res == NULL)
        return codes_dberr(job, "load login");
    if (PQntuples(res) == 1)
        snprintf(s.contact_id, sizeof(s.contact_id), "%s", db_get(res, 0, 0));
    PQclear(res);
    if (s.contact_id[0] == '\0')
        return send_refuse(&s, "unknown_login", "no such login", -1);

    p[0] = s.contact_id;
    if (db_exec(db, SQL_USER_LOCK, 1, p) != 0)
        return codes_dberr(job, "lock user");
    p[0] = s.login_id;
    p[1] = s.method;
    res = db_query(db, SQL_LOGIN_LOCK, 2, p);
    if (res == NULL)
        return codes_dberr(job, "lock login");
    if (PQntuples(res) != 1) {
        /* The owner query saw it; logins are never deleted here. */
        PQclear(res);
        job_fail(job, "login vanished while locking it");
        return MFA_RETRY;
    }
    status = db_get(res, 0, 0);
    offered = db_get(res, 0, 1)[0] == 't';
    left = codes_num(db_get(res, 0, 2), 0);
    sends = (long)codes_num(db_get(res, 0, 3), 0);
    since_last = codes_num(db_get(res, 0, 4), -1);
    if (strcmp(status, "locked") == 0) {
        PQclear(res);
        return send_refuse(&s, "locked", "login locked", -1);
    }
    if (!offered) {
        PQclear(res);
        return send_refuse(&s, "method_unavailable",
                           "not offered when the login started", -1);
    }
    if (strcmp(status, "pending") != 0 && strcmp(status, "code_sent") != 0) {
        char why[40];

        snprintf(why, sizeof(why), "login %s", status);
        PQclear(res);
        return send_refuse(&s, "expired", why, -1);
    }
    PQclear(res);
    if (left <= 0)
        return send_refuse(&s, "expired", "login expired", -1);
    /* The dispatch workers drop a code with less life than this left. */
    if (left < (double)cfg->codes.min_remaining_seconds)
        return send_refuse(&s, "expired", "login expires too soon", -1);
    return send_checked(&s, sends, since_last);
}
