/*
 * topology.c - declares the RabbitMQ topology of the design brief.
 *
 * Called by every worker after connecting, and by the producer and mfactl,
 * so events are never published into a void. Everything is durable. Work
 * queues dead-letter into mfa.dead (rejects, and on quorum queues the
 * delivery limit, so a message that keeps crashing a worker ends there
 * instead of looping). Each retry tier is its own queue with a fixed TTL
 * (messages expire only at a queue's head, so tiers must not be mixed)
 * that dead-letters back to the work queue.
 */
#include "runtime/topology.h"

#include <stdio.h>
#include <string.h>

const char *const topology_work_queues[] = {MFA_Q_CONTACT_SYNC, MFA_Q_LOGIN,
                                            MFA_Q_DISPATCH_EMAIL,
                                            MFA_Q_DISPATCH_SMS, NULL};

void
topology_retry_queue(char *out, size_t n, const char *origin, long delay_s)
{
    snprintf(out, n, "%s.retry.%lds", origin, delay_s);
}

void
topology_rpc_error(amqp_rpc_reply_t r, const char *what, char *err,
                   size_t errlen)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL: snprintf(err, errlen, "%s: ok", what); break;
    case AMQP_RESPONSE_NONE:
        snprintf(err, errlen, "%s: missing RPC reply", what);
        break;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        snprintf(err, errlen, "%s: %s", what,
                 amqp_error_string2(r.library_error));
        break;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *m = r.reply.decoded;

            snprintf(err, errlen, "%s: channel closed by broker: %u %.*s", what,
                     m->reply_code, (int)m->reply_text.len,
                     (const char *)m->reply_text.bytes);
        } else if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_t *m = r.reply.decoded;

            snprintf(err, errlen, "%s: connection closed by broker: %u %.*s",
                     what, m->reply_code, (int)m->reply_text.len,
                     (const char *)m->reply_text.bytes);
        } else {
            snprintf(err, errlen, "%s: broker error, method 0x%08x", what,
                     r.reply.id);
        }
        break;
    }
}

static int
topology_check(amqp_connection_state_t conn, const char *what, char *err,
               size_t errlen)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);

    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 0;
    topology_rpc_error(r, what, err, errlen);
    return -1;
}

static int
topology_exchange(amqp_connection_state_t conn, amqp_channel_t ch,
                  const char *name, const char *type, char *err, size_t errlen)
{
    char what[96];

    amqp_exchange_declare(conn, ch, amqp_cstring_bytes(name),
                          amqp_cstring_bytes(type), 0, 1, 0, 0,
                          amqp_empty_table);
    snprintf(what, sizeof(what), "declare exchange %s", name);
    return topology_check(conn, what, err, errlen);
}

/* Declares a durable queue; dlx_key NULL = no dead-lettering. */
static int
topology_queue(amqp_connection_state_t conn, amqp_channel_t ch,
               const struct topology_opts *o, const char *name,
               const char *dlx_key, long ttl_ms, int work, char *err,
               size_t errlen)
{
    amqp_table_entry_t e[8];
    amqp_table_t args;
    char what[128];
    int n = 0;

    if (o->quorum) {
        e[n].key = amqp_cstring_bytes("x-queue-type");
        e[n].value.kind = AMQP_FIELD_KIND_UTF8;
        e[n++].value.value.bytes = amqp_cstring_bytes("quorum");
        if (work) {
            /* 3.10 has no default limit: without it a poison message
             * that crashes the worker is redelivered forever. */
            e[n].key = amqp_cstring_bytes("x-delivery-limit");
            e[n].value.kind = AMQP_FIELD_KIND_I64;
            e[n++].value.value.i64 = o->delivery_limit;
        }
        if (dlx_key != NULL) {
            e[n].key = amqp_cstring_bytes("x-dead-letter-strategy");
            e[n].value.kind = AMQP_FIELD_KIND_UTF8;
            e[n++].value.value.bytes = amqp_cstring_bytes("at-least-once");
            e[n].key = amqp_cstring_bytes("x-overflow");
            e[n].value.kind = AMQP_FIELD_KIND_UTF8;
            e[n++].value.value.bytes = amqp_cstring_bytes("reject-publish");
        }
    }
    if (dlx_key != NULL) {
        e[n].key = amqp_cstring_bytes("x-dead-letter-exchange");
        e[n].value.kind = AMQP_FIELD_KIND_UTF8;
        e[n++].value.value.bytes = amqp_cstring_bytes("");
        e[n].key = amqp_cstring_bytes("x-dead-letter-routing-key");
        e[n].value.kind = AMQP_FIELD_KIND_UTF8;
        e[n++].value.value.bytes = amqp_cstring_bytes(dlx_key);
    }
    if (ttl_ms > 0) {
        e[n].key = amqp_cstring_bytes("x-message-ttl");
        e[n].value.kind = AMQP_FIELD_KIND_I64;
        e[n++].value.value.i64 = ttl_ms;
    }
    args.num_entries = n;
    args.entries = e;
    amqp_queue_declare(conn, ch, amqp_cstring_bytes(name), 0, 1, 0, 0, args);
    snprintf(what, sizeof(what), "declare queue %s", name);
    return topology_check(conn, what, err, errlen);
}

static int
topology_bind(amqp_connection_state_t conn, amqp_channel_t ch,
              const char *queue, const char *exchange, const char *key,
              char *err, size_t errlen)
{
    char what[160];

    amqp_queue_bind(conn, ch, amqp_cstring_bytes(queue),
                    amqp_cstring_bytes(exchange), amqp_cstring_bytes(key),
                    amqp_empty_table);
    snprintf(what, sizeof(what), "bind %s to %s/%s", queue, exchange, key);
    return topology_check(conn, what, err, errlen);
}

int
topology_declare(amqp_connection_state_t conn, amqp_channel_t ch,
                 const struct topology_opts *o, char *err, size_t errlen)
{
    char rq[128];

    if (topology_exchange(conn, ch, MFA_EX_EVENTS, "topic", err, errlen) ||
        topology_exchange(conn, ch, MFA_EX_DISPATCH, "direct", err, errlen) ||
        topology_exchange(conn, ch, MFA_EX_RESULTS, "topic", err, errlen))
        return -1;
    if (topology_queue(conn, ch, o, MFA_Q_DEAD, NULL, 0, 0, err, errlen))
        return -1;
    for (int i = 0; topology_work_queues[i] != NULL; i++) {
        const char *q = topology_work_queues[i];

        if (topology_queue(conn, ch, o, q, MFA_Q_DEAD, 0, 1, err, errlen))
            return -1;
        for (size_t t = 0; t < o->ndelays; t++) {
            topology_retry_queue(rq, sizeof(rq), q, o->delays[t]);
            if (topology_queue(conn, ch, o, rq, q, o->delays[t] * 1000, 0, err,
                               errlen))
                return -1;
        }
    }
    if (topology_bind(conn, ch, MFA_Q_CONTACT_SYNC, MFA_EX_EVENTS, "contact.*",
                      err, errlen) ||
        topology_bind(conn, ch, MFA_Q_CONTACT_SYNC, MFA_EX_EVENTS, "user.*",
                      err, errlen) ||
        topology_bind(conn, ch, MFA_Q_LOGIN, MFA_EX_EVENTS, "login.*", err,
                      errlen) ||
        topology_bind(conn, ch, MFA_Q_DISPATCH_EMAIL, MFA_EX_DISPATCH, "email",
                      err, errlen) ||
        topology_bind(conn, ch, MFA_Q_DISPATCH_SMS, MFA_EX_DISPATCH, "sms", err,
                      errlen))
        return -1;
    return 0;
}
