/*
 * batch_tx.c - the transaction of a batch: inbox rows, handlers, outputs.
 *
 * The fast way, taken first: the batch's reads (below) in one round trip;
 * BEGIN, sent with the first statement after them (in front of them when
 * they take row locks); the handlers run back
 * to back without savepoints, their audit rows kept for the end
 * (db_defer); then one round trip writes those, inserts every job's inbox
 * row with its outputs and commits. Round trips per event are only the
 * handler's own.
 *
 * The inbox INSERT has no ON CONFLICT: an event handled before (a
 * duplicate) or being handled by another process fails it, and with it
 * the COMMIT. So does any failed statement, and a handler that wrote and
 * then returned RETRY or REJECT (its writes must go, not its batch-
 * mates'). Then the transaction is rolled back and the batch runs the
 * careful way: a SAVEPOINT and a claim per job before its handler, so a
 * duplicate re-sends its stored outputs and one job's failure undoes that
 * job alone. Jobs that started provider I/O on the fast way are not run
 * again.
 *
 * An async worker's handler (not its completion) must know before it
 * starts a send whether its event was handled: those jobs look their
 * rows up with the batch's reads. Their completion inserts the row.
 */
#include "runtime/job.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BATCH_LOCAL_RETRIES 3
#define BATCH_PARAM_MAX (64u << 20) /* bytes of one batch parameter */
#define BATCH_READ_MAX 4            /* statements of a worker's batch read */

/* ---- the fast way ------------------------------------------------------ */

/* Each row by its key (LATERAL ... LIMIT 1), never a range of the
 * consumer's rows: a generic plan made while the table was small used
 * the key's first column alone and read ~7,000 pages a call after 190,000
 * rows (see mfa/delivery.h's DELIVERY_FACTS_JOIN). */
static const char SQL_DONE_ALL[] =
    "SELECT i.event_id::text, i.outputs FROM unnest($2::uuid[]) AS r(id) "
    "JOIN LATERAL (SELECT event_id, outputs FROM mfa.inbox "
    " WHERE consumer = $1 AND event_id = r.id LIMIT 1) i ON true "
    "WHERE i.outputs IS NOT NULL";
/* The batch's inbox rows, outputs with them (none for a failed job, whose
 * row goes again below). No ON CONFLICT: a row that exists already - a
 * duplicate, or another process's - fails it, and the batch goes the
 * careful way, which claims first and re-sends a duplicate's outputs. */
static const char SQL_STORE_ALL[] =
    "INSERT INTO mfa.inbox (consumer, event_id, event_type, outputs) "
    "SELECT $1, (x->>'id')::uuid, x->>'type', x->'outputs' "
    "FROM jsonb_array_elements($2::jsonb) AS x ORDER BY 2";
static const char SQL_UNCLAIM_ALL[] =
    "DELETE FROM mfa.inbox WHERE consumer = $1 AND event_id = ANY($2::uuid[])";

/* An async worker's handler only looks its event up (see above). */
static int
batch_lookup_only(const struct worker *w, const struct job *j)
{
    return w->spec->inflight != NULL && j->fn == w->spec->handle;
}

/* "{a,b}" of the event ids of the jobs that only look theirs up: UUIDs
 * need no quoting in an array literal. */
static int
batch_lookup_ids(struct buf *b, struct job **jobs, size_t n,
                 const struct worker *w, size_t *count)
{
    int bad = buf_puts(b, "{");

    *count = 0;
    for (size_t i = 0; i < n; i++) {
        if (!jobs[i]->parsed || !batch_lookup_only(w, jobs[i]))
            continue;
        if ((*count)++ > 0)
            bad |= buf_puts(b, ",");
        bad |= buf_puts(b, jobs[i]->ev.event_id);
    }
    return bad | buf_puts(b, "}");
}

/* Marks the jobs handled before (outputs loaded). */
static void
batch_mark_done(struct job **jobs, size_t n, PGresult *res)
{
    for (int r = 0; r < PQntuples(res); r++) {
        for (size_t i = 0; i < n; i++) {
            struct job *j = jobs[i];

            if (!j->parsed || strcasecmp(j->ev.event_id, PQgetvalue(res, r, 0)))
                continue;
            j->duplicate = 1;
            j->verdict = MFA_OK;
            log_kv(LOGL_INFO, "duplicate event: resending stored outputs",
                   "event_id", j->ev.event_id, NULL);
            if (job_outputs_load(j, db_get(res, r, 1)) != 0)
                log_warn("inbox outputs unreadable; duplicate acked "
                         "without resend");
        }
    }
}

