/*
 * cmd_migrate.c - `mfactl migrate [--dir DIR]`: applies the numbered SQL
 * files of schema/ in order, each once, each in its own transaction with
 * the record of its version, under an advisory lock so two migrations
 * cannot interleave. Safe to run again: applied versions are skipped.
 */
#include "ctl/ctl.h"
#include "util/buf.h"
#include "util/xalloc.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIGRATE_MAX_FILE (4 * 1024 * 1024)

static const char SQL_SCHEMA[] = "CREATE SCHEMA IF NOT EXISTS mfa";
static const char SQL_VERSIONS[] =
    "CREATE TABLE IF NOT EXISTS mfa.schema_migrations ("
    " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())";

static int
migrate_is_sql(const struct dirent *d)
{
    size_t n = strlen(d->d_name);

    return n > 8 && d->d_name[0] >= '0' && d->d_name[0] <= '9' &&
           strcmp(d->d_name + n - 4, ".sql") == 0;
}

static int
migrate_read(const char *path, struct buf *b)
{
    char chunk[8192];
    size_t n;
    FILE *f = fopen(path, "r");
    int rc = 0;

    if (f == NULL)
        return -1;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (buf_append(b, chunk, n) != 0) {
            rc = -1;
            break;
        }
    fclose(f);
    return rc;
}

static int
migrate_applied(struct db *db, const char *version)
{
    const char *p[1] = {version};
    PGresult *res = db_query(
        db, "SELECT 1 FROM mfa.schema_migrations WHERE version = $1", 1, p);
    int yes;

    if (res == NULL)
        return -1;
    yes = PQntuples(res) > 0;
    PQclear(res);
    return yes;
}

static int
migrate_one(struct db *db, const char *dir, const char *file, int *applied)
{
    char path[4096], version[256];
    const char *p[1] = {version};
    struct buf sql;
    PGresult *res;
    int rc = -1, have;

    snprintf(version, sizeof(version), "%.*s", (int)(strlen(file) - 4), file);
    have = migrate_applied(db, version);
    if (have < 0) {
        fprintf(stderr, "mfactl migrate: %s\n", db->errmsg);
        return -1;
    }
    if (have)
        return 0;
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    buf_init(&sql, MIGRATE_MAX_FILE);
    if (migrate_read(path, &sql) != 0) {
        fprintf(stderr, "mfactl migrate: cannot read %s\n", path);
        goto out;
    }
    if (db_begin(db) != 0)
        goto dberr;
    /* A file holds many statements: the simple protocol runs them all. */
    res = PQexec(db->conn, buf_cstr(&sql));
    if (PQresultStatus(res) != PGRES_COMMAND_OK &&
        PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "mfactl migrate: %s: %s", file,
                PQresultErrorMessage(res));
        PQclear(res);
        db_rollback(db);
        goto out;
    }
    PQclear(res);
    if (db_exec(db, "INSERT INTO mfa.schema_migrations (version) VALUES ($1)",
                1, p) != 0 ||
        db_commit(db) != 0)
        goto dberr;
    printf("applied %s\n", version);
    (*applied)++;
    rc = 0;
    goto out;
dberr:
    fprintf(stderr, "mfactl migrate: %s: %s\n", file, db->errmsg);
    db_rollback(db);
out:
    buf_free(&sql);
    return rc;
}

int
cmd_migrate(struct ctl *c, int argc, char **argv)
{
    const char *dir = getenv("MFA_SCHEMA_DIR");
    struct dirent **names = NULL;
    struct db *db = NULL;
    int n = 0, rc = 1, applied = 0;

    if (dir == NULL || dir[0] == '\0')
        dir = "schema";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else {
            fprintf(stderr, "usage: mfactl migrate [--dir DIR]\n");
            return 2;
        }
    }
    n = scandir(dir, &names, migrate_is_sql, alphasort);
    if (n < 0) {
        fprintf(stderr, "mfactl migrate: cannot read directory %s\n", dir);
        return 1;
    }
    db = ctl_db(c);
    if (db == NULL)
        goto out;
    /* IF NOT EXISTS notices on a re-run are noise, not news. */
    if (db_exec(db, "SET client_min_messages = warning", 0, NULL) != 0 ||
        db_exec(db, "SELECT pg_advisory_lock(hashtext('mfa.migrate'))", 0,
                NULL) != 0 ||
        db_exec(db, SQL_SCHEMA, 0, NULL) != 0 ||
        db_exec(db, SQL_VERSIONS, 0, NULL) != 0) {
        fprintf(stderr, "mfactl migrate: %s\n", db->errmsg);
        goto out;
    }
    for (int i = 0; i < n; i++)
        if (migrate_one(db, dir, names[i]->d_name, &applied) != 0)
            goto out;
    printf("schema up to date (%d applied now, %d files)\n", applied, n);
    rc = 0;
out:
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    db_free(db);
    return rc;
}
