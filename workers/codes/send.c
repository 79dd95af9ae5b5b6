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
 * Round trips: in a batch, none of its own before the issue: the
 * batch's read (batch.c) locked the owner and the login and read what the
 * checks need (SQL_LOGIN_LOCK_ALL). A request read alone (the careful
 * way, an unknown login, a user with two requests in the batch) takes
 * the owner's lock with the same read for its login (SQL_LOGIN_LOCK) in
 * one round trip. For SMS the number's lock and then its count. Every
 * row of a new code in one statement (SQL_ISSUE), kept for the COMMIT
 * when nothing later in the batch counts it, like the audit row
 * (audit_event) and a refused request's row.
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
#include <strings.h>

#include <sodium.h>

#include "mfa/methods.h"
#include "mfa/policy.h"
#include "runtime/topology.h"
#include "util/log.h"
#include "util/xalloc.h"

/*
 * The login, locked, with everything the checks read: the login's state
 * and counters, whether it offered the method (r.m), the user's method
 * facts and SMS settings (mfa/methods), the user's accepted requests of
 * the last hour with the age of the $3-th most recent one, and when a
 * code issued now would expire ($4 seconds; whole seconds, so the reply,
 * the job and the row say the same time; never past the login's own
 * end). Taken under the owner's lock, which keeps those counts still:
 * every request of the user is written under it. Ages with
 * clock_timestamp(): now() is the batch's start, older than the rows a
 * competing worker committed while we waited for the lock. Columns
 * (SEND_COL_*) after the login id and the owner's contact id.
 */
#define SEND_FACTS_COLS                                                        \
    " l.status, r.m = ANY (l.methods), "                                       \
    " extract(epoch FROM l.expires_at - clock_timestamp())::float8, "          \
    " l.sends, "                                                               \
    " extract(epoch FROM clock_timestamp() - l.last_code_at)::float8, "        \
    " (SELECT count(*) FROM mfa.code_requests q WHERE q.contact_id = "         \
    "  l.contact_id AND q.outcome = 'sent' "                                   \
    "  AND q.created_at > clock_timestamp() - interval '1 hour'), "            \
    " coalesce((SELECT extract(epoch FROM "                                    \
    "  clock_timestamp() - q.created_at)::float8 "                             \
    "  FROM mfa.code_requests q WHERE q.contact_id = l.contact_id "            \
    "  AND q.outcome = 'sent' "                                                \
    "  AND q.created_at > clock_timestamp() - interval '1 hour' "              \
    "  ORDER BY q.created_at DESC OFFSET $3::int - 1 LIMIT 1), -1), "          \
    " to_char(date_trunc('second', least(clock_timestamp() + "                 \
    "  make_interval(secs => $4::int), l.expires_at)) AT TIME ZONE 'UTC', "    \
    "  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), " METHODS_FACTS_SQL
enum {
    SEND_COL_LOGIN,
    SEND_COL_CONTACT,
    SEND_COL_STATUS,
    SEND_COL_OFFERED,
    SEND_COL_LEFT,
    SEND_COL_SENDS,
    SEND_COL_SINCE_LAST,
    SEND_COL_USER_SENDS,
    SEND_COL_USER_EDGE,
    SEND_COL_EXPIRES,
    SEND_COL_FACTS, /* the first column of METHODS_FACTS_SQL */
};
/* One login (after the owner's lock, in its round trip:
 * codes_owner_lock); $1 the login, $2 the method. */
static const char SQL_LOGIN_LOCK[] =
    "SELECT l.login_id::text, l.contact_id, " SEND_FACTS_COLS
    "FROM (SELECT $2::text AS m) r, mfa.logins l "
    "JOIN mfa.users u ON u.contact_id = l.contact_id "
    "LEFT JOIN mfa.settings s ON s.name = 'sms' "
    "WHERE l.login_id = $1 FOR UPDATE OF l";
