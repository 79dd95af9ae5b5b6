/*
 * store.c - mfa-email's SQL: the user a code goes to.
 *
 * Called by handler.c on the job's connection, inside the runtime's
 * transaction. The delivery and code rows are shared/mfa/delivery.c's,
 * audit rows shared/mfa/audit.c's.
 *
 * Security notes: the user's email address is read to send to it and
 * never logged from here; the copies are wiped when freed.
 */
#include "store.h"
#include "util/xalloc.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

static const char SQL_USER[] =
    "SELECT email, display_name, locale, email_confirmed, enabled "
    "FROM mfa.users WHERE contact_id = $1";

static char *
store_dup(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

int
store_user_get(struct db *db, const char *contact_id, struct store_user *out)
{
    const char *p[1] = {contact_id};
    PGresult *res = db_query(db, SQL_USER, 1, p);
    int rc = 0;

    if (res == NULL)
        return -1;
    memset(out, 0, sizeof(*out));
    if (PQntuples(res) == 1) {
        out->email = store_dup(db_get(res, 0, 0));
        out->display_name = store_dup(db_get(res, 0, 1));
        out->locale = store_dup(db_get(res, 0, 2));
        out->email_confirmed =
            db_get(res, 0, 3) != NULL && strcmp(db_get(res, 0, 3), "t") == 0;
        out->enabled =
            db_get(res, 0, 4) != NULL && strcmp(db_get(res, 0, 4), "t") == 0;
        rc = 1;
    }
    PQclear(res);
    return rc;
}

static void
store_wipe_free(char *s)
{
    if (s != NULL) {
        sodium_memzero(s, strlen(s));
        free(s);
    }
}

void
store_user_free(struct store_user *u)
{
    store_wipe_free(u->email);
    store_wipe_free(u->display_name);
    store_wipe_free(u->locale);
    memset(u, 0, sizeof(*u));
}
