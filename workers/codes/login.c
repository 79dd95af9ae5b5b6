/*
 * login.c - mfa-codes: login.started opens a login challenge.
 *
 * Called by handler.c inside the runtime's transaction. Works out the
 * methods the portal may offer (mfa/methods: confirmed email; valid,
 * SMS-capable, unblocked phone in an allowed region with complete SMS
 * settings, read afresh on every event) and records the challenge in
 * mfa.logins with its lifetime (login.ttl_seconds) and try budget
 * (codes.max_attempts) fixed at this moment.
 *
 * Outcomes:
 *   unknown contact   -> unknown_user, no login row (nothing to refer to)
 *   demoted contact   -> disabled, no login row
 *   no method at all  -> no_method; the login IS recorded, with status
 *                        'cancelled' and no methods, so operators see the
 *                        attempt in mfa.login_status and a later
 *                        code_requested for it gets method_unavailable
 *   otherwise         -> pending, with the methods and masked hints
 * A login_id that already exists (another event with the same id) is
 * refused as invalid input: ids are fresh per login, and reopening a
 * challenge must never reset its tries or lifetime. A genuine retry of
 * the same event reuses its event_id and gets the stored reply instead.
 * Security notes: hints are masked, and only for offered methods; logs
 * and audit rows carry masks and reasons, never an address or number.
 */
#include "codes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mfa/methods.h"
#include "util/log.h"
#include "util/xalloc.h"

/* For each login.started (of a batch, login_batch_stmt, or one): its
 * login id, whether the user exists, the user's facts (METHODS_FACTS_SQL)
 * and whether the login id is taken, in one round trip. Rows by their
 * keys, as in mfa/delivery.h's DELIVERY_FACTS_JOIN (why: there). */
static const char SQL_FACTS_ALL[] =
    "SELECT r.lid::text, u.contact_id IS NOT NULL, " METHODS_FACTS_SQL
    ", t.taken IS NOT NULL "
    "FROM unnest($1::text[], $2::uuid[]) AS r(cid, lid) "
    "LEFT JOIN LATERAL (SELECT * FROM mfa.users WHERE contact_id = r.cid "
    " LIMIT 1) u ON true "
    "LEFT JOIN LATERAL (SELECT 1 AS taken FROM mfa.logins "
    " WHERE login_id = r.lid LIMIT 1) t ON true "
    "LEFT JOIN mfa.settings s ON s.name = 'sms'";
#define FACTS_ALL_TAKEN (2 + METHODS_FACTS_NCOLS)

/* Kept for the COMMIT (db_defer): within a batch no other event of this
 * login runs (codes_batch_key), so nothing reads the row back before. A
 * login id taken meanwhile by another process fails the COMMIT, and the
 * batch runs again the careful way, where this runs at once. */
static const char SQL_INSERT[] =
    "INSERT INTO mfa.logins (login_id, contact_id, status, methods, ip, "
    " user_agent, expires_at, max_attempts) "
    "VALUES ($1, $2, $3, $4::text[], $5, $6, "
    " now() + make_interval(secs => $7::int), $8::int)";
static const char SQL_INSERT_ROWS[] =
    "INSERT INTO mfa.logins (login_id, contact_id, status, methods, ip, "
    " user_agent, expires_at, max_attempts) "
    "SELECT l, c, s, m::text[], i, a, now() + make_interval(secs => t), x "
    "FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], "
    " $6::text[], $7::int[], $8::int[]) AS r(l, c, s, m, i, a, t, x)";

#define LOGIN_HINT_MAX (ADDR_EMAIL_MAX + 8)

static struct json_object *
login_str_or_null(const char *s)
{
    return s != NULL && s[0] != '\0' ? json_object_new_string(s) : NULL;
}

/* {email,sms} for the text[] parameter and "email,sms" for the log. */
static void
login_method_list(const struct methods *m, char *arr, size_t an, char *csv,
                  size_t cn)
{
    size_t a = 0, c = 0;

    a += (size_t)snprintf(arr, an, "{");
    csv[0] = '\0';
    for (int i = 0; i < METHOD_COUNT; i++) {
        if (!m->offered[i])
            continue;
        a += (size_t)snprintf(arr + a, an - a, "%s%s", c ? "," : "",
                              method_name(i));
        c += (size_t)snprintf(csv + c, cn - c, "%s%s", c ? "," : "",
                              method_name(i));
    }
    snprintf(arr + a, an - a, "}");
}

/* The masked hints of m's offered methods ("" for the others), worked
 * out once for the reply and the audit row. */
struct login_hints {
    char email[LOGIN_HINT_MAX];
    char phone[64];
};