/* The look-up of an async worker's events and the worker's batch read,
 * in one round trip; BEGIN goes with the first statement that follows,
 * or in front of the read when it locks rows (batch_read_locks). The
 * reads need no transaction: at READ COMMITTED each statement sees what
 * was committed when it started, in a transaction block or not. So a
 * batch that writes nothing (an async worker's sends, all started) ends
 * without a COMMIT round trip. 0, 1 = go the careful way, -1 = database
 * lost. */
static int
batch_open(struct worker *w, struct job **jobs, size_t n)
{
    struct buf ids;
    const char *pd[2];
    struct db_stmt st[1 + BATCH_READ_MAX];
    PGresult *res[BATCH_READ_MAX];
    int ns = 0, read = 0, rc = 1;
    size_t nlookup;

    memset(st, 0, sizeof(st));
    buf_init(&ids, BATCH_PARAM_MAX);
    if (batch_lookup_ids(&ids, jobs, n, w, &nlookup))
        goto out;
    pd[0] = w->spec->name;
    pd[1] = buf_cstr(&ids);
    if (nlookup > 0)
        st[ns++] = (struct db_stmt){SQL_DONE_ALL, 2, pd, NULL};
    if (w->spec->batch_read != NULL) {
        read = w->spec->batch_read(w, jobs, n, &st[ns], BATCH_READ_MAX);
        if (read < 0 || read > BATCH_READ_MAX)
            goto out;
        ns += read;
    }
    if (read > 0 && w->spec->batch_read_locks)
        db_begin_later(w->db);
    if (ns > 0 && db_pipeline(w->db, st, ns) != ns) {
        rc = w->db->last == DB_ERR_CONN ? -1 : 1;
        goto clear;
    }
    rc = 0;
    if (!db_in_tx(w->db))
        db_begin_later(w->db);
    if (nlookup > 0)
        batch_mark_done(jobs, n, st[0].res);
    if (read > 0) {
        for (int i = 0; i < read; i++) {
            res[i] = st[ns - read + i].res;
            st[ns - read + i].res = NULL;
        }
        w->spec->batch_result(w, res, read);
    }
clear:
    for (int i = 0; i < ns; i++)
        PQclear(st[i].res);
out:
    buf_free(&ids);
    return rc;
}

/* Runs the handlers. 0, 1 = go the careful way, -1 = database lost. */
static int
batch_handle(struct worker *w, struct job **jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct job *j = jobs[i];
        unsigned long writes = w->db->writes;

        if (!j->parsed || j->duplicate)
            continue;
        log_set_event(j->ev.event_id);
        job_reset_outputs(j);
        j->error[0] = '\0';
        j->keep_effects = 0;
        j->verdict = j->fn(j);
        if (j->verdict == MFA_PENDING) {
            j->started = 1;
            w->pending++; /* until job_finish() */
            job_list_push(&w->inflight, j);
        }
        if (w->db->last == DB_ERR_CONN)
            return -1;
        if (w->db->last != DB_OK || !db_in_tx(w->db))
            return 1;
        /* Nothing of the job's to undo: written nothing, or asked to keep
         * it (a retry's attempt count). batch_close checks it for a
         * duplicate and leaves it no inbox row. */
        if (j->verdict == MFA_OK ||
            (j->verdict != MFA_FATAL &&
             (w->db->writes == writes ||
              (j->keep_effects && j->verdict != MFA_PENDING))))
            continue;
        return 1;
    }
    return 0;
}

/* A job that ends in a retry or dead letter leaves no inbox row: it gets
 * one in the INSERT (which finds duplicates), then it goes again. */
static int
batch_unclaims(const struct worker *w, const struct job *j)
{
    return j->parsed && !j->duplicate && !batch_lookup_only(w, j) &&
           (j->verdict == MFA_RETRY || j->verdict == MFA_REJECT);
}

/* The rows to insert: "[{"id": .., "type": .., "outputs": ..}, ..]", the
 * outputs of a job that ended MFA_OK, none for a failed one. */
