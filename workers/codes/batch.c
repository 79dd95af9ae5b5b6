/*
 * batch.c - mfa-codes: what a batch reads and locks before its handlers.
 *
 * Called by the runtime on a batch's fast way (worker_spec.batch_read,
 * batch_read_locks): up to three statements, sent after the BEGIN in one
 * round trip, in this order:
 *   1. the facts of every login.started (login.c; reads only);
 *   2. the lock of the owner of every login.code_requested (mfa.users FOR
 *      NO KEY UPDATE), taken in contact_id order so that two batches lock
 *      their users in the same order - the user first, as everywhere
 *      (codes_owner_lock);
 *   3. every login.code_requested's login, locked, with what its checks
 *      read (send.c): started after 2 returned, so its counts see every
 *      request those users' earlier holders committed.
 * A request's handler then issues its code in one statement, or keeps it
 * for the COMMIT (send.c). A login.code_submitted locks its owner in its
 * own first round trip, which it needs anyway (verify.c): a batch lock
 * would only add one. Any handler runs without these rows on the careful
 * way.
 */
#include "codes.h"

#include "util/buf.h"

#include <stdlib.h>

/* Rows by their keys, as in mfa/delivery.h's DELIVERY_FACTS_JOIN (why:
 * there); the owners sorted before the lateral lock takes them. */
static const char SQL_OWNERS_LOCK_ALL[] =
    "SELECT u.contact_id FROM (SELECT DISTINCT l.contact_id AS cid "
    " FROM unnest($1::uuid[]) AS r(lid) "
    " JOIN LATERAL (SELECT contact_id FROM mfa.logins WHERE login_id = r.lid "
    "  LIMIT 1) l ON true ORDER BY 1) k "
    "JOIN LATERAL (SELECT contact_id FROM mfa.users WHERE contact_id = k.cid "
    " LIMIT 1 FOR NO KEY UPDATE) u ON true";

/* Which of the batch's results is whose; the worker runs one batch at a
 * time. */
static struct {
    int login, send; /* index in the results, or -1 */
    struct buf lids;
    const char *p[1];
    int has_lids;
} codes_batch = {-1, -1, {0}, {NULL}, 0};

/* Statement 2 into *st: 1, 0 (no such event), -1. */
static int
codes_owners_stmt(struct job *const *jobs, size_t n, struct db_stmt *st)
{
    size_t k = 0;
    int bad;

    buf_init(&codes_batch.lids, 1u << 24);
    codes_batch.has_lids = 1;
    bad = buf_puts(&codes_batch.lids, "{");
    for (size_t i = 0; i < n; i++) {
        const struct envelope *ev = job_event(jobs[i]);

        if (ev != NULL && ev->type == EV_LOGIN_CODE_REQUESTED)
            bad |= buf_printf(&codes_batch.lids, "%s%s", k++ ? "," : "",
                              ev->u.code_requested.login_id);
    }
    bad |= buf_puts(&codes_batch.lids, "}");
    if (k == 0)
        return 0;
    codes_batch.p[0] = buf_cstr(&codes_batch.lids);
    *st = (struct db_stmt){SQL_OWNERS_LOCK_ALL, 1, codes_batch.p, NULL};
    return bad ? -1 : 1;
}

int
codes_batch_read(struct worker *w, struct job *const *jobs, size_t n,
                 struct db_stmt *st, int max)
{
    int ns = 0, rc;

    if (max < 3)
        return -1;
    codes_batch.login = codes_batch.send = -1;
    rc = login_batch_stmt(jobs, n, &st[ns]);
    if (rc < 0)
        return -1;
    if (rc > 0)
        codes_batch.login = ns++;
    rc = codes_owners_stmt(jobs, n, &st[ns]);
    if (rc < 0)
        return -1;
    ns += rc;
    rc = send_batch_stmt(worker_config(w), jobs, n, &st[ns]);
    if (rc < 0)
        return -1;
    if (rc > 0)
        codes_batch.send = ns++;
    return ns;
}

void
codes_batch_result(struct worker *w, PGresult **res, int n)
{
    (void)w;
    for (int i = 0; i < n; i++) {
        if (i == codes_batch.login)
            login_batch_take(res[i]);
        else if (i == codes_batch.send)
            send_batch_take(res[i]);
        else
            PQclear(res[i]);
    }
}

void
codes_batch_done(struct worker *w)
{
    (void)w;
    login_batch_clear();
    send_batch_clear();
    if (codes_batch.has_lids)
        buf_free(&codes_batch.lids);
    codes_batch.has_lids = 0;
    codes_batch.login = codes_batch.send = -1;
}
