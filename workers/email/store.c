/*
 * store.c - mfa-email's SQL: what a job's handler reads, the user a code
 * goes to with it.
 *
 * The read is shared/runtime/dispatch.c's (the delivery, its code and
 * login, for a whole batch in one statement before the BEGIN); this
 * file adds the user's columns (store_read_sql, given to dispatch_setup).
 * The delivery and code rows are shared/mfa/delivery.c's, audit rows
 * shared/mfa/audit.c's.
 *
 * Security notes: the user's email address is read to send to it and
 * never logged from here; the copies are wiped when freed.
 */
#include "store.h"
#include "util/xalloc.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

const char store_read_sql[] = DISPATCH_READ_SQL(
    "u.email, u.display_name, u.locale, u.email_confirmed, u.enabled, "
    "u.contact_id IS NOT NULL",
    "LEFT JOIN LATERAL (SELECT * FROM mfa.users WHERE contact_id = r.cid "
    " LIMIT 1) u ON true");

static char *
store_dup(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static int
store_true(const char *v)
{
    return v != NULL && strcmp(v, "t") == 0;
}

int
store_user_from(const struct dispatch_facts *f, struct store_user *out)
{
    const PGresult *res = f->res;
    int r = f->row, c = DISPATCH_COL_USER;

    memset(out, 0, sizeof(*out));
    if (!store_true(db_get(res, r, c + 5)))
        return 0;
    out->email = store_dup(db_get(res, r, c));
    out->display_name = store_dup(db_get(res, r, c + 1));
    out->locale = store_dup(db_get(res, r, c + 2));
    out->email_confirmed = store_true(db_get(res, r, c + 3));
    out->enabled = store_true(db_get(res, r, c + 4));
    return 1;
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
