/*
 * dispatch.c - a dispatch job's common steps (see dispatch.h).
 *
 * Callers: mfa-email and mfa-sms (workers/email/handler.c,
 * workers/sms/handler.c), from their handlers inside the runtime's
 * transaction and from their completions, which run in a transaction of
 * their own after the provider answered. Rows, audit entries and results
 * are written together, so a rolled-back job leaves none of them.
 * dispatch_setup is their init hooks' (workers/email/loop.c,
 * workers/sms/loop.c).
 *
 * Security notes: no code, secret or clear address passes through here.
 * Audit details and result events get ids, reasons and the masked
 * recipient only; reasons are the workers' texts (scrubbed provider
 * answers, masked addresses). job_fail() texts reach logs and dead-letter
 * headers, so they name ids, never event data.
 */
#include "runtime/dispatch.h"
#include "mfa/audit.h"
#include "runtime/job.h"
#include "runtime/topology.h"
#include "util/log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* A handlers' read: its statement, its parameters, and (the batch's)
 * its rows. */
struct dispatch_read {
    const char *sql;
    PGresult *rows;
    struct buf dids, cids;
    const char *p[2];
    int has_params;
};

/* The worker's batch read (dispatch_setup, the batch hooks). */
static struct dispatch_read dispatch_batch;

int
dispatch_setup(const struct mfa_config *cfg, const struct tmpl_file *files,
               size_t nfiles, const char *read_sql, struct tmpl_set **tmpl,
               struct curlm **curlm)
{
    char err[512];

    dispatch_batch.sql = read_sql;
    *curlm = NULL;
    *tmpl = tmpl_load(cfg->templates.dir, cfg->templates.default_locale, files,
                      nfiles, err, sizeof(err));
    if (*tmpl == NULL) {
        log_error("%s", err);
        return -1;
    }
    *curlm = curlm_new();
    if (*curlm == NULL) {
        log_error("libcurl: cannot create a multi handle");
        tmpl_free(*tmpl);
        *tmpl = NULL;
        return -1;
    }
    return 0;
}

enum mfa_verdict
dispatch_db_fail(struct job *job)
{
    job_fail(job, "database: %s", job_db(job)->errmsg);
    return MFA_RETRY;
}

void
dispatch_detail_add(struct json_object *d, const char *key, const char *val)
{
    if (val != NULL && *val)
        json_object_object_add(d, key, json_object_new_string(val));
}

/* ---- the handler's read ------------------------------------------------ */

#define DISPATCH_PARAM_MAX (16u << 20) /* bytes of one array parameter */

/* The delivery and contact a job is about; 0 when it is no dispatch job
 * whose handler runs now (a completion reads nothing). */
static int
dispatch_ids(const struct job *j, const char **did, const char **cid)
{
    if (!j->parsed || j->fn != j->w->spec->handle)
        return 0;
    if (j->ev.type == EV_DISPATCH_CODE) {
        *did = j->ev.u.dispatch_code.delivery_id;
        *cid = j->ev.u.dispatch_code.contact_id;
        return 1;
    }
    if (j->ev.type == EV_DISPATCH_NOTICE) {
        *did = j->ev.u.dispatch_notice.delivery_id;
        *cid = j->ev.u.dispatch_notice.contact_id;
        return 1;
    }
    return 0;
}

/* rd's statement for jobs[0..n): 1, 0 none of them reads, -1 too big. */
static int
dispatch_read_stmt(struct dispatch_read *rd, struct job *const *jobs, size_t n,
                   struct db_stmt *st)
{
    size_t k = 0;
    int bad;

    buf_init(&rd->dids, DISPATCH_PARAM_MAX);
    buf_init(&rd->cids, DISPATCH_PARAM_MAX);
    rd->has_params = 1;
    bad = buf_puts(&rd->dids, "{") | buf_puts(&rd->cids, "{");
    for (size_t i = 0; i < n; i++) {
        const char *did, *cid;

        if (!dispatch_ids(jobs[i], &did, &cid))
            continue;
        if (k++ > 0)
            bad |= buf_puts(&rd->dids, ",") | buf_puts(&rd->cids, ",");
        bad |= buf_puts(&rd->dids, did) | db_array_elem(&rd->cids, cid);
    }
    bad |= buf_puts(&rd->dids, "}") | buf_puts(&rd->cids, "}");
    rd->p[0] = buf_cstr(&rd->dids);
    rd->p[1] = buf_cstr(&rd->cids);
    *st = (struct db_stmt){rd->sql, 2, rd->p, NULL};
    return bad ? -1 : k > 0;
}

static void
dispatch_read_clear(struct dispatch_read *rd)
{
    PQclear(rd->rows);
    rd->rows = NULL;
    if (rd->has_params) {
        buf_free(&rd->dids);
        buf_free(&rd->cids);
    }
    rd->has_params = 0;
}

int
dispatch_batch_read(struct worker *w, struct job *const *jobs, size_t n,
                    struct db_stmt *st, int max)
{
    (void)w;
    return max < 1 ? -1 : dispatch_read_stmt(&dispatch_batch, jobs, n, st);
}

