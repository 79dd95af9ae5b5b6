/*
 * mq_publish.c - publishing on the process's AMQP channel (see mq.h):
 * properties and runtime headers, publisher confirms, returned messages.
 *
 * Callers: the runtime (batch.c: a batch's replies, follow-ups, retries
 * and dead letters), the producer library, mfactl (dlq replay). mq_publish()
 * sends every message with a sequence number, then waits for the
 * confirms through mq.c's frame reader, which hands basic.ack, basic.nack
 * and basic.return back here and deliveries arriving meanwhile to the
 * caller, so none is lost. A message counts as ok only when acked and not
 * returned (mandatory: no queue bound means not delivered).
 * Security: bodies are the callers' and never logged here.
 */
#include "runtime/mq.h"
#include "runtime/mq_int.h"
#include "runtime/topology.h"
#include "util/clock.h"
#include "util/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <amqp.h>

void
mq_on_confirm(struct mq *mq, uint64_t tag, int multiple, int state)
{
    for (size_t i = 0; i < mq->npend; i++) {
        struct mq_pending *pe = &mq->pend[i];

        if (pe->state == CONFIRM_PENDING &&
            (pe->seq == tag || (multiple && pe->seq <= tag)))
            pe->state = state;
    }
}

int
mq_on_return(struct mq *mq)
{
    amqp_message_t msg;
    amqp_rpc_reply_t r;

    r = amqp_read_message(mq->conn, MQ_CHANNEL, &msg, 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        topology_rpc_error(r, "read returned message", mq->err,
                           sizeof(mq->err));
        mq->up = 0;
        return -1;
    }
    /* The broker sends basic.return before the ack of the same publish;
     * we recognise the message by its message_id. */
    if (msg.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) {
        amqp_bytes_t id = msg.properties.message_id;

        for (size_t i = 0; i < mq->npend; i++) {
            const char *mid = mq->pend[i].message_id;

            if (mid && strlen(mid) == id.len && !memcmp(mid, id.bytes, id.len))
                mq->pend[i].returned = 1;
        }
    }
    amqp_destroy_message(&msg);
    return 0;
}

static void
mq_headers(const struct mq_out *o, amqp_table_entry_t *e, amqp_table_t *t)
{
    int n = 0;

    if (o->error) {
        e[n].key = amqp_cstring_bytes(MFA_HDR_ERROR);
        e[n].value.kind = AMQP_FIELD_KIND_UTF8;
        e[n++].value.value.bytes = amqp_cstring_bytes(o->error);
    }
    if (o->origin) {
        e[n].key = amqp_cstring_bytes(MFA_HDR_ORIGIN);
        e[n].value.kind = AMQP_FIELD_KIND_UTF8;
        e[n++].value.value.bytes = amqp_cstring_bytes(o->origin);
    }
    if (o->attempt > 0) {
        e[n].key = amqp_cstring_bytes(MFA_HDR_ATTEMPT);
        e[n].value.kind = AMQP_FIELD_KIND_I32;
        e[n++].value.value.i32 = o->attempt;
    }
    if (o->dead_at > 0) {
        e[n].key = amqp_cstring_bytes(MFA_HDR_DEAD_AT);
        e[n].value.kind = AMQP_FIELD_KIND_I64;
        e[n++].value.value.i64 = o->dead_at;
    }
    t->num_entries = n;
    t->entries = e;
}

static int
mq_send_one(struct mq *mq, const struct mq_out *o)
{
    amqp_basic_properties_t p;
    amqp_table_entry_t e[4];
    amqp_bytes_t body;
    int st;

    memset(&p, 0, sizeof(p));
    p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
               AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_APP_ID_FLAG;
    p.content_type = amqp_cstring_bytes("application/json");
    p.delivery_mode =
        o->persistent ? AMQP_DELIVERY_PERSISTENT : AMQP_DELIVERY_NONPERSISTENT;
    p.timestamp = (uint64_t)time(NULL);
    p.app_id = amqp_cstring_bytes(mq->o.name);
    if (o->message_id) {
        p._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
        p.message_id = amqp_cstring_bytes(o->message_id);
    }
    if (o->type) {
        p._flags |= AMQP_BASIC_TYPE_FLAG;
        p.type = amqp_cstring_bytes(o->type);
    }
    if (o->correlation_id) {
        p._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
        p.correlation_id = amqp_cstring_bytes(o->correlation_id);
    }
    if (o->reply_to) {
        p._flags |= AMQP_BASIC_REPLY_TO_FLAG;
        p.reply_to = amqp_cstring_bytes(o->reply_to);
    }
    mq_headers(o, e, &p.headers);
    if (p.headers.num_entries > 0)
        p._flags |= AMQP_BASIC_HEADERS_FLAG;
    body.bytes = (void *)o->body;
    body.len = o->body_len;
    mq_watch(mq, MQ_WATCHDOG_S, "amqp publish");
    st = amqp_basic_publish(
        mq->conn, MQ_CHANNEL, amqp_cstring_bytes(o->exchange),
        amqp_cstring_bytes(o->routing_key), o->mandatory, 0, &p, body);
    mq_unwatch(mq);
    if (st != AMQP_STATUS_OK)
        return mq_fail(mq, "amqp publish", st);
    return 0;
}

int
mq_publish(struct mq *mq, const struct mq_out *outs, size_t n, int *ok,
           mq_deliver_fn fn, void *arg)
{
    long long deadline;
    size_t done;
    int rc = -1;

    for (size_t i = 0; i < n; i++)
        ok[i] = 0;
    if (!mq->up)
        return -1;
    if (n == 0)
        return 0;
    mq->pend = xcalloc(n, sizeof(*mq->pend));
    mq->npend = n;
    for (size_t i = 0; i < n; i++) {
        mq->pend[i].seq = mq->next_seq++;
        mq->pend[i].message_id = outs[i].message_id;
        if (mq_send_one(mq, &outs[i]) != 0)
            goto out;
    }
    deadline = clock_mono_ms() + mq->o.confirm_timeout_ms;
    for (;;) {
        long long left = deadline - clock_mono_ms();
        struct timeval tv;

        done = 0;
        for (size_t i = 0; i < n; i++)
            done += mq->pend[i].state != CONFIRM_PENDING;
        if (done == n || left <= 0)
            break;
        tv.tv_sec = left / 1000;
        tv.tv_usec = (left % 1000) * 1000;
        if (mq_read(mq, &tv, fn, arg, 1) != 0)
            goto out;
    }
    rc = 0;
    for (size_t i = 0; i < n; i++) {
        ok[i] = mq->pend[i].state == CONFIRM_ACK && !mq->pend[i].returned;
        if (!ok[i])
            rc = 1;
    }
out:
    /* Kept for mq_outcome(); the borrowed message ids go stale now. */
    for (size_t i = 0; i < n; i++)
        mq->pend[i].message_id = NULL;
    free(mq->last);
    mq->last = mq->pend;
    mq->nlast = n;
    mq->pend = NULL;
    mq->npend = 0;
    return rc;
}

int
mq_outcome(const struct mq *mq, size_t i)
{
    const struct mq_pending *pe;

    if (i >= mq->nlast)
        return MQ_UNCONFIRMED;
    pe = &mq->last[i];
    if (pe->returned)
        return MQ_RETURNED;
    if (pe->state == CONFIRM_ACK)
        return MQ_CONFIRMED;
    return pe->state == CONFIRM_NACK ? MQ_NACKED : MQ_UNCONFIRMED;
}
