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
 * Round trips: the owner with its lock (codes_owner_lock) and, in the
 * same round trip, the login with its lock, the user's facts and hourly
 * count (SQL_LOGIN_LOCK); for SMS
 * the number's lock and then its count; every row of a new code in one
 * statement (SQL_ISSUE); the audit row (audit_event).
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

/*
 * The login, locked, with everything the checks read, in one round trip
 * (after the owner's lock, in its round trip: codes_owner_lock): the login's
 * state and counters, the user's method facts and SMS settings
 * (mfa/methods) and the user's accepted requests of the last hour with
 * the age of the limit-th most recent one ($3). The user's lock keeps
 * those counts still: every request of the user is written under it.
 * Ages with clock_timestamp(): now() is the batch's start, older than the
 * rows a competing worker committed while we waited for the lock.
 */
static const char SQL_LOGIN_LOCK[] =
    "SELECT l.status, $2::text = ANY (l.methods), "
    " extract(epoch FROM l.expires_at - clock_timestamp())::float8, "
    " l.sends, extract(epoch FROM clock_timestamp() - l.last_code_at)::float8, "
    " (SELECT count(*) FROM mfa.code_requests r WHERE r.contact_id = "
    "  l.contact_id AND r.outcome = 'sent' "
    "  AND r.created_at > clock_timestamp() - interval '1 hour'), "
    " coalesce((SELECT extract(epoch FROM "
    "  clock_timestamp() - r.created_at)::float8 "
    "  FROM mfa.code_requests r WHERE r.contact_id = l.contact_id "
    "  AND r.outcome = 'sent' "
    "  AND r.created_at > clock_timestamp() - interval '1 hour' "
    "  ORDER BY r.created_at DESC OFFSET $3::int - 1 LIMIT 1), "
    "-1), " METHODS_FACTS_SQL
    "FROM mfa.logins l JOIN mfa.users u ON u.contact_id = l.contact_id "
    "LEFT JOIN mfa.settings s ON s.name = 'sms' "
    "WHERE l.login_id = $1 FOR UPDATE OF l";
#define SEND_FACTS_COL 7 /* the first column of METHODS_FACTS_SQL above */
/* SMS: the number's lock, then (a statement of its own, so that its
 * snapshot sees what the previous holder committed) its count. */
static const char SQL_NUMBER_LOCK[] =
    "SELECT pg_advisory_xact_lock(hashtextextended(encode($1::bytea, "
    " 'hex'), 20117))";
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
/*
 * A new code in one round trip: the login's live code superseded (one
 * live code per login, schema index codes_live: the new row reads the
 * supersede's count, so it is inserted only after that ran), the delivery
 * and the code (whole seconds, so the reply, the job and the row say the
 * same time; never past the login's own end), the login's counters, the
 * accepted request.
 */
static const char SQL_ISSUE[] =
    "WITH sup AS (UPDATE mfa.codes SET superseded_at = clock_timestamp() "
    " WHERE login_id = $1 AND used_at IS NULL AND superseded_at IS NULL "
    " RETURNING 1), "
    "dl AS (INSERT INTO mfa.deliveries (delivery_id, login_id, contact_id, "
    " channel, kind, status) VALUES ($2, $1, $3, $4, 'code', 'queued')), "
    "c AS (INSERT INTO mfa.codes (login_id, delivery_id, channel, "
    " code_hash, key_id, created_at, expires_at) "
    " SELECT $1::uuid, $2::uuid, $4::text, $5::bytea, $6::text, "
    "  clock_timestamp(), date_trunc('second', least(clock_timestamp() + "
    "  make_interval(secs => $7::int), "
    "  (SELECT expires_at FROM mfa.logins WHERE login_id = $1))) "
    " FROM (SELECT count(*) FROM sup) AS superseded "
    " RETURNING expires_at), "
    "lg AS (UPDATE mfa.logins SET status = 'code_sent', sends = sends + 1, "
    " last_code_at = clock_timestamp() WHERE login_id = $1), "
    "rq AS (INSERT INTO mfa.code_requests (login_id, contact_id, channel, "
    " dest_hash, region, created_at, outcome) "
    " VALUES ($1, $3, $4, $8::bytea, $9, clock_timestamp(), 'sent')) "
    "SELECT to_char(expires_at AT TIME ZONE 'UTC', "
    " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM c";

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