void
dispatch_batch_result(struct worker *w, PGresult **res, int n)
{
    (void)w;
    dispatch_batch.rows = res[0];
    for (int i = 1; i < n; i++)
        PQclear(res[i]);
}

void
dispatch_batch_done(struct worker *w)
{
    (void)w;
    dispatch_read_clear(&dispatch_batch);
}

/* res's row for did and cid, or -1. */
static int
dispatch_row(const PGresult *res, const char *did, const char *cid)
{
    for (int r = 0; res != NULL && r < PQntuples(res); r++)
        if (strcasecmp(PQgetvalue(res, r, 0), did) == 0 &&
            strcmp(PQgetvalue(res, r, 1), cid) == 0)
            return r;
    return -1;
}

/* The job's row: the batch's, or read now (one statement). 0, or -1 with
 * the job failed. */
static int
dispatch_facts(struct job *job, struct dispatch_facts *f)
{
    struct dispatch_read one = {.sql = dispatch_batch.sql};
    struct job *const jobs[1] = {job};
    const char *did, *cid;
    struct db_stmt st;

    memset(f, 0, sizeof(*f));
    if (!dispatch_ids(job, &did, &cid)) {
        job_fail(job, "not a dispatch job");
        return -1;
    }
    f->row = dispatch_row(dispatch_batch.rows, did, cid);
    if (f->row >= 0) {
        f->res = dispatch_batch.rows;
        return 0;
    }
    /* Not read with the batch (the careful way): read it now. */
    if (dispatch_read_stmt(&one, jobs, 1, &st) == 1)
        f->own = db_query(job_db(job), st.sql, st.nparams, st.params);
    dispatch_read_clear(&one);
    if (f->own == NULL) {
        dispatch_db_fail(job);
        return -1;
    }
    f->res = f->own;
    f->row = dispatch_row(f->own, did, cid);
    if (f->row < 0) { /* unnest gives every job its row: cannot be */
        job_fail(job, "dispatch: no row for the delivery");
        dispatch_facts_free(f);
        return -1;
    }
    return 0;
}

void
dispatch_facts_free(struct dispatch_facts *f)
{
    PQclear(f->own);
    memset(f, 0, sizeof(*f));
}

/* ---- checks before the provider ------------------------------------------ */

/* The delivery row: see dispatch_start. */
static int
dispatch_check(struct job *job, const struct dispatch_target *t,
               const struct dispatch_facts *f, const char *what,
               enum mfa_verdict *v)
{
    struct delivery del;

    if (!delivery_from_row(f->res, f->row, DISPATCH_COL_DELIVERY, &del)) {
        job_fail(job, "no delivery %s", t->delivery_id);
        *v = MFA_REJECT;
        return -1;
    }
    if (strcmp(del.kind, t->notice ? "notice" : "code") != 0 ||
        strcmp(del.channel, t->channel) != 0 ||
        (t->login_id && strcmp(del.login_id, t->login_id) != 0)) {
        job_fail(job, "delivery %s is not %s for this login", t->delivery_id,
                 what);
        *v = MFA_REJECT;
        return -1;
    }
    if (delivery_is_final(del.status)) {
        /* A duplicate or a replay from the dead-letter queue. */
        log_kv(LOGL_INFO, "delivery already final; nothing sent", "delivery_id",
               t->delivery_id, "status", del.status, NULL);
        *v = MFA_OK;
        return 0;
    }
    return 1;
}

int
dispatch_start(struct job *job, const struct dispatch_target *t,
               struct dispatch_facts *f, const char *what, enum mfa_verdict *v)
{
    const struct envelope *ev = job_event(job);

    memset(f, 0, sizeof(*f));
    if (ev->type == EV_DISPATCH_CODE &&
        strcmp(ev->u.dispatch_code.channel, t->channel) != 0) {
        job_fail(job, "dispatch.code for channel %s reached the %s queue",
                 ev->u.dispatch_code.channel, t->channel);
        *v = MFA_REJECT;
        return -1;
    }
    if (dispatch_facts(job, f) != 0) {
        *v = MFA_RETRY;
        return -1;
    }
    return dispatch_check(job, t, f, what, v);
}

int
dispatch_code_alive(struct job *job, const struct dispatch_target *t,
                    const struct dispatch_facts *f, long min_remaining_s,
                    struct delivery_code *code, enum mfa_verdict *v)
{
    if (!delivery_code_from_row(f->res, f->row, DISPATCH_COL_DELIVERY,
                                min_remaining_s, code)) {
        code->reason = "no code for this delivery";
        snprintf(code->why, sizeof(code->why), "%s", code->reason);
        return 0;
    }
    if (code->reason != NULL)
        return 0;
    if (strcmp(code->contact_id, t->contact_id) != 0) {
        job_fail(job, "contact_id does not match the login's user");
        *v = MFA_REJECT;
        return -1;
    }
    return 1;
}

