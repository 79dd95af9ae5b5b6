/*
 * db_later.c - writes kept until COMMIT (see db_defer in db.h).
 *
 * The runtime runs a batch of handlers in one transaction; an audit row
 * per event would cost a round trip each. While db->defer is set such
 * writes are copied here and the runtime sends them with the COMMIT, in
 * the same pipeline: any failure among them fails the COMMIT, and the
 * runtime runs the batch again the careful way (db->defer off: at once).
 */
#include "mfa/db.h"
#include "util/xalloc.h"

#include <stdlib.h>
#include <string.h>

struct db_later {
    const char *sql; /* static SQL of the caller */
    int nparams;
    char **params;
};

int
db_defer(struct db *db, const char *sql, int nparams, const char *const *params)
{
    struct db_later *l;

    if (!db->defer)
        return db_exec(db, sql, nparams, params);
    if (db->nlater == db->caplater) {
        db->caplater = db->caplater ? db->caplater * 2 : 64;
        db->later = xrealloc(db->later, (size_t)db->caplater * sizeof(*l));
    }
    l = &db->later[db->nlater++];
    l->sql = sql;
    l->nparams = nparams;
    l->params = xcalloc((size_t)nparams + 1, sizeof(*l->params));
    for (int i = 0; i < nparams; i++)
        l->params[i] = params[i] ? xstrdup(params[i]) : NULL;
    db->writes++;
    return 0;
}

int
db_later_count(const struct db *db)
{
    return db->nlater;
}

int
db_later_stmts(struct db *db, struct db_stmt *st, int max)
{
    int n = db->nlater < max ? db->nlater : max;

    for (int i = 0; i < n; i++)
        st[i] =
            (struct db_stmt){db->later[i].sql, db->later[i].nparams,
                             (const char *const *)db->later[i].params, NULL};
    return n;
}

void
db_later_clear(struct db *db)
{
    for (int i = 0; i < db->nlater; i++) {
        for (int k = 0; k < db->later[i].nparams; k++)
            free(db->later[i].params[k]);
        free(db->later[i].params);
    }
    db->nlater = 0;
}
