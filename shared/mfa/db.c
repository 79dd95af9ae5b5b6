/*
 * db.c - libpq wrapper used by the runtime, the workers and mfactl.
 *
 * Every statement goes through db_query(), which classifies failures by
 * SQLSTATE: class 08 and a bad connection status are DB_ERR_CONN, 40001
 * and 40P01 are DB_ERR_RETRY, the rest DB_ERR_QUERY. Sessions get a
 * statement timeout so a stuck server cannot stall the event loop forever
 * (AMQP heartbeats are not serviced while we wait on PostgreSQL).
 */
#include "mfa/db.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DB_PREP_MAX 128 /* distinct statements cached per connection */
#define DB_PIPE_MAX                                                            \
    64 /* statements per pipeline sync: results stay small                     \
          enough never to fill the socket buffers */

struct db_prep {
    unsigned long long hash;
    char *sql;
    int ready; /* prepared on the current connection */
};

static void db_prep_forget(struct db *db);

struct db *
db_new(const char *conninfo)
{
    struct db *db = xcalloc(1, sizeof(*db));

    db->conninfo = xstrdup(conninfo);
    return db;
}

void
db_disconnect(struct db *db)
{
    if (db->conn != NULL)
        PQfinish(db->conn);
    db->conn = NULL;
    db->begin_later = 0;
    db_prep_forget(db); /* prepared statements belong to the session */
}

void
db_free(struct db *db)
{
    if (db == NULL)
        return;
    db_disconnect(db);
    for (int i = 0; i < db->nprep; i++)
        free(db->prep[i].sql);
    free(db->prep);
    db_later_clear(db);
    free(db->later);
    free(db->conninfo);
    free(db);
}

int
db_connected(const struct db *db)
{
    return db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK;
}

static void
db_set_error(struct db *db, enum db_err e, const char *state, const char *msg)
{
    size_t n;

    db->last = e;
    snprintf(db->sqlstate, sizeof(db->sqlstate), "%s", state ? state : "");
    snprintf(db->errmsg, sizeof(db->errmsg), "%s", msg ? msg : "");
    n = strlen(db->errmsg);
    while (n > 0 && (db->errmsg[n - 1] == '\n' || db->errmsg[n - 1] == ' '))
        db->errmsg[--n] = '\0';
}

int
db_connect(struct db *db)
{
    PGresult *res;

    if (db_connected(db))
        return 0;
    db_disconnect(db);
    db->conn = PQconnectdb(db->conninfo);
    if (PQstatus(db->conn) != CONNECTION_OK) {
        db_set_error(db, DB_ERR_CONN, "08006", PQerrorMessage(db->conn));
        db_disconnect(db);
        return -1;
    }
    res = PQexec(db->conn, "SET statement_timeout = '15s'; "
                           "SET lock_timeout = '10s'; "
                           "SET idle_in_transaction_session_timeout = '60s'; "
                           "SET TIME ZONE 'UTC'");
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        db_set_error(db, DB_ERR_CONN, "08006", PQerrorMessage(db->conn));
        PQclear(res);
        db_disconnect(db);
        return -1;
    }
    PQclear(res);
    db->last = DB_OK;
    return 0;
}

static enum db_err
db_classify(struct db *db, const char *state)
{
    if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK)
        return DB_ERR_CONN;
    if (state == NULL)
        return DB_ERR_CONN; /* no SQLSTATE: libpq lost the server */
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0)
        return DB_ERR_CONN;
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
        strcmp(state, "55P03") == 0)
        return DB_ERR_RETRY;
    return DB_ERR_QUERY;
}

/* ---- prepared statements ------------------------------------------- */