/* ---- the end of a job -----------------------------------------------------
 */

int
dispatch_audit(struct job *job, const struct dispatch_target *t,
               const char *action, struct json_object *detail)
{
    char actor[24];
    int rc;

    snprintf(actor, sizeof(actor), "mfa-%s", t->channel);
    rc = audit_write(
        job_db(job), actor, action, t->contact_id, t->login_id,
        job_event(job)->event_id,
        json_object_to_json_string_ext(detail, JSON_C_TO_STRING_PLAIN));
    json_object_put(detail);
    return rc;
}

void
dispatch_result(struct job *job, const struct dispatch_target *t,
                const char *what, const char *error, const char *provider_id)
{
    struct json_object *d = json_object_new_object();
    char type[32];

    snprintf(type, sizeof(type), "%s.%s", t->notice ? "notice" : "code", what);
    json_object_object_add(d, "delivery_id",
                           json_object_new_string(t->delivery_id));
    if (t->notice) {
        json_object_object_add(d, "contact_id",
                               json_object_new_string(t->contact_id));
        json_object_object_add(d, "template",
                               json_object_new_string("contact_changed"));
    } else {
        json_object_object_add(d, "login_id",
                               json_object_new_string(t->login_id));
    }
    json_object_object_add(d, "channel", json_object_new_string(t->channel));
    dispatch_detail_add(d, "error", error);
    dispatch_detail_add(d, "provider_message_id", provider_id);
    job_emit(job, MFA_EX_RESULTS, type, type, d);
}

/* A write found the delivery no longer queued: nothing more to record. */
static enum mfa_verdict
dispatch_final_before(const struct dispatch_target *t)
{
    log_kv(LOGL_WARN, "delivery final meanwhile; outcome not recorded",
           "delivery_id", t->delivery_id, NULL);
    return MFA_OK;
}

int
dispatch_attempt(struct job *job, const struct dispatch_target *t,
                 const char *reason, int ambiguous, long *attempts,
                 enum mfa_verdict *v)
{
    int rc = delivery_attempt(job_db(job), t->delivery_id, reason, ambiguous,
                              attempts);

    if (rc < 0)
        *v = dispatch_db_fail(job);
    else if (rc == 0)
        *v = dispatch_final_before(t);
    return rc;
}

enum mfa_verdict
dispatch_end(struct job *job, const struct dispatch_target *t,
             const char *status, const char *reason, int attempted)
{
    int dropped = strcmp(status, "dropped") == 0;
    struct json_object *a;
    char action[24];
    int rc =
        delivery_final(job_db(job), t->delivery_id, status, reason, attempted);

    if (rc < 0)
        return dispatch_db_fail(job);
    if (rc == 0)
        return dispatch_final_before(t);
    a = json_object_new_object();
    dispatch_detail_add(a, "delivery_id", t->delivery_id);
    dispatch_detail_add(a, "to", t->to_masked);
    dispatch_detail_add(a, dropped ? "reason" : "error", reason);
    snprintf(action, sizeof(action), "%s.%s", t->channel, status);
    if (dispatch_audit(job, t, action, a) != 0)
        return dispatch_db_fail(job);
    dispatch_result(job, t, dropped ? "dropped" : "failed", reason, NULL);
    return MFA_OK;
}

int
dispatch_code_open(struct job *job, const struct dispatch_target *t,
                   const unsigned char *seal_key, char *clear, size_t cap,
                   enum mfa_verdict *v)
{
    if (delivery_code_open(seal_key, t->login_id, t->delivery_id,
                           job_event(job)->u.dispatch_code.sealed, clear,
                           cap) == 0)
        return 0;
    *v = dispatch_end(job, t, "failed", "sealed code does not open", 0);
    if (*v != MFA_OK)
        return -1;
    /* Dead-letter it for a look, and keep the 'failed' row. */
    job_fail(job, "sealed code does not open (wrong key or tampered)");
    job_keep_effects(job);
    *v = MFA_REJECT;
    return -1;
}

enum mfa_verdict
dispatch_sent(struct job *job, const struct dispatch_target *t,
              const char *provider_id)
{
    struct json_object *a;
    char action[24];
    int dup = 0;
    int rc = delivery_sent(job_db(job), t->delivery_id, provider_id, &dup);

    if (rc < 0)
        return dispatch_db_fail(job);
    if (rc == 0)
        return dispatch_final_before(t);
    a = json_object_new_object();
    dispatch_detail_add(a, "delivery_id", t->delivery_id);
    dispatch_detail_add(a, "to", t->to_masked);
    dispatch_detail_add(a, "provider_message_id", provider_id);
    if (dup)
        json_object_object_add(a, "possible_duplicate",
                               json_object_new_boolean(1));
    snprintf(action, sizeof(action), "%s.sent", t->channel);
    if (dispatch_audit(job, t, action, a) != 0)
        return dispatch_db_fail(job);
    dispatch_result(job, t, "sent", NULL, provider_id);
    return MFA_OK;
}
