/*
 * batch.c - one transaction over a batch of jobs, then publish, then ack.
 *
 * Called by the worker loop. batch_tx.c runs the batch's jobs in one
 * transaction (inbox claims, handlers or async completions, the outbox
 * stored in each inbox row); then one confirmed publish of every reply,
 * follow-up, retry and dead letter, and the acks. Nothing is acked before
 * COMMIT and the confirms; a crash in between redelivers, and the inbox
 * turns the redelivery into a re-send of the stored outputs.
 */
#include "runtime/job.h"
#include "runtime/topology.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * A typed code must not rest in mfa.dead, where operators list and replay
 * messages: a dead code_submitted keeps its shape with the code replaced.
 * Returns 1 with the new body as the last scratch string.
 */
static int
batch_redact(struct job *j, char **scratch, size_t *nscratch)
{
    if (!j->parsed || j->ev.type != EV_LOGIN_CODE_SUBMITTED)
        return 0;
    json_object_object_add(j->ev.data, "code",
                           json_object_new_string("[redacted]"));
    scratch[(*nscratch)++] = xstrdup(
        json_object_to_json_string_ext(j->ev.root, JSON_C_TO_STRING_PLAIN));
    return 1;
}

/* Fills the publish list for one finished job. */
static size_t
batch_outputs(struct worker *w, struct job *j, struct mq_out *o, char **scratch,
              size_t *nscratch)
{
    size_t n = 0;
    char rq[160];

    /* o has room for j->nouts + 1 entries, zeroed by the caller. */
    if (j->verdict == MFA_OK) {
        /* The follow-ups are counted by the caller (j->nouts). */
        for (size_t i = 0; i < j->nouts; i++) {
            o[n].exchange = j->outs[i].exchange;
            o[n].routing_key = j->outs[i].routing_key;
            o[n].body = j->outs[i].body;
            o[n].body_len = strlen(j->outs[i].body);
            o[n].message_id = j->outs[i].event_id;
            o[n].type = j->outs[i].type;
            o[n].persistent = 1;
            /* Results may have no subscriber: not an error. */
            o[n].mandatory = strcmp(j->outs[i].exchange, MFA_EX_RESULTS) != 0;
            o[n].attempt = -1;
            n++;
        }
    } else if (j->verdict == MFA_RETRY && !job_last_attempt(j)) {
        long d = w->cfg.retry.delays_seconds.v[j->msg->attempt];

        topology_retry_queue(rq, sizeof(rq), w->spec->queue, d);
        scratch[(*nscratch)++] = xstrdup(rq);
        o[n].exchange = "";
        o[n].routing_key = scratch[*nscratch - 1];
        o[n].attempt = j->msg->attempt + 1;
        o[n].error = j->error;
    } else if (j->verdict == MFA_RETRY || j->verdict == MFA_REJECT) {
        o[n].exchange = "";
        o[n].routing_key = MFA_Q_DEAD;
        o[n].attempt = j->msg->attempt;
        o[n].error = j->error[0] ? j->error : "rejected";
        o[n].origin = w->spec->queue;
        o[n].dead_at = (long long)time(NULL);
    }
    if (j->verdict == MFA_RETRY || j->verdict == MFA_REJECT) {
        o[n].body = j->msg->body;
        o[n].body_len = j->msg->body_len;
        if (strcmp(o[n].routing_key, MFA_Q_DEAD) == 0 &&
            batch_redact(j, scratch, nscratch)) {
            o[n].body = scratch[*nscratch - 1];
            o[n].body_len = strlen(o[n].body);
        }
        o[n].message_id = j->msg->message_id;
        o[n].type = j->msg->type;
        o[n].reply_to = j->verdict == MFA_RETRY ? j->msg->reply_to : NULL;
        o[n].persistent = 1;
        o[n].mandatory = 1;
        n++;
    }
    return n;
}

/* The reply, if one was asked for (also for a dead-lettered event). */
static int
batch_reply(struct job *j, struct mq_out *o)
{
    const char *body;

    if (j->msg->reply_to == NULL || j->msg->reply_to[0] == '\0')
        return 0;
    if (j->verdict == MFA_REJECT && j->reply == NULL) {
        j->reply = json_object_new_object();
        json_object_object_add(j->reply, "status",
                               json_object_new_string("invalid"));
        json_object_object_add(j->reply, "error",
                               json_object_new_string(j->error));
    }
    if (j->reply == NULL || (j->verdict != MFA_OK && j->verdict != MFA_REJECT))
        return 0;
    body = json_object_to_json_string_ext(j->reply, JSON_C_TO_STRING_PLAIN);
    memset(o, 0, sizeof(*o));
    o->exchange = "";
    o->routing_key = j->msg->reply_to;
    o->body = body;
    o->body_len = strlen(body);
    o->correlation_id = j->parsed            ? j->ev.event_id
                        : j->msg->message_id ? j->msg->message_id
                                             : j->msg->correlation_id;
    o->type = "reply";
    o->attempt = -1;
    return 1;
}

