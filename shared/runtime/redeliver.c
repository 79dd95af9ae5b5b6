/*
 * redeliver.c - a message that kills its worker every time ends in
 * mfa.dead instead of coming back forever (classic queues).
 *
 * Quorum queues count deliveries themselves (x-delivery-limit). A classic
 * queue only says "redelivered": after a crash, a broker restart or a
 * lost connection. So a redelivered message runs in a batch of its own
 * (a crash is then its own doing), and before it runs, its run is
 * counted in mfa.redeliveries in a transaction of its own, committed
 * first: the count survives the crash it may cause. Past
 * amqp.delivery_limit runs it is dead-lettered without running. Once it
 * has been handled its row goes. Messages delivered for the first time
 * cost nothing here.
 */
#include "runtime/job.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char SQL_COUNT[] =
    "INSERT INTO mfa.redeliveries (consumer, event_id, runs) "
    "VALUES ($1, $2, 1) ON CONFLICT (consumer, event_id) DO UPDATE "
    "SET runs = mfa.redeliveries.runs + 1, last_at = now() RETURNING runs";
static const char SQL_FORGET[] =
    "DELETE FROM mfa.redeliveries WHERE consumer = $1 AND event_id = $2";

int
redeliver_alone(const struct worker *w, const struct job_list *from,
                const struct job *j)
{
    return from == &w->ready && j->parsed && j->msg->redelivered &&
           strcmp(w->cfg.amqp.queue_type, "classic") == 0;
}

int
redeliver_count(struct worker *w, struct job *j)
{
    const char *p[2] = {w->spec->name, j->ev.event_id};
    PGresult *res = db_query(w->db, SQL_COUNT, 2, p);
    long runs;

    if (res == NULL)
        return -1;
    runs = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    if (runs <= w->cfg.amqp.delivery_limit)
        return 0;
    snprintf(j->error, sizeof(j->error),
             "delivered %ld times without being finished: the worker "
             "stopped on it each time (amqp.delivery_limit %ld)",
             runs, w->cfg.amqp.delivery_limit);
    j->verdict = MFA_REJECT;
    return 1;
}

void
redeliver_forget(struct worker *w, const struct job *j)
{
    const char *p[2] = {w->spec->name, j->ev.event_id};

    if (db_exec(w->db, SQL_FORGET, 2, p) != 0)
        log_warn("redeliveries: %s", w->db->errmsg);
}