/* The number's SMS of the last day, under its lock (SMS only). 0 or -1. */
static int
send_number_facts(struct send *s, struct policy_send_facts *f)
{
    const struct mfa_config *cfg = codes_cfg(s->job);
    char lim[24];
    const char *p[2] = {s->dest_hex, lim};
    PGresult *res;

    if (db_exec(job_db(s->job), SQL_NUMBER_LOCK, 1, p) != 0)
        return -1;
    snprintf(lim, sizeof(lim), "%ld", cfg->phone.max_sms_per_number_per_day);
    res = db_query(job_db(s->job), SQL_NUMBER_SENDS, 2, p);
    if (res == NULL)
        return -1;
    f->number_sms = (long)codes_num(db_get(res, 0, 0), 0);
    f->number_edge_age_s = codes_num(db_get(res, 0, 1), -1);
    PQclear(res);
    return 0;
}

/* New code, rows, dispatch job, reply. The clear code is wiped here. */
static enum mfa_verdict
send_issue(struct send *s)
{
    const struct mfa_config *cfg = codes_cfg(s->job);
    const struct mfa_keys *keys = worker_keys(job_worker(s->job));
    char code[MFA_CODE_MAX + 1], did[ADDR_UUID_LEN + 1], ad[80];
    char hhex[SEND_HEX_MAX], ttl[24], expires[40];
    unsigned char h[MFA_HASH_BYTES];
    const char *p[9];
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

    snprintf(ttl, sizeof(ttl), "%ld", cfg->codes.ttl_seconds);
    p[0] = s->login_id;
    p[1] = did;
    p[2] = s->contact_id;
    p[3] = s->method;
    p[4] = hhex;
    p[5] = keys->key_id;
    p[6] = ttl;
    p[7] = s->dest_hex;
    p[8] = s->region[0] ? s->region : NULL;
    res = db_query(job_db(s->job), SQL_ISSUE, 9, p);
    if (res == NULL || PQntuples(res) != 1) {
        /* No row: the login vanished under its lock; never seen. */
        PQclear(res);
        free(sealed);
        if (res == NULL)
            return codes_dberr(s->job, "issue code");
        job_fail(s->job, "login vanished while issuing a code");
        return MFA_RETRY;
    }
    snprintf(expires, sizeof(expires), "%s", db_get(res, 0, 0));
    PQclear(res);

    d = json_object_new_object();
    json_object_object_add(d, "delivery_id", json_object_new_string(did));
    json_object_object_add(d, "login_id", json_object_new_string(s->login_id));
    json_object_object_add(d, "contact_id",
                           json_object_new_string(s->contact_id));
    json_object_object_add(d, "channel", json_object_new_string(s->method));
    json_object_object_add(d, "sealed", json_object_new_string(sealed));
    json_object_object_add(d, "expires_at", json_object_new_string(expires));
    job_emit(s->job, MFA_EX_DISPATCH, s->method, "dispatch.code", d);
    free(sealed);

    d = json_object_new_object();
    json_object_object_add(d, "channel", json_object_new_string(s->method));
    json_object_object_add(d, "delivery_id", json_object_new_string(did));
    json_object_object_add(d, "to", json_object_new_string(s->masked));
    json_object_object_add(d, "expires_at", json_object_new_string(expires));
    if (codes_audit(s->job, "code.sent", s->contact_id, s->login_id, d) != 0)
        return codes_dberr(s->job, "audit");
    log_kv(LOGL_INFO, "code issued", "login_id", s->login_id, "contact_id",
           s->contact_id, "channel", s->method, "to", s->masked, "delivery_id",
           did, "expires_at", expires, NULL);
    r = codes_reply_new(s->login_id, "sent");
    json_object_object_add(r, "expires_at", json_object_new_string(expires));
    job_reply(s->job, r);
    return MFA_OK;
}

/* The destination's keyed hash ("\x..." bytea text) and mask. */
static void
send_destination(struct send *s, const struct methods *m)
{
    const struct mfa_keys *keys = worker_keys(job_worker(s->job));
    const char *dest = s->mid == METHOD_SMS ? m->phone : m->email;
    unsigned char h[MFA_HASH_BYTES];

    dest_hash(keys, dest, h);
    s->dest_hex[0] = '\\';
    s->dest_hex[1] = 'x';
    sodium_bin2hex(s->dest_hex + 2, sizeof(s->dest_hex) - 2, h, sizeof(h));
    /* The mask is the method's hint; only the chosen one is worked out. */
    if (s->mid == METHOD_SMS) {
        memcpy(s->region, m->region, sizeof(s->region));
        methods_hints(m, NULL, 0, s->masked, sizeof(s->masked));
    } else {
        methods_hints(m, s->masked, sizeof(s->masked), NULL, 0);
    }
}