/* The lowest delivery tag of this connection still unfinished outside the
 * jobs being acked now (UINT64_MAX: none). */
static uint64_t
batch_lowest_open(const struct worker *w, struct job **jobs, size_t n,
                  const int *acking)
{
    const struct job_list *lists[] = {&w->ready, &w->held, &w->inflight,
                                      &w->done};
    unsigned gen = mq_generation(w->mq);
    uint64_t low = UINT64_MAX;

    for (size_t l = 0; l < sizeof(lists) / sizeof(lists[0]); l++)
        for (const struct job *k = lists[l]->head; k != NULL; k = k->next)
            if (k->msg->gen == gen && k->msg->tag < low)
                low = k->msg->tag;
    for (size_t i = 0; i < n; i++)
        if (!acking[i] && jobs[i]->msg->gen == gen && jobs[i]->msg->tag < low)
            low = jobs[i]->msg->tag;
    return low;
}

/* Acks the jobs marked in acking: one multiple ack when every delivery up
 * to the highest of them is among them (the usual case), else one each. */
static int
batch_ack(struct worker *w, struct job **jobs, size_t n, const int *acking)
{
    uint64_t high = 0;
    size_t count = 0;

    for (size_t i = 0; i < n; i++) {
        if (acking[i] && jobs[i]->msg->tag > high)
            high = jobs[i]->msg->tag;
        count += acking[i] != 0;
    }
    if (count == 0)
        return 0;
    if (count > 1 && high < batch_lowest_open(w, jobs, n, acking))
        return mq_ack(w->mq, high, 1);
    for (size_t i = 0; i < n; i++)
        if (acking[i] && mq_ack(w->mq, jobs[i]->msg->tag, 0) != 0)
            return -1;
    return 0;
}

/* Publishes everything the batch produced and acks what was confirmed. */
static int
batch_finish(struct worker *w, struct job **jobs, size_t n)
{
    size_t cap = 0, no = 0, nscratch = 0;
    struct mq_out *outs;
    size_t *first;
    char **scratch;
    int *ok, *acking, rc = 0;

    for (size_t i = 0; i < n; i++)
        cap += jobs[i]->nouts + 2;
    outs = xcalloc(cap, sizeof(*outs));
    ok = xcalloc(cap, sizeof(*ok));
    first = xcalloc(n + 1, sizeof(*first));
    acking = xcalloc(n + 1, sizeof(*acking));
    scratch = xcalloc(n + 1, sizeof(*scratch));
    for (size_t i = 0; i < n; i++) {
        first[i] = no;
        if (jobs[i]->verdict == MFA_PENDING)
            continue;
        no += batch_reply(jobs[i], &outs[no]);
        no += batch_outputs(w, jobs[i], &outs[no], scratch, &nscratch);
    }
    first[n] = no;
    if (mq_connected(w->mq) && no > 0 &&
        mq_publish(w->mq, outs, no, ok, worker_on_delivery, w) < 0)
        rc = -1;
    for (size_t i = 0; i < n; i++) {
        struct job *j = jobs[i];
        int all = 1;

        if (j->verdict == MFA_PENDING)
            continue;
        for (size_t k = first[i]; k < first[i + 1]; k++)
            all &= ok[k];
        if (j->verdict != MFA_OK)
            log_kv(j->verdict == MFA_RETRY && !job_last_attempt(j) ? LOGL_WARN
                                                                   : LOGL_ERROR,
                   j->verdict == MFA_RETRY && !job_last_attempt(j)
                       ? "retry scheduled"
                       : "dead-lettered",
                   "event_id", j->parsed ? j->ev.event_id : j->msg->message_id,
                   "reason", j->error, NULL);
        /* Ack only what the broker has safely taken over, and only on the
         * connection that delivered it. Otherwise the broker redelivers. */
        acking[i] = all && j->msg->gen == mq_generation(w->mq);
        if (!all)
            rc = -1; /* unconfirmed: reconnect so the broker redelivers */
    }
    if (rc == 0 && batch_ack(w, jobs, n, acking) != 0)
        rc = -1;
    for (size_t i = 0; i < n; i++) {
        if (jobs[i]->verdict == MFA_PENDING)
            continue;
        job_free(jobs[i]);
        jobs[i] = NULL;
    }
    for (size_t i = 0; i < nscratch; i++)
        free(scratch[i]);
    free(scratch);
    free(acking);
    free(first);
    free(ok);
    free(outs);
    return rc;
}