static unsigned long long
db_hash(const char *s)
{
    unsigned long long h = 1469598103934665603ULL; /* FNV-1a */

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

/* The cache slot for sql (added if new), or -1 when the cache is full and
 * the statement runs unnamed. */
static int
db_prep_slot(struct db *db, const char *sql)
{
    unsigned long long h = db_hash(sql);

    for (int i = 0; i < db->nprep; i++)
        if (db->prep[i].hash == h && strcmp(db->prep[i].sql, sql) == 0)
            return i;
    if (db->nprep == DB_PREP_MAX)
        return -1;
    if (db->prep == NULL)
        db->prep = xcalloc(DB_PREP_MAX, sizeof(*db->prep));
    db->prep[db->nprep].hash = h;
    db->prep[db->nprep].sql = xstrdup(sql);
    db->prep[db->nprep].ready = 0;
    return db->nprep++;
}

static void
db_prep_forget(struct db *db)
{
    for (int i = 0; i < db->nprep; i++)
        db->prep[i].ready = 0;
    db->prep_stale = 0;
}

/* After "cached plan must not change result type" (a migration changed a
 * table under a prepared statement): start afresh once out of the
 * transaction that failed. */
static void
db_prep_refresh(struct db *db)
{
    PGresult *res;

    if (!db->prep_stale || PQtransactionStatus(db->conn) != PQTRANS_IDLE)
        return;
    res = PQexec(db->conn, "DEALLOCATE ALL");
    PQclear(res);
    db_prep_forget(db);
}

/* ---- statements ----------------------------------------------------- */

static void
db_fail(struct db *db, const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    db_set_error(db, DB_ERR_QUERY, state,
                 res && PQresultErrorMessage(res)[0]
                     ? PQresultErrorMessage(res)
                     : PQerrorMessage(db->conn));
    db->last = db_classify(db, state);
    if (state != NULL && strcmp(state, "0A000") == 0 &&
        strstr(db->errmsg, "cached plan") != NULL) {
        db->prep_stale = 1;
        db->last = DB_ERR_RETRY;
    }
}

/* The next command's result in pipeline mode (and the NULL after it). */
static PGresult *
db_next(struct db *db)
{
    PGresult *res = PQgetResult(db->conn), *end;

    if (res != NULL && PQresultStatus(res) != PGRES_PIPELINE_SYNC)
        while ((end = PQgetResult(db->conn)) != NULL)
            PQclear(end);
    return res;
}

static int
db_ok(const PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);

    return res != NULL && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK);
}

static void
db_count_write(struct db *db, const PGresult *res)
{
    const char *tag = PQcmdStatus((PGresult *)res);

    if (strncmp(tag, "INSERT", 6) == 0 || strncmp(tag, "UPDATE", 6) == 0 ||
        strncmp(tag, "DELETE", 6) == 0 || strncmp(tag, "MERGE", 5) == 0)
        db->writes++;
}

/* Queues st (and its Parse, the first time) on the pipeline. */
static int
db_send(struct db *db, const struct db_stmt *st, int *prepping)
{
    int slot = st->nparams > 0 ? db_prep_slot(db, st->sql) : -1;
    char name[16];

    *prepping = -1;
    if (slot < 0)
        return PQsendQueryParams(db->conn, st->sql, st->nparams, NULL,
                                 st->params, NULL, NULL, 0);
    snprintf(name, sizeof(name), "mfa_%d", slot);
    if (!db->prep[slot].ready) {
        if (!PQsendPrepare(db->conn, name, st->sql, st->nparams, NULL))
            return 0;
        *prepping = slot;
    }
    return PQsendQueryPrepared(db->conn, name, st->nparams, st->params, NULL,
                               NULL, 0);
}

/* Protocol trouble: the connection cannot be trusted any more. */
static int
db_broken(struct db *db, int done)
{
    db_set_error(db, DB_ERR_CONN, "08006", PQerrorMessage(db->conn));
    db_disconnect(db);
    return done;
}