/* After the login checks: is the method still there, are limits kept.
 * f holds the login's and the user's counts already. */
static enum mfa_verdict
send_checked(struct send *s, const struct methods *m,
             struct policy_send_facts *f)
{
    const struct mfa_config *cfg = codes_cfg(s->job);
    enum policy_send pol;
    long wait;

    /* Demotion cancels the user's logins; this only covers a race. */
    if (!m->found || !m->enabled)
        return send_refuse(s, "expired", "user disabled", -1);
    if (!m->offered[s->mid])
        return send_refuse(s, "method_unavailable", m->why[s->mid], -1);
    send_destination(s, m);
    if (s->mid == METHOD_SMS && send_number_facts(s, f) != 0)
        return codes_dberr(s->job, "rate facts");
    pol = policy_send_check(&cfg->codes, cfg->phone.max_sms_per_number_per_day,
                            f, &wait);
    if (pol != POLICY_SEND_OK)
        return send_refuse(s, "rate_limited", policy_send_name(pol), wait);
    return send_issue(s);
}

/* The login's own checks on the row SQL_LOGIN_LOCK read: NULL when they
 * pass, else the refusal's status, with its reason in why. */
static const char *
send_login_refusal(const PGresult *res, double min_left, char *why, size_t n)
{
    const char *status = db_get(res, 0, 0);
    double left = codes_num(db_get(res, 0, 2), 0);

    if (strcmp(status, "locked") == 0) {
        snprintf(why, n, "login locked");
        return "locked";
    }
    if (db_get(res, 0, 1)[0] != 't') {
        snprintf(why, n, "not offered when the login started");
        return "method_unavailable";
    }
    if (strcmp(status, "pending") != 0 && strcmp(status, "code_sent") != 0)
        snprintf(why, n, "login %s", status);
    else if (left <= 0)
        snprintf(why, n, "login expired");
    else if (left < min_left)
        /* The dispatch workers drop a code with less life than this. */
        snprintf(why, n, "login expires too soon");
    else
        return NULL;
    return "expired";
}

enum mfa_verdict
codes_code_requested(struct job *job)
{
    const struct envelope *ev = job_event(job);
    const struct mfa_config *cfg = codes_cfg(job);
    struct policy_send_facts f;
    struct methods m;
    struct send s;
    const char *p[3], *refusal;
    char lim[24], why[40];
    struct db_stmt st;
    PGresult *res;

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

    snprintf(lim, sizeof(lim), "%ld", cfg->codes.max_sends_per_user_per_hour);
    p[0] = s.login_id;
    p[1] = s.method;
    p[2] = lim;
    st = (struct db_stmt){SQL_LOGIN_LOCK, 3, p, NULL};
    if (codes_owner_lock(job, s.login_id, s.contact_id, &st, &res) != 0)
        return codes_dberr(job, "lock user and login");
    if (s.contact_id[0] == '\0') {
        PQclear(res);
        return send_refuse(&s, "unknown_login", "no such login", -1);
    }
    if (PQntuples(res) != 1) {
        /* The owner query saw it; logins are never deleted here. */
        PQclear(res);
        job_fail(job, "login vanished while locking it");
        return MFA_RETRY;
    }
    refusal = send_login_refusal(res, (double)cfg->codes.min_remaining_seconds,
                                 why, sizeof(why));
    if (refusal != NULL) {
        PQclear(res);
        return send_refuse(&s, refusal, why, -1);
    }
    memset(&f, 0, sizeof(f));
    f.login_sends = (long)codes_num(db_get(res, 0, 3), 0);
    f.since_last_s = codes_num(db_get(res, 0, 4), -1);
    f.user_sends = (long)codes_num(db_get(res, 0, 5), 0);
    f.user_edge_age_s = codes_num(db_get(res, 0, 6), -1);
    f.number_edge_age_s = -1;
    methods_from_row(res, 0, SEND_FACTS_COL, &cfg->phone.sms_allowed_regions,
                     &m);
    PQclear(res);
    return send_checked(&s, &m, &f);
}
