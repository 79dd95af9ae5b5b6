/*
 * mq.c - the AMQP connection of a process (see mq.h): connecting,
 * reading frames, deliveries, acks and the consumer's cancel.
 *
 * Callers: the worker loop (worker.c), the producer library, mfactl.
 * One channel carries deliveries, publishes and confirms; this file is the
 * only reader of frames, so nothing read while waiting for a confirm is
 * lost (mq_publish.c waits through mq_read() and is handed the confirms
 * and returns). The library never reconnects by itself: on any failure the
 * caller drops the connection (mq_disconnect) and connects again later;
 * unacked deliveries of the old connection come back from the broker.
 * Security: the URL holds the broker password; it is not logged.
 */
#include "runtime/mq.h"
#include "runtime/mq_int.h"
#include "runtime/topology.h"
#include "util/log.h"
#include "util/watchdog.h"
#include "util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>

/* Deliveries larger than this are cut (see mq_on_deliver). */
#define MQ_MAX_BODY (1024 * 1024)

/* The SIGALRM watchdog belongs to the process: code embedded in someone
 * else's program (the producer library) sets no_watchdog and relies on
 * the RPC and confirm timeouts instead. */
void
mq_watch(const struct mq *mq, unsigned seconds, const char *what)
{
    if (!mq->o.no_watchdog)
        watchdog_arm(seconds, what);
}

void
mq_unwatch(const struct mq *mq)
{
    if (!mq->o.no_watchdog)
        watchdog_disarm();
}

struct mq *
mq_new(const struct mq_options *o)
{
    struct mq *mq = xcalloc(1, sizeof(*mq));

    mq->o = *o;
    return mq;
}

void
mq_free(struct mq *mq)
{
    if (mq == NULL)
        return;
    mq_disconnect(mq);
    free(mq->last);
    free(mq);
}

const char *
mq_last_error(const struct mq *mq)
{
    return mq->err;
}

struct amqp_connection_state_t_ *
mq_amqp(struct mq *mq)
{
    return mq->up ? mq->conn : NULL;
}

int
mq_connected(const struct mq *mq)
{
    return mq->up;
}

int
mq_active(const struct mq *mq)
{
    return mq->conn != NULL;
}

unsigned
mq_generation(const struct mq *mq)
{
    return mq->gen;
}

int
mq_fd(const struct mq *mq)
{
    return mq->up ? amqp_get_sockfd(mq->conn) : -1;
}

int
mq_buffered(const struct mq *mq)
{
    return mq->up &&
           (amqp_frames_enqueued(mq->conn) || amqp_data_in_buffer(mq->conn));
}

void
mq_disconnect(struct mq *mq)
{
    if (mq->conn == NULL)
        return;
    if (mq->up) {
        /* Polite close with a short watchdog: a dead broker must not keep
         * us here. Errors are irrelevant, the connection is going. */
        mq_watch(mq, 10, "amqp close");
        amqp_channel_close(mq->conn, MQ_CHANNEL, AMQP_REPLY_SUCCESS);
        amqp_connection_close(mq->conn, AMQP_REPLY_SUCCESS);
        mq_unwatch(mq);
    }
    amqp_destroy_connection(mq->conn);
    mq->conn = NULL;
    mq->up = 0;
    free(mq->ctag);
    mq->ctag = NULL;
}

static char *mq_dup_bytes(amqp_bytes_t b);

static int
mq_rpc_ok(struct mq *mq, const char *what)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(mq->conn);

    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 0;
    topology_rpc_error(r, what, mq->err, sizeof(mq->err));
    return -1;
}

static amqp_table_entry_t
mq_bool_entry(const char *key)
{
    amqp_table_entry_t e;

    e.key = amqp_cstring_bytes(key);
    e.value.kind = AMQP_FIELD_KIND_BOOLEAN;
    e.value.value.boolean = 1;
    return e;
}

