/*
 * ctl_mq.c - mfactl's RabbitMQ access (see ctl_mq.h).
 *
 * Callers: cmd_status.c, cmd_metrics.c, cmd_dlq.c. The connection is the
 * runtime's (runtime/mq.c, mq_publish.c: URL, TLS, login, confirms for
 * the replay) with no_topology set: an operator's look must not create
 * queues, or a missing queue would hide itself, nor redeclare them with
 * arguments that differ from the workers'. Passive declares and
 * basic.get run on a second channel because a passive declare of a
 * missing queue closes its channel (404): that channel is reopened, the
 * runtime's is never touched.
 *
 * Security notes: what comes out of a message here (headers, properties)
 * is untrusted text that ends on an operator's terminal: it is reduced to
 * printable ASCII and capped, so no escape sequence reaches the screen.
 * Bodies are never printed by mfactl.
 */
#include "ctl/ctl_mq.h"
#include "runtime/topology.h"
#include "util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *
ctl_qkind_name(enum ctl_qkind k)
{
    switch (k) {
    case CTL_Q_WORK: return "work";
    case CTL_Q_RETRY: return "retry";
    case CTL_Q_DEAD: return "dead";
    }
    return "?";
}

struct ctl_queue *
ctl_queues_list(const struct mfa_config *cfg, size_t *n)
{
    const struct cfg_intlist *d = &cfg->retry.delays_seconds;
    size_t nwork = 0, i = 0;
    struct ctl_queue *q;

    while (topology_work_queues[nwork] != NULL)
        nwork++;
    q = xcalloc(nwork * (1 + d->n) + 1, sizeof(*q));
    for (size_t w = 0; w < nwork; w++) {
        snprintf(q[i].name, sizeof(q[i].name), "%s", topology_work_queues[w]);
        q[i++].kind = CTL_Q_WORK;
        for (size_t t = 0; t < d->n; t++) {
            topology_retry_queue(q[i].name, sizeof(q[i].name),
                                 topology_work_queues[w], d->v[t]);
            q[i++].kind = CTL_Q_RETRY;
        }
    }
    snprintf(q[i].name, sizeof(q[i].name), "%s", MFA_Q_DEAD);
    q[i++].kind = CTL_Q_DEAD;
    *n = i;
    return q;
}

int
ctl_mq_open(struct ctl *c, struct ctl_mq *m)
{
    struct mq_options o;

    memset(m, 0, sizeof(*m));
    memset(&o, 0, sizeof(o));
    o.name = "mfactl";
    o.url = c->cfg.amqp.url;
    o.confirm_timeout_ms = (int)c->cfg.amqp.confirm_timeout_ms;
    o.no_topology = 1;
    /* RPC timeouts instead of a SIGALRM exit: a health check must say
     * "broker unreachable" and exit 1, not die with a signal. */
    o.no_watchdog = 1;
    m->mq = mq_new(&o);
    if (mq_connect(m->mq, m->err, sizeof(m->err)) != 0) {
        mq_free(m->mq);
        m->mq = NULL;
        return -1;
    }
    m->conn = mq_amqp(m->mq);
    return 0;
}

void
ctl_mq_close(struct ctl_mq *m)
{
    if (m->mq == NULL)
        return;
    /* Closing the connection gives back whatever we still hold. */
    mq_free(m->mq);
    m->mq = NULL;
    m->conn = NULL;
}

/* Checks the last RPC; on a channel close, acknowledges it so the channel
 * number can be opened again. 0 ok, 1 channel closed with reply_code
 * *code, -1 connection failed. */
static int
ctl_mq_rpc(struct ctl_mq *m, const char *what, int *code)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(m->conn);

    *code = 0;
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 0;
    topology_rpc_error(r, what, m->err, sizeof(m->err));
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
        r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        amqp_channel_close_t *cc = r.reply.decoded;
        amqp_channel_close_ok_t ok;

        *code = cc->reply_code;
        m->side_open = 0;
        if (amqp_send_method(m->conn, CTL_MQ_SIDE, AMQP_CHANNEL_CLOSE_OK_METHOD,
                             &ok) != 0)
            return -1;
        return 1;
    }
    return -1;
}

static int
ctl_mq_side(struct ctl_mq *m)
{
    int code;

    if (m->conn == NULL) {
        snprintf(m->err, sizeof(m->err), "not connected");
        return -1;
    }
    if (m->side_open)
        return 0;
    amqp_channel_open(m->conn, CTL_MQ_SIDE);
    if (ctl_mq_rpc(m, "channel.open", &code) != 0)
        return -1;
    m->side_open = 1;
    return 0;
}

int
ctl_mq_inspect(struct ctl_mq *m, struct ctl_queue *q, size_t n)
{
    amqp_queue_declare_ok_t *ok;
    char what[160];
    int code, r;

    for (size_t i = 0; i < n; i++) {
        if (ctl_mq_side(m) != 0)
            return -1;
        ok = amqp_queue_declare(m->conn, CTL_MQ_SIDE,
                                amqp_cstring_bytes(q[i].name), 1, 0, 0, 0,
                                amqp_empty_table);
        snprintf(what, sizeof(what), "queue %s", q[i].name);
        r = ctl_mq_rpc(m, what, &code);
        if (r == 0 && ok != NULL) {
            q[i].exists = 1;
            q[i].ready = ok->message_count;
            q[i].consumers = ok->consumer_count;
        } else if (r == 1 && code == AMQP_NOT_FOUND) {
            q[i].exists = 0;
            q[i].ready = q[i].consumers = 0;
        } else {
            return -1;
        }
    }
    m->err[0] = '\0';
    return 0;
}