static int
db_pipeline_part(struct db *db, struct db_stmt *st, int n)
{
    int prepping[DB_PIPE_MAX];
    int done = 0, failed = 0, begin;
    PGresult *res;

    if (!db_connected(db)) {
        db_set_error(db, DB_ERR_CONN, "08003", "not connected");
        return 0;
    }
    db_prep_refresh(db);
    if (PQenterPipelineMode(db->conn) != 1)
        return db_broken(db, 0);
    begin = db->begin_later;
    db->begin_later = 0;
    if (begin &&
        !PQsendQueryParams(db->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0))
        return db_broken(db, 0);
    for (int i = 0; i < n; i++)
        if (!db_send(db, &st[i], &prepping[i]))
            return db_broken(db, 0);
    if (PQpipelineSync(db->conn) != 1)
        return db_broken(db, 0);
    if (begin) {
        if ((res = db_next(db)) == NULL)
            return db_broken(db, 0);
        if (!db_ok(res) && !failed++)
            db_fail(db, res);
        PQclear(res);
    }
    for (int i = 0; i < n; i++) {
        if (prepping[i] >= 0) {
            if ((res = db_next(db)) == NULL)
                return db_broken(db, done);
            if (db_ok(res))
                db->prep[prepping[i]].ready = 1;
            else if (!failed++)
                db_fail(db, res);
            PQclear(res);
        }
        if ((res = db_next(db)) == NULL)
            return db_broken(db, done);
        if (!failed && db_ok(res)) {
            db_count_write(db, res);
            st[i].res = res;
            done++;
            continue;
        }
        if (!failed++)
            db_fail(db, res);
        PQclear(res);
    }
    res = db_next(db);
    if (res == NULL || PQresultStatus(res) != PGRES_PIPELINE_SYNC) {
        PQclear(res);
        return db_broken(db, done);
    }
    PQclear(res);
    if (PQexitPipelineMode(db->conn) != 1)
        return db_broken(db, done);
    if (!failed)
        db->last = DB_OK;
    return done;
}

int
db_pipeline(struct db *db, struct db_stmt *st, int n)
{
    int done = 0;

    for (int i = 0; i < n; i++)
        st[i].res = NULL;
    /* Parts of DB_PIPE_MAX, each up to its own sync point: the same
     * inside a transaction block, where the callers with many are. */
    while (done < n) {
        int k = n - done < DB_PIPE_MAX ? n - done : DB_PIPE_MAX;
        int ok = db_pipeline_part(db, st + done, k);

        done += ok;
        if (ok < k)
            break;
    }
    return done;
}

PGresult *
db_query(struct db *db, const char *sql, int nparams, const char *const *params)
{
    struct db_stmt st = {sql, nparams, params, NULL};

    return db_pipeline(db, &st, 1) == 1 ? st.res : NULL;
}

int
db_exec(struct db *db, const char *sql, int nparams, const char *const *params)
{
    PGresult *res = db_query(db, sql, nparams, params);

    if (res == NULL)
        return -1;
    PQclear(res);
    return 0;
}

int
db_begin(struct db *db)
{
    return db_exec(db, "BEGIN", 0, NULL);
}

void
db_begin_later(struct db *db)
{
    db->begin_later = 1;
}

int
db_in_tx(const struct db *db)
{
    return db->begin_later ||
           (db_connected(db) &&
            PQtransactionStatus(db->conn) == PQTRANS_INTRANS);
}

int
db_commit(struct db *db)
{
    if (db->begin_later) { /* nothing ran: nothing to commit */
        db->begin_later = 0;
        return 0;
    }
    return db_exec(db, "COMMIT", 0, NULL);
}

void
db_rollback(struct db *db)
{
    PGresult *res;

    db->begin_later = 0;
    if (!db_connected(db) ||
        PQtransactionStatus(db->conn) == PQTRANS_IDLE) /* nothing begun */
        return;
    res = PQexec(db->conn, "ROLLBACK");
    PQclear(res);
}

const char *
db_get(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return NULL;
    return PQgetvalue(res, row, col);
}