static int
mq_login(struct mq *mq, const struct amqp_connection_info *ci)
{
    amqp_table_entry_t caps[3], props[2];
    amqp_table_t capt, propt;
    amqp_rpc_reply_t r;

    /* consumer_cancel_notify: a deleted queue cancels our consumer with a
     * basic.cancel we can see, instead of a silent stop. */
    caps[0] = mq_bool_entry("consumer_cancel_notify");
    caps[1] = mq_bool_entry("publisher_confirms");
    caps[2] = mq_bool_entry("basic.nack");
    capt.num_entries = 3;
    capt.entries = caps;
    props[0].key = amqp_cstring_bytes("capabilities");
    props[0].value.kind = AMQP_FIELD_KIND_TABLE;
    props[0].value.value.table = capt;
    props[1].key = amqp_cstring_bytes("connection_name");
    props[1].value.kind = AMQP_FIELD_KIND_UTF8;
    props[1].value.value.bytes = amqp_cstring_bytes(mq->o.name);
    propt.num_entries = 2;
    propt.entries = props;
    r = amqp_login_with_properties(
        mq->conn, ci->vhost, 0, 131072, mq->o.heartbeat, &propt,
        AMQP_SASL_METHOD_PLAIN, ci->user, ci->password);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        topology_rpc_error(r, "amqp login", mq->err, sizeof(mq->err));
        return -1;
    }
    return 0;
}

static int
mq_open_socket(struct mq *mq, const struct amqp_connection_info *ci)
{
    amqp_socket_t *sock;
    struct timeval tv = {10, 0};
    int st;

    if (ci->ssl) {
        const char *ca = mq->o.ca_file && mq->o.ca_file[0]
                             ? mq->o.ca_file
                             : "/etc/ssl/certs/ca-certificates.crt";

        sock = amqp_ssl_socket_new(mq->conn);
        if (sock == NULL)
            goto nosock;
        amqp_ssl_socket_set_verify_peer(sock, 1);
        amqp_ssl_socket_set_verify_hostname(sock, 1);
        if (amqp_ssl_socket_set_cacert(sock, ca) != AMQP_STATUS_OK) {
            snprintf(mq->err, sizeof(mq->err), "amqps: cannot load CA %s", ca);
            return -1;
        }
    } else {
        sock = amqp_tcp_socket_new(mq->conn);
        if (sock == NULL)
            goto nosock;
    }
    st = amqp_socket_open_noblock(sock, ci->host, ci->port, &tv);
    if (st != AMQP_STATUS_OK) {
        snprintf(mq->err, sizeof(mq->err), "connect to %s:%d: %s", ci->host,
                 ci->port, amqp_error_string2(st));
        return -1;
    }
    return 0;
nosock:
    snprintf(mq->err, sizeof(mq->err), "cannot create AMQP socket");
    return -1;
}

int
mq_connect(struct mq *mq, char *err, size_t errlen)
{
    struct amqp_connection_info ci;
    struct topology_opts to;
    char *url = xstrdup(mq->o.url);
    int rc = -1;

    mq_disconnect(mq);
    mq->err[0] = '\0';
    amqp_default_connection_info(&ci);
    if (amqp_parse_url(url, &ci) != AMQP_STATUS_OK) {
        snprintf(mq->err, sizeof(mq->err),
                 "amqp.url: not a valid amqp:// or amqps:// URL");
        goto out;
    }
    mq->conn = amqp_new_connection();
    if (mq->o.no_watchdog) {
        int ms =
            mq->o.confirm_timeout_ms > 0 ? mq->o.confirm_timeout_ms : 10000;
        struct timeval rpc = {ms / 1000, (ms % 1000) * 1000};

        amqp_set_handshake_timeout(mq->conn, &rpc);
        amqp_set_rpc_timeout(mq->conn, &rpc);
    }
    mq_watch(mq, MQ_WATCHDOG_S, "amqp connect");
    if (mq_open_socket(mq, &ci) != 0 || mq_login(mq, &ci) != 0)
        goto out;
    amqp_channel_open(mq->conn, MQ_CHANNEL);
    if (mq_rpc_ok(mq, "channel.open"))
        goto out;
    amqp_confirm_select(mq->conn, MQ_CHANNEL);
    if (mq_rpc_ok(mq, "confirm.select"))
        goto out;
    mq->next_seq = 1;
    to.quorum = mq->o.quorum;
    to.delivery_limit = mq->o.delivery_limit;
    to.delays = mq->o.delays;
    to.ndelays = mq->o.ndelays;
    if (!mq->o.no_topology && topology_declare(mq->conn, MQ_CHANNEL, &to,
                                               mq->err, sizeof(mq->err)) != 0)
        goto out;
    if (mq->o.consume != NULL) {
        amqp_basic_qos(mq->conn, MQ_CHANNEL, 0, (uint16_t)mq->o.prefetch, 0);
        if (mq_rpc_ok(mq, "basic.qos"))
            goto out;
        amqp_basic_consume_ok_t *cok;

        cok = amqp_basic_consume(
            mq->conn, MQ_CHANNEL, amqp_cstring_bytes(mq->o.consume),
            amqp_empty_bytes, 0, mq->o.consume_no_ack ? 1 : 0, 0,
            amqp_empty_table);
        if (mq_rpc_ok(mq, "basic.consume") || cok == NULL)
            goto out;
        free(mq->ctag);
        mq->ctag = mq_dup_bytes(cok->consumer_tag);
    }
    mq->up = 1;
    mq->gen++;
    rc = 0;
out:
    mq_unwatch(mq);
    if (rc != 0) {
        if (mq->conn != NULL)
            amqp_destroy_connection(mq->conn);
        mq->conn = NULL;
        snprintf(err, errlen, "%s", mq->err);
    }
    free(url);
    return rc;
}