static void
login_hints(const struct methods *m, struct login_hints *h)
{
    methods_hints(m, h->email, sizeof(h->email), h->phone, sizeof(h->phone));
}

/* {login_id, status, methods, email_hint, phone_hint}; hints null when
 * their method is not offered. */
static struct json_object *
login_reply(const char *login_id, const char *status, const struct methods *m,
            const struct login_hints *h)
{
    struct json_object *r = codes_reply_new(login_id, status);
    struct json_object *arr = json_object_new_array();

    for (int i = 0; i < METHOD_COUNT; i++) {
        if (m->offered[i])
            json_object_array_add(arr, json_object_new_string(method_name(i)));
    }
    json_object_object_add(r, "methods", arr);
    json_object_object_add(r, "email_hint", login_str_or_null(h->email));
    json_object_object_add(r, "phone_hint", login_str_or_null(h->phone));
    return r;
}

static struct json_object *
login_audit_detail(const char *status, const struct methods *m,
                   const struct login_hints *h, const char *ip)
{
    struct json_object *d = json_object_new_object();
    struct json_object *why = json_object_new_object();

    json_object_object_add(d, "status", json_object_new_string(status));
    for (int i = 0; i < METHOD_COUNT; i++) {
        if (!m->offered[i] && m->why[i][0])
            json_object_object_add(why, method_name(i),
                                   json_object_new_string(m->why[i]));
    }
    json_object_object_add(d, "unavailable", why);
    json_object_object_add(d, "email_hint", login_str_or_null(h->email));
    json_object_object_add(d, "phone_hint", login_str_or_null(h->phone));
    json_object_object_add(d, "ip", login_str_or_null(ip));
    return d;
}

/* unknown_user / disabled: answered with no methods and no hints (a
 * demoted user's data is none of the portal's business any more),
 * audited, nothing recorded. */
static enum mfa_verdict
login_refuse(struct job *job, const char *status)
{
    const struct envelope *ev = job_event(job);
    const char *lid = ev->u.login_started.login_id;
    const char *cid = ev->u.login_started.contact_id;
    struct login_hints h;
    struct methods none;
    char action[40];

    memset(&none, 0, sizeof(none));
    login_hints(&none, &h);
    snprintf(action, sizeof(action), "login.%s", status);
    if (codes_audit(
            job, action, cid, lid,
            login_audit_detail(status, &none, &h, ev->u.login_started.ip)) != 0)
        return codes_dberr(job, "audit");
    log_kv(LOGL_WARN, "login refused", "login_id", lid, "contact_id", cid,
           "status", status, NULL);
    job_reply(job, login_reply(lid, status, &none, &h));
    return MFA_OK;
}

/* The parameters of SQL_FACTS_ALL: the contact ids and login ids. */
struct login_facts_params {
    struct buf cids, lids;
    const char *p[2];
};

/* SQL_FACTS_ALL for evs[0..n) (login.started events) into *st, its
 * parameters in *fp (login_facts_params_free after the statement ran).
 * -1 when the arrays would pass their cap. */
static int
login_facts_query(struct login_facts_params *fp,
                  const struct envelope *const *evs, size_t n,
                  struct db_stmt *st)
{
    int bad;

    buf_init(&fp->cids, 1u << 24);
    buf_init(&fp->lids, 1u << 24);
    bad = buf_puts(&fp->cids, "{") | buf_puts(&fp->lids, "{");
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            bad |= buf_puts(&fp->cids, ",") | buf_puts(&fp->lids, ",");
        bad |= db_array_elem(&fp->cids, evs[i]->u.login_started.contact_id);
        bad |= buf_puts(&fp->lids, evs[i]->u.login_started.login_id);
    }
    bad |= buf_puts(&fp->cids, "}") | buf_puts(&fp->lids, "}");
    fp->p[0] = buf_cstr(&fp->cids);
    fp->p[1] = buf_cstr(&fp->lids);
    *st = (struct db_stmt){SQL_FACTS_ALL, 2, fp->p, NULL};
    return bad ? -1 : 0;
}

static void
login_facts_params_free(struct login_facts_params *fp)
{
    buf_free(&fp->cids);
    buf_free(&fp->lids);
}

/* What the batch's read needs until it ran, and what it found; the
 * worker runs one batch at a time. */
static struct login_facts_params login_batch_params;
static int login_batch_has_params;
static PGresult *login_batch_facts;