static int
batch_rows_param(struct buf *b, struct job **jobs, size_t n, size_t *nrows,
                 const struct worker *w)
{
    int bad = buf_puts(b, "[");

    for (size_t i = 0; i < n; i++) {
        struct job *j = jobs[i];
        char *outs = NULL;

        if (!j->parsed || j->duplicate ||
            !(j->verdict == MFA_OK || batch_unclaims(w, j)))
            continue;
        if (j->verdict == MFA_OK)
            outs = job_outputs_json(j);
        bad |= buf_printf(b, "%s{\"id\":\"%s\",\"type\":\"%s\"%s%s}",
                          *nrows ? "," : "", j->ev.event_id, j->ev.type_name,
                          outs ? ",\"outputs\":" : "", outs ? outs : "");
        free(outs);
        (*nrows)++;
    }
    return bad | buf_puts(b, "]");
}

/* The handlers' kept writes, the inbox rows, the failed jobs' rows gone
 * again, COMMIT: one round trip. 0, 1 = go the careful way (a statement
 * failed, a duplicate among them), -1 = database lost. */
static int
batch_close(struct worker *w, struct job **jobs, size_t n)
{
    struct buf rows, drop;
    const char *ps[2], *pu[2];
    struct db_stmt *st;
    size_t nrows = 0, ndrop = 0;
    int ns, rc = 1, bad;

    buf_init(&rows, BATCH_PARAM_MAX);
    buf_init(&drop, BATCH_PARAM_MAX);
    bad = batch_rows_param(&rows, jobs, n, &nrows, w);
    bad |= buf_puts(&drop, "{");
    for (size_t i = 0; i < n; i++)
        if (batch_unclaims(w, jobs[i]))
            bad |= buf_printf(&drop, "%s%s", ndrop++ ? "," : "",
                              jobs[i]->ev.event_id);
    st = xcalloc((size_t)db_later_count(w->db) + 3, sizeof(*st));
    ns = db_later_stmts(w->db, st, db_later_count(w->db));
    if (bad | buf_puts(&drop, "}"))
        goto clear;
    ps[0] = pu[0] = w->spec->name;
    ps[1] = buf_cstr(&rows);
    pu[1] = buf_cstr(&drop);
    if (nrows > 0)
        st[ns++] = (struct db_stmt){SQL_STORE_ALL, 2, ps, NULL};
    if (ndrop > 0)
        st[ns++] = (struct db_stmt){SQL_UNCLAIM_ALL, 2, pu, NULL};
    st[ns++] = (struct db_stmt){"COMMIT", 0, NULL, NULL};
    if (ns == 1 && w->db->begin_later) /* nothing ran, nothing to write */
        rc = db_commit(w->db);
    else if (db_pipeline(w->db, st, ns) == ns)
        rc = 0;
    else
        rc = w->db->last == DB_ERR_CONN ? -1 : 1;
clear:
    for (int i = 0; i < ns; i++)
        PQclear(st[i].res);
    free(st);
    db_later_clear(w->db);
    buf_free(&rows);
    buf_free(&drop);
    return rc;
}

static int
batch_fast(struct worker *w, struct job **jobs, size_t n)
{
    int rc = batch_open(w, jobs, n);

    w->db->defer = 1;
    if (rc == 0)
        rc = batch_handle(w, jobs, n);
    w->db->defer = 0;
    log_set_event(NULL);
    if (rc == 0)
        rc = batch_close(w, jobs, n);
    db_later_clear(w->db);
    if (w->spec->batch_done != NULL)
        w->spec->batch_done(w);
    if (rc == 1)
        db_rollback(w->db);
    return rc;
}

/* ---- the careful way ---------------------------------------------------- */

static const char SQL_CLAIM[] =
    "INSERT INTO mfa.inbox (consumer, event_id, event_type) "
    "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1";
static const char SQL_OUTPUTS[] =
    "SELECT outputs FROM mfa.inbox WHERE consumer = $1 AND event_id = $2";
static const char SQL_STORE[] =
    "UPDATE mfa.inbox SET outputs = $3 WHERE consumer = $1 AND event_id = $2";
static const char SQL_UNCLAIM[] =
    "DELETE FROM mfa.inbox WHERE consumer = $1 AND event_id = $2";

/* Claims the inbox row. 1 claimed, 0 duplicate (outputs loaded), -1 error */
static int
batch_claim(struct worker *w, struct job *j)
{
    const char *p[3] = {w->spec->name, j->ev.event_id, j->ev.type_name};
    PGresult *res;
    int claimed;

    res = db_query(w->db, SQL_CLAIM, 3, p);
    if (res == NULL)
        return -1;
    claimed = PQntuples(res) == 1;
    PQclear(res);
    if (claimed)
        return 1;
    res = db_query(w->db, SQL_OUTPUTS, 2, p);
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 1 && job_outputs_load(j, db_get(res, 0, 0)) != 0)
        log_warn("inbox outputs unreadable; duplicate acked without resend");
    PQclear(res);
    return 0;
}