/* 1 if j's batch key (worker_spec.batch_key) is taken in jobs[0..n). */
static int
batch_key_taken(const struct worker *w, struct job **jobs, size_t n,
                const struct job *j)
{
    const char *key, *other;

    if (w->spec->batch_key == NULL || !j->parsed ||
        (key = w->spec->batch_key(&j->ev)) == NULL)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (jobs[i]->parsed &&
            (other = w->spec->batch_key(&jobs[i]->ev)) != NULL &&
            strcmp(key, other) == 0)
            return 1;
    return 0;
}

static int
batch_has_event(struct job **jobs, size_t n, const char *event_id)
{
    for (size_t i = 0; i < n; i++)
        if (jobs[i]->parsed && strcmp(jobs[i]->ev.event_id, event_id) == 0)
            return 1;
    return 0;
}

int
batch_run(struct worker *w, struct job_list *from, int max)
{
    struct job **jobs = xcalloc((size_t)max, sizeof(*jobs));
    size_t n = 0;
    int rc = 0, alone, counted;

    while (n < (size_t)max && from->head != NULL) {
        struct job *j;

        if (batch_key_taken(w, jobs, n, from->head) ||
            (n > 0 && redeliver_alone(w, from, from->head)))
            break; /* it starts the next batch */
        j = job_list_pop(from);

        /* A copy of an event whose first is still with the provider, or
         * earlier in this batch, waits (worker.c releases it): run now,
         * it would not see the first's inbox row and send again. */
        if (from == &w->ready && j->parsed &&
            (batch_has_event(jobs, n, j->ev.event_id) ||
             job_list_has_event(&w->inflight, j->ev.event_id) ||
             job_list_has_event(&w->done, j->ev.event_id))) {
            job_list_push(&w->held, j);
            continue;
        }
        jobs[n++] = j;
        if (redeliver_alone(w, from, j))
            break;
    }
    /* A redelivered message of a classic queue runs alone, counted; past
     * the limit it is dead-lettered without running (redeliver.c). */
    alone = n == 1 && redeliver_alone(w, from, jobs[0]);
    counted = alone ? redeliver_count(w, jobs[0]) : 0;
    if (counted < 0 && w->db->last == DB_ERR_CONN)
        goto dblost;
    if (counted < 0) { /* the count is a guard: never a reason to stop */
        log_warn("redeliveries: %s", w->db->errmsg);
        counted = 0;
    }
    /* Invalid events never reach the database: dead-letter them at once
     * (batch_tx skips them). */
    if (counted == 0 && batch_tx(w, jobs, n) != 0)
        goto dblost;
    if (alone && !jobs[0]->again)
        redeliver_forget(w, jobs[0]);
    /* Deadlocked jobs run again in the next batch. */
    for (size_t i = 0; i < n; i++) {
        if (jobs[i]->again) {
            job_list_push(from, jobs[i]);
            jobs[i] = NULL;
        }
    }
    {
        size_t k = 0;

        for (size_t i = 0; i < n; i++)
            if (jobs[i])
                jobs[k++] = jobs[i];
        n = k;
    }
    rc = batch_finish(w, jobs, n);
    free(jobs);
    return rc;
dblost:
    /* Connection gone or COMMIT failed: nothing of this batch happened.
     * Put the jobs back, in order, to run again once reconnected. */
    log_set_event(NULL);
    log_warn("database unavailable (%s); holding %zu message(s)", w->db->errmsg,
             n);
    if (w->db->last != DB_ERR_CONN)
        db_rollback(w->db);
    {
        struct job_list back = {0};

        for (size_t i = 0; i < n; i++) {
            /* A handler that started provider I/O owns its job now. */
            if (jobs[i]->verdict == MFA_PENDING &&
                jobs[i]->fn == w->spec->handle)
                continue;
            jobs[i]->verdict = MFA_OK;
            jobs[i]->duplicate = 0;
            job_reset_outputs(jobs[i]);
            job_list_push(&back, jobs[i]);
        }
        while (from->head)
            job_list_push(&back, job_list_pop(from));
        *from = back;
    }
    free(jobs);
    db_disconnect(w->db);
    return -2;
}