int
login_batch_stmt(struct job *const *jobs, size_t n, struct db_stmt *st)
{
    const struct envelope **evs = xcalloc(n + 1, sizeof(*evs));
    size_t k = 0;
    int rc = 0;

    for (size_t i = 0; i < n; i++) {
        const struct envelope *ev = job_event(jobs[i]);

        if (ev != NULL && ev->type == EV_LOGIN_STARTED)
            evs[k++] = ev;
    }
    if (k > 0) {
        login_batch_has_params = 1;
        rc = login_facts_query(&login_batch_params, evs, k, st) == 0 ? 1 : -1;
    }
    free(evs);
    return rc;
}

void
login_batch_take(PGresult *res)
{
    login_batch_facts = res;
}

void
login_batch_clear(void)
{
    PQclear(login_batch_facts);
    login_batch_facts = NULL;
    if (login_batch_has_params)
        login_facts_params_free(&login_batch_params);
    login_batch_has_params = 0;
}

/* lid's row of a SQL_FACTS_ALL result: 1, or 0 if it has none. */
static int
login_facts_read(const PGresult *res, const char *lid,
                 const struct cfg_strlist *regions, struct methods *m,
                 int *taken)
{
    for (int r = 0; res != NULL && r < PQntuples(res); r++) {
        if (strcasecmp(PQgetvalue(res, r, 0), lid) != 0)
            continue;
        memset(m, 0, sizeof(*m));
        *taken = PQgetvalue(res, r, FACTS_ALL_TAKEN)[0] == 't';
        if (PQgetvalue(res, r, 1)[0] == 't')
            methods_from_row(res, r, 2, regions, m);
        return 1;
    }
    return 0;
}

enum mfa_verdict
codes_login_started(struct job *job)
{
    const struct envelope *ev = job_event(job);
    const struct mfa_config *cfg = codes_cfg(job);
    const struct cfg_strlist *regions = &cfg->phone.sms_allowed_regions;
    const char *lid = ev->u.login_started.login_id;
    const char *cid = ev->u.login_started.contact_id;
    const char *ip = ev->u.login_started.ip;
    const char *status, *p[8];
    const char *email_why, *sms_why;
    struct login_hints h;
    struct methods m;
    char arr[32], csv[32], ttl[24], max[24];
    PGresult *res;
    int taken, any, found;

    /* Read with the batch (login_batch_stmt), or now: the careful way. */
    if (!login_facts_read(login_batch_facts, lid, regions, &m, &taken)) {
        struct login_facts_params fp;
        struct db_stmt st;

        res = NULL;
        if (login_facts_query(&fp, &ev, 1, &st) == 0)
            res = db_query(job_db(job), st.sql, st.nparams, st.params);
        login_facts_params_free(&fp);
        if (res == NULL)
            return codes_dberr(job, "methods");
        found = login_facts_read(res, lid, regions, &m, &taken);
        PQclear(res);
        if (!found) { /* unnest gives every login its row: cannot be */
            job_fail(job, "methods: no row for the login");
            return MFA_RETRY;
        }
    }
    if (!m.found)
        return login_refuse(job, "unknown_user");
    if (!m.enabled)
        return login_refuse(job, "disabled");
    any = methods_count(&m) > 0;

    login_method_list(&m, arr, sizeof(arr), csv, sizeof(csv));
    snprintf(ttl, sizeof(ttl), "%ld", cfg->login.ttl_seconds);
    snprintf(max, sizeof(max), "%ld", cfg->codes.max_attempts);
    p[0] = lid;
    p[1] = cid;
    p[2] = any ? "pending" : "cancelled";
    p[3] = arr;
    p[4] = ip;
    p[5] = ev->u.login_started.user_agent;
    p[6] = ttl;
    p[7] = max;
    if (taken) {
        job_fail(job, "data.login_id: a login with this id already exists");
        return MFA_REJECT;
    }
    if (db_defer_rows(job_db(job), SQL_INSERT, SQL_INSERT_ROWS, 8, p) != 0)
        return codes_dberr(job, "insert login");

    status = any ? "pending" : "no_method";
    login_hints(&m, &h);
    if (codes_audit(job, any ? "login.started" : "login.no_method", cid, lid,
                    login_audit_detail(status, &m, &h, ip)) != 0)
        return codes_dberr(job, "audit");
    email_why = m.why[METHOD_EMAIL][0] ? m.why[METHOD_EMAIL] : "ok";
    sms_why = m.why[METHOD_SMS][0] ? m.why[METHOD_SMS] : "ok";
    log_kv(any ? LOGL_INFO : LOGL_WARN, "login started", "login_id", lid,
           "contact_id", cid, "status", status, "methods", csv, "email",
           email_why, "sms", sms_why, NULL);
    job_reply(job, login_reply(lid, status, &m, &h));
    return MFA_OK;
}