static char *
mq_dup_bytes(amqp_bytes_t b)
{
    char *s = xmalloc(b.len + 1);

    if (b.len)
        memcpy(s, b.bytes, b.len);
    s[b.len] = '\0';
    return s;
}

static char *
mq_prop(const amqp_basic_properties_t *p, amqp_flags_t flag, amqp_bytes_t b)
{
    return (p->_flags & flag) ? mq_dup_bytes(b) : NULL;
}

static int
mq_header_int(const amqp_basic_properties_t *p, const char *key)
{
    if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
        return 0;
    for (int i = 0; i < p->headers.num_entries; i++) {
        const amqp_table_entry_t *e = &p->headers.entries[i];

        if (e->key.len != strlen(key) || memcmp(e->key.bytes, key, e->key.len))
            continue;
        switch (e->value.kind) {
        case AMQP_FIELD_KIND_I8: return e->value.value.i8;
        case AMQP_FIELD_KIND_U8: return e->value.value.u8;
        case AMQP_FIELD_KIND_I16: return e->value.value.i16;
        case AMQP_FIELD_KIND_U16: return e->value.value.u16;
        case AMQP_FIELD_KIND_I32: return e->value.value.i32;
        case AMQP_FIELD_KIND_U32: return (int)e->value.value.u32;
        case AMQP_FIELD_KIND_I64: return (int)e->value.value.i64;
        case AMQP_FIELD_KIND_U64: return (int)e->value.value.u64;
        default: return 0;
        }
    }
    return 0;
}

void
mq_msg_free(struct mq_msg *m)
{
    if (m == NULL)
        return;
    free(m->exchange);
    free(m->routing_key);
    free(m->body);
    free(m->message_id);
    free(m->type);
    free(m->reply_to);
    free(m->correlation_id);
    free(m);
}

int
mq_fail(struct mq *mq, const char *what, int status)
{
    snprintf(mq->err, sizeof(mq->err), "%s: %s", what,
             amqp_error_string2(status));
    mq->up = 0;
    return -1;
}

static int
mq_on_deliver(struct mq *mq, const amqp_basic_deliver_t *d, mq_deliver_fn fn,
              void *arg)
{
    struct mq_msg *m = xcalloc(1, sizeof(*m));
    amqp_message_t msg;
    amqp_rpc_reply_t r;
    const amqp_basic_properties_t *p;

    m->tag = d->delivery_tag;
    m->gen = mq->gen;
    m->redelivered = d->redelivered;
    m->exchange = mq_dup_bytes(d->exchange);
    m->routing_key = mq_dup_bytes(d->routing_key);
    r = amqp_read_message(mq->conn, MQ_CHANNEL, &msg, 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        topology_rpc_error(r, "read message", mq->err, sizeof(mq->err));
        mq_msg_free(m);
        mq->up = 0;
        return -1;
    }
    p = &msg.properties;
    /* The body cap protects our memory; the envelope parser applies the
     * real limit and dead-letters what is too large. */
    m->body_len = msg.body.len > MQ_MAX_BODY ? MQ_MAX_BODY : msg.body.len;
    m->body = xmalloc(m->body_len + 1);
    memcpy(m->body, msg.body.bytes, m->body_len);
    m->body[m->body_len] = '\0';
    m->message_id = mq_prop(p, AMQP_BASIC_MESSAGE_ID_FLAG, p->message_id);
    m->type = mq_prop(p, AMQP_BASIC_TYPE_FLAG, p->type);
    m->reply_to = mq_prop(p, AMQP_BASIC_REPLY_TO_FLAG, p->reply_to);
    m->correlation_id =
        mq_prop(p, AMQP_BASIC_CORRELATION_ID_FLAG, p->correlation_id);
    m->attempt = mq_header_int(p, MFA_HDR_ATTEMPT);
    amqp_destroy_message(&msg);
    fn(m, arg);
    return 0;
}

