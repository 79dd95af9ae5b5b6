/*
 * db_later.c - writes kept until COMMIT (see db_defer in db.h).
 *
 * The runtime runs a batch of handlers in one transaction; an audit row
 * per event would cost a round trip and a statement each. While
 * db->defer is set such writes are copied here and the runtime sends them
 * with the COMMIT, in the same pipeline: any failure among them fails the
 * COMMIT, and the runtime runs the batch again the careful way (db->defer
 * off: at once). Rows kept with db_defer_rows() under the same bulk
 * statement become one statement whose parameters are arrays (PostgreSQL
 * array literals, every element quoted).
 */
#include "mfa/db.h"
#include "util/buf.h"
#include "util/xalloc.h"

#include <stdlib.h>
#include <string.h>

#define DB_LATER_ARRAY_MAX (64u << 20)

struct db_later {
    const char *sql;  /* static SQL of the caller */
    const char *bulk; /* its many-rows form, or NULL */
    int nparams;
    char **params;
    char **arrays; /* a group's parameters as arrays (first row only) */
    int taken;     /* sent as part of an earlier row's group */
};

int
db_defer_rows(struct db *db, const char *sql, const char *bulk, int nparams,
              const char *const *params)
{
    struct db_later *l;

    if (!db->defer)
        return db_exec(db, sql, nparams, params);
    if (db->nlater == db->caplater) {
        db->caplater = db->caplater ? db->caplater * 2 : 64;
        db->later = xrealloc(db->later, (size_t)db->caplater * sizeof(*l));
    }
    l = &db->later[db->nlater++];
    memset(l, 0, sizeof(*l));
    l->sql = sql;
    l->bulk = bulk;
    l->nparams = nparams;
    l->params = xcalloc((size_t)nparams + 1, sizeof(*l->params));
    for (int i = 0; i < nparams; i++)
        l->params[i] = params[i] ? xstrdup(params[i]) : NULL;
    db->writes++;
    return 0;
}

int
db_defer(struct db *db, const char *sql, int nparams, const char *const *params)
{
    return db_defer_rows(db, sql, NULL, nparams, params);
}

int
db_later_count(const struct db *db)
{
    return db->nlater;
}

int
db_array_elem(struct buf *b, const char *v)
{
    int bad = 0;

    if (v == NULL)
        return buf_puts(b, "NULL");
    bad |= buf_puts(b, "\"");
    while (*v) {
        size_t run = strcspn(v, "\"\\");

        bad |= buf_append(b, v, run);
        v += run;
        if (*v) {
            bad |= buf_puts(b, "\\");
            bad |= buf_append(b, v++, 1);
        }
    }
    return bad | buf_puts(b, "\"");
}

/* Gathers the rows of i's group (same bulk statement) into arrays. 0, or
 * -1 when an array would pass the cap: then the rows go one by one. */
static int
db_later_group(struct db *db, int i)
{
    struct db_later *l = &db->later[i];
    char **arrays = xcalloc((size_t)l->nparams + 1, sizeof(*arrays));
    int bad = 0;

    for (int p = 0; p < l->nparams && !bad; p++) {
        struct buf b;
        int first = 1;

        buf_init(&b, DB_LATER_ARRAY_MAX);
        bad |= buf_puts(&b, "{");
        for (int k = i; k < db->nlater; k++) {
            if (db->later[k].bulk != l->bulk)
                continue;
            if (!first)
                bad |= buf_puts(&b, ",");
            bad |= db_array_elem(&b, db->later[k].params[p]);
            first = 0;
        }
        bad |= buf_puts(&b, "}");
        arrays[p] = buf_steal(&b);
        buf_free(&b);
    }
    if (bad) {
        for (int p = 0; p < l->nparams; p++)
            free(arrays[p]);
        free(arrays);
        return -1;
    }
    for (int k = i + 1; k < db->nlater; k++)
        if (db->later[k].bulk == l->bulk)
            db->later[k].taken = 1;
    l->arrays = arrays;
    return 0;
}

int
db_later_stmts(struct db *db, struct db_stmt *st, int max)
{
    int n = 0;

    for (int i = 0; i < db->nlater && n < max; i++) {
        struct db_later *l = &db->later[i];
        int many = 0;

        if (l->taken)
            continue;
        for (int k = i + 1; l->bulk != NULL && k < db->nlater && !many; k++)
            many = db->later[k].bulk == l->bulk;
        if (many && db_later_group(db, i) == 0)
            st[n++] = (struct db_stmt){l->bulk, l->nparams,
                                       (const char *const *)l->arrays, NULL};
        else
            st[n++] = (struct db_stmt){l->sql, l->nparams,
                                       (const char *const *)l->params, NULL};
    }
    return n;
}

void
db_later_clear(struct db *db)
{
    for (int i = 0; i < db->nlater; i++) {
        struct db_later *l = &db->later[i];

        for (int k = 0; k < l->nparams; k++) {
            free(l->params[k]);
            if (l->arrays)
                free(l->arrays[k]);
        }
        free(l->params);
        free(l->arrays);
    }
    db->nlater = 0;
}