int
ctl_mq_get(struct ctl_mq *m, const char *queue, amqp_message_t *msg,
           uint64_t *tag)
{
    amqp_rpc_reply_t r;
    char what[160];
    int code;

    memset(msg, 0, sizeof(*msg));
    if (ctl_mq_side(m) != 0)
        return -1;
    snprintf(what, sizeof(what), "basic.get %s", queue);
    r = amqp_basic_get(m->conn, CTL_MQ_SIDE, amqp_cstring_bytes(queue), 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        (void)ctl_mq_rpc(m, what, &code);
        return -1;
    }
    if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD)
        return 0;
    *tag = ((amqp_basic_get_ok_t *)r.reply.decoded)->delivery_tag;
    r = amqp_read_message(m->conn, CTL_MQ_SIDE, msg, 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        topology_rpc_error(r, what, m->err, sizeof(m->err));
        return -1;
    }
    return 1;
}

int
ctl_mq_settle(struct ctl_mq *m, uint64_t tag, int multiple, int ack)
{
    int st;

    if (m->conn == NULL || !m->side_open) {
        snprintf(m->err, sizeof(m->err), "channel gone: nothing to settle");
        return -1;
    }
    st = ack ? amqp_basic_ack(m->conn, CTL_MQ_SIDE, tag, multiple)
             : amqp_basic_nack(m->conn, CTL_MQ_SIDE, tag, multiple, 1);
    if (st != AMQP_STATUS_OK) {
        snprintf(m->err, sizeof(m->err), "%s: %s", ack ? "ack" : "nack",
                 amqp_error_string2(st));
        return -1;
    }
    return 0;
}

long
ctl_mq_purge(struct ctl_mq *m, const char *queue)
{
    amqp_queue_purge_ok_t *ok;
    char what[160];
    int code;

    if (ctl_mq_side(m) != 0)
        return -1;
    ok = amqp_queue_purge(m->conn, CTL_MQ_SIDE, amqp_cstring_bytes(queue));
    snprintf(what, sizeof(what), "queue.purge %s", queue);
    if (ctl_mq_rpc(m, what, &code) != 0 || ok == NULL)
        return -1;
    return (long)ok->message_count;
}

/* Printable ASCII only, capped: untrusted text for a terminal. */
static void
ctl_mq_clean(const void *p, size_t len, char *out, size_t n)
{
    const unsigned char *s = p;
    size_t i;

    if (n == 0)
        return;
    for (i = 0; i < len && i + 1 < n; i++)
        out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? (char)s[i] : '?';
    out[i] = '\0';
}

void
ctl_mq_bytes(amqp_bytes_t b, int present, char *out, size_t n)
{
    if (present)
        ctl_mq_clean(b.bytes, b.len, out, n);
    else if (n > 0)
        out[0] = '\0';
}

const amqp_field_value_t *
ctl_mq_header(const amqp_basic_properties_t *p, const char *key)
{
    size_t klen = strlen(key);

    if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
        return NULL;
    for (int i = 0; i < p->headers.num_entries; i++) {
        const amqp_table_entry_t *e = &p->headers.entries[i];

        if (e->key.len == klen && memcmp(e->key.bytes, key, klen) == 0)
            return &e->value;
    }
    return NULL;
}

int
ctl_mq_header_str(const amqp_basic_properties_t *p, const char *key, char *out,
                  size_t n)
{
    const amqp_field_value_t *v = ctl_mq_header(p, key);

    if (v == NULL ||
        (v->kind != AMQP_FIELD_KIND_UTF8 && v->kind != AMQP_FIELD_KIND_BYTES))
        return -1;
    ctl_mq_clean(v->value.bytes.bytes, v->value.bytes.len, out, n);
    return 0;
}

/* The integer value of a field, whatever its width. 0 or -1. */
static int
ctl_mq_field_int(const amqp_field_value_t *v, long long *out)
{
    switch (v->kind) {
    case AMQP_FIELD_KIND_I8: *out = v->value.i8; return 0;
    case AMQP_FIELD_KIND_U8: *out = v->value.u8; return 0;
    case AMQP_FIELD_KIND_I16: *out = v->value.i16; return 0;
    case AMQP_FIELD_KIND_U16: *out = v->value.u16; return 0;
    case AMQP_FIELD_KIND_I32: *out = v->value.i32; return 0;
    case AMQP_FIELD_KIND_U32: *out = v->value.u32; return 0;
    case AMQP_FIELD_KIND_I64: *out = v->value.i64; return 0;
    case AMQP_FIELD_KIND_U64:
    case AMQP_FIELD_KIND_TIMESTAMP: *out = (long long)v->value.u64; return 0;
    default: return -1;
    }
}

int
ctl_mq_header_int(const amqp_basic_properties_t *p, const char *key,
                  long long *v)
{
    const amqp_field_value_t *f = ctl_mq_header(p, key);

    return f == NULL ? -1 : ctl_mq_field_int(f, v);
}