/* Handles one frame. 0, or -1 when the connection/channel is gone. */
static int
mq_frame(struct mq *mq, const amqp_frame_t *f, mq_deliver_fn fn, void *arg)
{
    if (f->frame_type != AMQP_FRAME_METHOD)
        return 0;
    switch (f->payload.method.id) {
    case AMQP_BASIC_DELIVER_METHOD:
        return mq_on_deliver(mq, f->payload.method.decoded, fn, arg);
    case AMQP_BASIC_ACK_METHOD: {
        amqp_basic_ack_t *a = f->payload.method.decoded;

        mq_on_confirm(mq, a->delivery_tag, a->multiple, CONFIRM_ACK);
        return 0;
    }
    case AMQP_BASIC_NACK_METHOD: {
        amqp_basic_nack_t *a = f->payload.method.decoded;

        mq_on_confirm(mq, a->delivery_tag, a->multiple, CONFIRM_NACK);
        return 0;
    }
    case AMQP_BASIC_RETURN_METHOD: return mq_on_return(mq);
    case AMQP_BASIC_CANCEL_METHOD:
        snprintf(mq->err, sizeof(mq->err),
                 "broker cancelled our consumer (queue deleted?)");
        mq->up = 0;
        return -1;
    case AMQP_CHANNEL_CLOSE_METHOD: {
        amqp_channel_close_t *c = f->payload.method.decoded;
        amqp_channel_close_ok_t ok;

        snprintf(mq->err, sizeof(mq->err), "channel closed by broker: %u %.*s",
                 c->reply_code, (int)c->reply_text.len,
                 (const char *)c->reply_text.bytes);
        amqp_send_method(mq->conn, MQ_CHANNEL, AMQP_CHANNEL_CLOSE_OK_METHOD,
                         &ok);
        mq->up = 0;
        return -1;
    }
    case AMQP_CONNECTION_CLOSE_METHOD: {
        amqp_connection_close_t *c = f->payload.method.decoded;
        amqp_connection_close_ok_t ok;

        snprintf(mq->err, sizeof(mq->err),
                 "connection closed by broker: %u %.*s", c->reply_code,
                 (int)c->reply_text.len, (const char *)c->reply_text.bytes);
        amqp_send_method(mq->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
        mq->up = 0;
        return -1;
    }
    default: return 0;
    }
}

/* Reads frames until none is available within tv (NULL = forever). */
int
mq_read(struct mq *mq, struct timeval *tv, mq_deliver_fn fn, void *arg,
        int just_one)
{
    amqp_frame_t f;
    int st;

    for (;;) {
        st = amqp_simple_wait_frame_noblock(mq->conn, &f, tv);
        if (st == AMQP_STATUS_TIMEOUT)
            return 0;
        if (st != AMQP_STATUS_OK)
            return mq_fail(mq, "amqp read", st);
        if (mq_frame(mq, &f, fn, arg) != 0)
            return -1;
        amqp_maybe_release_buffers(mq->conn);
        if (just_one)
            return 0;
    }
}

int
mq_pump(struct mq *mq, mq_deliver_fn fn, void *arg)
{
    struct timeval zero = {0, 0};

    if (!mq->up)
        return -1;
    return mq_read(mq, &zero, fn, arg, 0);
}

int
mq_ack(struct mq *mq, uint64_t tag, int multiple)
{
    int st;

    if (!mq->up)
        return -1;
    mq_watch(mq, MQ_WATCHDOG_S, "amqp ack");
    st = amqp_basic_ack(mq->conn, MQ_CHANNEL, tag, multiple);
    mq_unwatch(mq);
    if (st != AMQP_STATUS_OK)
        return mq_fail(mq, "amqp ack", st);
    return 0;
}

int
mq_cancel(struct mq *mq)
{
    if (!mq->up || mq->ctag == NULL)
        return 0;
    /* Deliveries that race the cancel-ok are queued by the library and
     * come out of the next mq_pump(); the worker finishes or drops them
     * (unacked, so the broker redelivers them to another consumer). */
    mq_watch(mq, MQ_WATCHDOG_S, "amqp basic.cancel");
    amqp_basic_cancel(mq->conn, MQ_CHANNEL, amqp_cstring_bytes(mq->ctag));
    mq_unwatch(mq);
    free(mq->ctag);
    mq->ctag = NULL;
    return mq_rpc_ok(mq, "basic.cancel") ? (mq->up = 0, -1) : 0;
}
