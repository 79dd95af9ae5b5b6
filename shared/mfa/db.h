/*
 * db.h - PostgreSQL over libpq: one connection, reconnect, error classes.
 *
 * Errors are classified so callers can decide: a lost connection means
 * "keep the message, reconnect, try again"; a serialization failure or
 * deadlock means "run the unit of work again"; anything else is a bug or
 * bad data (retry tiers, then dead letter).
 */
#ifndef MFA_DB_H
#define MFA_DB_H

#include <libpq-fe.h>

#include "util/buf.h"

enum db_err { DB_OK = 0, DB_ERR_CONN, DB_ERR_RETRY, DB_ERR_QUERY };

struct db_prep;  /* db.c's cache of prepared statements */
struct db_later; /* a statement kept by db_defer() */

struct db {
    PGconn *conn;
    char *conninfo;
    enum db_err last;
    char sqlstate[6];
    char errmsg[512];
    /* Statements that changed rows (INSERT, UPDATE, DELETE, MERGE) since
     * the connection was made: lets a caller see whether a unit of work
     * wrote anything. */
    unsigned long writes;
    struct db_prep *prep;
    int nprep;
    int prep_stale;  /* a cached plan went stale: DEALLOCATE when idle */
    int defer;       /* db_defer() keeps statements instead of running */
    int begin_later; /* db_begin_later(): BEGIN goes with the next round trip */
    struct db_later *later;
    int nlater, caplater;
};

/* One statement of db_pipeline(). */
struct db_stmt {
    const char *sql;
    int nparams;
    const char *const *params;
    PGresult *res; /* out: the result (caller PQclears) or NULL */
};

struct db *db_new(const char *conninfo);
void db_free(struct db *db);
/* (Re)connects when needed. 0 when usable, -1 with db->errmsg. */
int db_connect(struct db *db) __attribute__((warn_unused_result));
int db_connected(const struct db *db);
void db_disconnect(struct db *db);

/*
 * Runs one statement with text parameters (NULL = SQL NULL). Returns the
 * result for the caller to PQclear, or NULL with db->last/errmsg set.
 * A statement with parameters is prepared on its connection the first
 * time its text is seen and executed by name afterwards (the server
 * parses and plans it once, not per call).
 */
PGresult *db_query(struct db *db, const char *sql, int nparams,
                   const char *const *params)
    __attribute__((warn_unused_result));
/*
 * Runs n statements in order in one round trip (libpq pipeline mode).
 * Stops at the first failure, which sets db->last/errmsg as db_query
 * does; the statements after it are not run. Returns how many succeeded
 * (n when all did); their results are in st[i].res.
 */
int db_pipeline(struct db *db, struct db_stmt *st, int n)
    __attribute__((warn_unused_result));
/*
 * A write whose result nobody reads and that nothing later in the same
 * transaction reads back (an audit row): runs now, or - while db->defer
 * is set by the runtime - is kept (parameters copied; sql must be a
 * static string) and sent with the COMMIT in one round trip; counted in
 * db->writes either way. 0 or -1.
 */
int db_defer(struct db *db, const char *sql, int nparams,
             const char *const *params) __attribute__((warn_unused_result));
/*
 * Same, for a row many events add (an INSERT ... VALUES): bulk is its
 * many-rows form (static too), which gets every parameter as an array
 * literal of the kept rows' values ("INSERT ... SELECT * FROM
 * unnest($1::text[], ...)"); kept rows of the same bulk go as one
 * statement, so use it only where no other kept write depends on the
 * order (no foreign key between them).
 */
int db_defer_rows(struct db *db, const char *sql, const char *bulk, int nparams,
                  const char *const *params)
    __attribute__((warn_unused_result));
/* The kept statements, as db_pipeline() input (valid until db_later_clear);
 * and forgetting them (after their pipeline, or a rollback). */
int db_later_stmts(struct db *db, struct db_stmt *st, int max);
int db_later_count(const struct db *db);
void db_later_clear(struct db *db);
/* Same, discarding the result. 0 or -1. */
int db_exec(struct db *db, const char *sql, int nparams,
            const char *const *params) __attribute__((warn_unused_result));

int db_begin(struct db *db) __attribute__((warn_unused_result));
/* BEGIN without a round trip of its own: sent in front of the next
 * statement or pipeline on this connection (db_query, db_pipeline, ...;
 * not PQexec). A COMMIT or ROLLBACK with nothing sent since is a no-op. */
void db_begin_later(struct db *db);
/* Inside a transaction block, one begun later included. */
int db_in_tx(const struct db *db);
int db_commit(struct db *db) __attribute__((warn_unused_result));
/* Best effort; never fails the caller. */
void db_rollback(struct db *db);

/* Appends one element of an array literal: NULL, or v quoted (\ and "
 * escaped); the caller adds the braces and commas. 0 or -1 (cap). */
int db_array_elem(struct buf *b, const char *v)
    __attribute__((warn_unused_result));

/* Helpers for results: value or NULL for SQL NULL. */
const char *db_get(const PGresult *res, int row, int col);

#endif