/* The batch's requests ($1 the logins): their owners locked, sorted so
 * that two batches lock their users in the same order - the user first,
 * as everywhere (codes_owner_lock). Rows by their keys, as in
 * mfa/delivery.h's DELIVERY_FACTS_JOIN (why: there). */
static const char SQL_OWNERS_LOCK_ALL[] =
    "SELECT u.contact_id FROM (SELECT DISTINCT l.contact_id AS cid "
    " FROM unnest($1::uuid[]) AS r(lid) "
    " JOIN LATERAL (SELECT contact_id FROM mfa.logins WHERE login_id = r.lid "
    "  LIMIT 1) l ON true ORDER BY 1) k "
    "JOIN LATERAL (SELECT contact_id FROM mfa.users WHERE contact_id = k.cid "
    " LIMIT 1 FOR NO KEY UPDATE) u ON true";
/* Then ($2 the methods) each one's login, locked, with its facts: a
 * statement that starts after the owners' locks are held. */
static const char SQL_LOGIN_LOCK_ALL[] =
    "SELECT r.lid::text, l.contact_id, " SEND_FACTS_COLS
    "FROM unnest($1::uuid[], $2::text[]) AS r(lid, m) "
    "JOIN LATERAL (SELECT * FROM mfa.logins WHERE login_id = r.lid "
    " LIMIT 1 FOR UPDATE) l ON true "
    "JOIN LATERAL (SELECT * FROM mfa.users WHERE contact_id = l.contact_id "
    " LIMIT 1) u ON true "
    "LEFT JOIN mfa.settings s ON s.name = 'sms'";
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
 * A new code in one statement: the login's live code superseded (one
 * live code per login, schema index codes_live: the new row reads the
 * supersede's count, so it is inserted only after that ran), the delivery
 * and the code (expiring when SQL_LOGIN_LOCK said), the login's counters,
 * the accepted request. Nothing reads it back: kept for the COMMIT when
 * nothing later in the batch counts it (send_issue).
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
    "  clock_timestamp(), $7::timestamptz "
    " FROM (SELECT count(*) FROM sup) AS superseded), "
    "lg AS (UPDATE mfa.logins SET status = 'code_sent', sends = sends + 1, "
    " last_code_at = clock_timestamp() WHERE login_id = $1) "
    "INSERT INTO mfa.code_requests (login_id, contact_id, channel, "
    " dest_hash, region, created_at, outcome) "
    "VALUES ($1, $3, $4, $8::bytea, $9, clock_timestamp(), 'sent')";

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
    char expires[24]; /* "YYYY-MM-DDTHH:MM:SSZ" of a code issued now */
    int batched;      /* facts from the batch's read (SQL_LOGIN_LOCK_ALL) */
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
        /* Never counted (only 'sent' is): kept for the COMMIT. */
        if (db_defer(job_db(s->job), SQL_REQUEST, 6, p) != 0)
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
    char hhex[SEND_HEX_MAX];
    const char *expires = s->expires;
    unsigned char h[MFA_HASH_BYTES];
    const char *p[9];
    struct json_object *d, *r;
    char *sealed;
    int rc;

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
    p[1] = did;
    p[2] = s->contact_id;
    p[3] = s->method;
    p[4] = hhex;
    p[5] = keys->key_id;
    p[6] = expires;
    p[7] = s->dest_hex;
    p[8] = s->region[0] ? s->region : NULL;
    /* Kept for the COMMIT only when nothing later in the batch counts
     * these rows: the batch's read gives facts only to a user's single
     * request of the batch (send_batch_take), and an SMS's per-number
     * count must see every SMS before it. */
    if (s->batched && s->mid == METHOD_EMAIL)
        rc = db_defer(job_db(s->job), SQL_ISSUE, 9, p);
    else
        rc = db_exec(job_db(s->job), SQL_ISSUE, 9, p);
    if (rc != 0) {
        free(sealed);
        return codes_dberr(s->job, "issue code");
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

/* The login's own checks on row r of SQL_LOGIN_LOCK(_ALL): NULL when
 * they pass, else the refusal's status, with its reason in why. */
static const char *
send_login_refusal(const PGresult *res, int r, double min_left, char *why,
                   size_t n)
{
    const char *status = db_get(res, r, SEND_COL_STATUS);
    double left = codes_num(db_get(res, r, SEND_COL_LEFT), 0);

    if (strcmp(status, "locked") == 0) {
        snprintf(why, n, "login locked");
        return "locked";
    }
    if (db_get(res, r, SEND_COL_OFFERED)[0] != 't') {
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

/* ---- the batch's read (codes_batch_read) ------------------------------ */

/* The parameters of SQL_LOGIN_LOCK_ALL until it ran, its rows, and
 * whether each row may be used: a user with two requests in the batch
 * gets none, since the second must count the first's code (each reads
 * afresh, under the lock it holds already). The worker runs one batch at
 * a time. */
static struct {
    struct buf lids, methods;
    char lim[24], ttl[24];
    const char *p[4];
    int has_params;
    PGresult *res;
    unsigned char *usable;
} send_batch;

int
send_batch_stmt(const struct mfa_config *cfg, struct job *const *jobs, size_t n,
                struct db_stmt *st)
{
    size_t k = 0;
    int bad;

    buf_init(&send_batch.lids, 1u << 24);
    buf_init(&send_batch.methods, 1u << 24);
    send_batch.has_params = 1;
    bad = buf_puts(&send_batch.lids, "{") | buf_puts(&send_batch.methods, "{");
    for (size_t i = 0; i < n; i++) {
        const struct envelope *ev = job_event(jobs[i]);

        if (ev == NULL || ev->type != EV_LOGIN_CODE_REQUESTED)
            continue;
        bad |= buf_printf(&send_batch.lids, "%s%s", k ? "," : "",
                          ev->u.code_requested.login_id);
        bad |= buf_printf(&send_batch.methods, "%s", k ? "," : "");
        bad |= db_array_elem(&send_batch.methods, ev->u.code_requested.method);
        k++;
    }
    bad |= buf_puts(&send_batch.lids, "}") | buf_puts(&send_batch.methods, "}");
    if (k == 0)
        return 0;
    snprintf(send_batch.lim, sizeof(send_batch.lim), "%ld",
             cfg->codes.max_sends_per_user_per_hour);
    snprintf(send_batch.ttl, sizeof(send_batch.ttl), "%ld",
             cfg->codes.ttl_seconds);
    send_batch.p[0] = buf_cstr(&send_batch.lids);
    send_batch.p[1] = buf_cstr(&send_batch.methods);
    send_batch.p[2] = send_batch.lim;
    send_batch.p[3] = send_batch.ttl;
    st[0] = (struct db_stmt){SQL_OWNERS_LOCK_ALL, 1, send_batch.p, NULL};
    st[1] = (struct db_stmt){SQL_LOGIN_LOCK_ALL, 4, send_batch.p, NULL};
    return bad ? -1 : 2;
}

void
send_batch_take(PGresult *res)
{
    int n = PQntuples(res);

    send_batch.res = res;
    send_batch.usable = xcalloc((size_t)n + 1, 1);
    for (int r = 0; r < n; r++) {
        int twice = 0;

        for (int q = 0; q < n && !twice; q++)
            twice = q != r && strcmp(PQgetvalue(res, q, SEND_COL_CONTACT),
                                     PQgetvalue(res, r, SEND_COL_CONTACT)) == 0;
        send_batch.usable[r] = !twice;
    }
}

void
send_batch_clear(void)
{
    PQclear(send_batch.res);
    send_batch.res = NULL;
    free(send_batch.usable);
    send_batch.usable = NULL;
    if (send_batch.has_params) {
        buf_free(&send_batch.lids);
        buf_free(&send_batch.methods);
    }
    send_batch.has_params = 0;
}

/* The batch's row for login_id, or -1 (none, or not usable). */
static int
send_batch_row(const char *login_id)
{
    for (int r = 0; send_batch.res != NULL && r < PQntuples(send_batch.res);
         r++)
        if (strcasecmp(PQgetvalue(send_batch.res, r, SEND_COL_LOGIN),
                       login_id) == 0)
            return send_batch.usable[r] ? r : -1;
    return -1;
}

/* ---- the event ---------------------------------------------------------- */

/* The login's row, locked with its owner: the batch's, or read now (the
 * owner's lock and SQL_LOGIN_LOCK, one round trip). 0 with *res (*own:
 * the caller's to PQclear) and *row, s->contact_id set ("" for an
 * unknown login); -1 on a database error. */
static int
send_facts(struct send *s, PGresult **res, int *row, int *own)
{
    const struct mfa_config *cfg = codes_cfg(s->job);
    char lim[24], ttl[24];
    const char *p[4];
    struct db_stmt st;

    *row = send_batch_row(s->login_id);
    if (*row >= 0) {
        *res = send_batch.res;
        *own = 0;
        s->batched = 1;
        snprintf(s->contact_id, sizeof(s->contact_id), "%s",
                 PQgetvalue(*res, *row, SEND_COL_CONTACT));
        return 0;
    }
    snprintf(lim, sizeof(lim), "%ld", cfg->codes.max_sends_per_user_per_hour);
    snprintf(ttl, sizeof(ttl), "%ld", cfg->codes.ttl_seconds);
    p[0] = s->login_id;
    p[1] = s->method;
    p[2] = lim;
    p[3] = ttl;
    st = (struct db_stmt){SQL_LOGIN_LOCK, 4, p, NULL};
    *own = 1;
    *row = 0;
    return codes_owner_lock(s->job, s->login_id, s->contact_id, &st, res);
}

enum mfa_verdict
codes_code_requested(struct job *job)
{
    const struct envelope *ev = job_event(job);
    const struct mfa_config *cfg = codes_cfg(job);
    struct policy_send_facts f;
    struct methods m;
    struct send s;
    const char *refusal;
    char why[40];
    PGresult *res;
    int row, own;

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
    if (send_facts(&s, &res, &row, &own) != 0)
        return codes_dberr(job, "lock user and login");
    if (s.contact_id[0] == '\0') {
        PQclear(res); /* own: the batch's rows are all known logins */
        return send_refuse(&s, "unknown_login", "no such login", -1);
    }
    if (PQntuples(res) <= row) {
        /* The owner query saw it; logins are never deleted here. */
        PQclear(res); /* own, as above */
        job_fail(job, "login vanished while locking it");
        return MFA_RETRY;
    }
    refusal = send_login_refusal(
        res, row, (double)cfg->codes.min_remaining_seconds, why, sizeof(why));
    if (refusal == NULL) {
        memset(&f, 0, sizeof(f));
        f.login_sends = (long)codes_num(db_get(res, row, SEND_COL_SENDS), 0);
        f.since_last_s = codes_num(db_get(res, row, SEND_COL_SINCE_LAST), -1);
        f.user_sends =
            (long)codes_num(db_get(res, row, SEND_COL_USER_SENDS), 0);
        f.user_edge_age_s = codes_num(db_get(res, row, SEND_COL_USER_EDGE), -1);
        f.number_edge_age_s = -1;
        snprintf(s.expires, sizeof(s.expires), "%s",
                 db_get(res, row, SEND_COL_EXPIRES));
        methods_from_row(res, row, SEND_COL_FACTS,
                         &cfg->phone.sms_allowed_regions, &m);
    }
    if (own)
        PQclear(res);
    if (refusal != NULL)
        return send_refuse(&s, refusal, why, -1);
    return send_checked(&s, &m, &f);
}
