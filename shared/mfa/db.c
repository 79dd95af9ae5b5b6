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
}

void
db_free(struct db *db)
{
    if (db == NULL)
        return;
    db_disconnect(db);
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

PGresult *
db_query(struct db *db, const char *sql, int nparams, const char *const *params)
{
    PGresult *res;
    ExecStatusType st;
    const char *state;

    if (!db_connected(db)) {
        db_set_error(db, DB_ERR_CONN, "08003", "not connected");
        return NULL;
    }
    res = PQexecParams(db->conn, sql, nparams, NULL, params, NULL, NULL, 0);
    st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        db->last = DB_OK;
        return res;
    }
    state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    db_set_error(db, DB_ERR_QUERY, state,
                 res ? PQresultErrorMessage(res) : PQerrorMessage(db->conn));
    db->last = db_classify(db, state);
    PQclear(res);
    return NULL;
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

int
db_commit(struct db *db)
{
    return db_exec(db, "COMMIT", 0, NULL);
}

void
db_rollback(struct db *db)
{
    PGresult *res;

    if (!db_connected(db))
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
