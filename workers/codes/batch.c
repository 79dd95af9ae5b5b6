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
 *      (codes_owner_lock; send.c);
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

/* Which of the batch's results is whose (an index, or -1); the worker
 * runs one batch at a time. */
static struct {
    int login, send;
} codes_batch = {-1, -1};

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
    rc = send_batch_stmt(worker_config(w), jobs, n, &st[ns]);
    if (rc < 0)
        return -1;
    if (rc > 0) {
        ns += rc;
        codes_batch.send = ns - 1; /* the facts, after the owners' locks */
    }
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
            PQclear(res[i]); /* the owners' locks: nothing to read */
    }
}

void
codes_batch_done(struct worker *w)
{
    (void)w;
    login_batch_clear();
    send_batch_clear();
    codes_batch.login = codes_batch.send = -1;
}