/* Runs one job inside the batch transaction. -1 = database connection
 * lost (the whole batch is abandoned). */
static int
batch_one(struct worker *w, struct job *j)
{
    const char *p[3] = {w->spec->name, j->ev.event_id, NULL};
    char *outs;
    int rc;

    if (db_exec(w->db, "SAVEPOINT job", 0, NULL) != 0)
        return -1;
    rc = batch_claim(w, j);
    if (rc < 0)
        goto dberr;
    if (rc == 0) {
        j->duplicate = 1;
        j->verdict = MFA_OK;
        log_info("duplicate event: resending stored outputs");
        return db_exec(w->db, "RELEASE SAVEPOINT job", 0, NULL);
    }
    job_reset_outputs(j);
    j->error[0] = '\0';
    j->keep_effects = 0;
    j->again = 0;
    j->verdict = j->fn(j);
    if (j->verdict == MFA_PENDING) {
        w->pending++; /* until job_finish() */
        job_list_push(&w->inflight, j);
    }
    if (w->db->last == DB_ERR_CONN)
        return -1;
    /* (Not a job whose provider I/O has started: running it again would
     * send twice.) */
    if (w->db->last == DB_ERR_RETRY && j->verdict != MFA_OK &&
        j->verdict != MFA_PENDING && j->local_retries++ < BATCH_LOCAL_RETRIES) {
        /* Deadlock or lock timeout: undo this job and run it again in
         * the next batch, without spending a retry tier. */
        j->again = 1;
        if (db_exec(w->db, "ROLLBACK TO SAVEPOINT job", 0, NULL) != 0)
            return -1;
        return db_exec(w->db, "RELEASE SAVEPOINT job", 0, NULL);
    }
    switch (j->verdict) {
    case MFA_OK:
        outs = job_outputs_json(j);
        p[2] = outs;
        rc = db_exec(w->db, SQL_STORE, 3, p);
        free(outs);
        if (rc != 0)
            goto dberr;
        break;
    case MFA_RETRY:
    case MFA_REJECT:
        if (j->keep_effects) {
            if (db_exec(w->db, SQL_UNCLAIM, 2, p) != 0)
                goto dberr;
        } else if (db_exec(w->db, "ROLLBACK TO SAVEPOINT job", 0, NULL) != 0) {
            return -1;
        }
        break;
    case MFA_PENDING:
    case MFA_FATAL:
        if (db_exec(w->db, "ROLLBACK TO SAVEPOINT job", 0, NULL) != 0)
            return -1;
        break;
    }
    return db_exec(w->db, "RELEASE SAVEPOINT job", 0, NULL);
dberr:
    if (w->db->last == DB_ERR_CONN)
        return -1;
    /* The statement failed, the job did not: roll back and retry it. */
    snprintf(j->error, sizeof(j->error), "database: %.400s", w->db->errmsg);
    j->verdict = MFA_RETRY;
    if (db_exec(w->db, "ROLLBACK TO SAVEPOINT job", 0, NULL) != 0 ||
        db_exec(w->db, "RELEASE SAVEPOINT job", 0, NULL) != 0)
        return -1;
    return 0;
}

static int
batch_careful(struct worker *w, struct job **jobs, size_t n)
{
    if (db_begin(w->db) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        struct job *j = jobs[i];

        if (!j->parsed || j->started)
            continue;
        j->duplicate = 0;
        j->verdict = MFA_OK;
        log_set_event(j->ev.event_id);
        if (batch_one(w, j) != 0) {
            log_set_event(NULL);
            return -1;
        }
    }
    log_set_event(NULL);
    return db_commit(w->db) != 0 ? -1 : 0;
}

/* ------------------------------------------------------------------------ */

int
batch_tx(struct worker *w, struct job **jobs, size_t n)
{
    int rc, any = 0;

    for (size_t i = 0; i < n; i++) {
        jobs[i]->started = 0;
        jobs[i]->again = 0;
        jobs[i]->duplicate = 0;
        any |= jobs[i]->parsed;
    }
    if (!any)
        return 0;
    rc = batch_fast(w, jobs, n);
    if (rc == 1)
        rc = batch_careful(w, jobs, n);
    return rc;
}
