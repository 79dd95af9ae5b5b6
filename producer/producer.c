/*
 * producer.c - the connection of libmfa-producer: publish with confirms,
 * wait for replies over direct reply-to, publish in bulk (mfa_producer.h).
 *
 * Callers: the portal and the CRM through the public header, mfa-publish,
 * example_login. The AMQP work is the workers' own runtime/mq.c and
 * mq_publish.c: they own frame reading (confirms, returns, broker closes
 * and deliveries arrive interleaved on one channel), declare the topology
 * and set message properties, so an event from here looks exactly like
 * one from a worker.
 * What differs for code inside someone else's process is asked for with
 * mq options: no SIGALRM watchdog (RPC timeouts instead), no_ack
 * consumption of amq.rabbitmq.reply-to (direct reply-to requires that
 * consumer on the publishing channel before the first publish, so it is
 * started when connecting), and optionally no declarations.
 *
 * Retry policy: a connection that broke while idle is noticed by a
 * non-blocking read before publishing and re-made. A publish that loses
 * its connection is sent once more on a fresh one, same body and so the
 * same event_id: the workers' inbox makes the repeat harmless. A confirm
 * that does not come in time is reported, not retried (the event may be
 * queued; the caller decides).
 *
 * Security notes: the URL carries the broker password; it reaches
 * messages only through mfa_producer_url_redact(). Event bodies (codes
 * in login.code_submitted) are never copied into error messages.
 */
#include "producer/mfa_producer.h"

#include "mfa/envelope.h"
#include "runtime/mq.h"
#include "runtime/topology.h"
#include "util/clock.h"
#include "util/xalloc.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#define PROD_REPLY_TO "amq.rabbitmq.reply-to"
#define PROD_DEFAULT_TIMEOUT_MS 5000
#define PROD_DEFAULT_WINDOW 1000
#define PROD_MAX_WINDOW 65535
#define PROD_POLL_SLICE_MS 100

struct mfa_producer {
    struct mq *mq;
    char *url, *name, *ca_file; /* owned: mq borrows them */
    int timeout_ms;
    int window;
    char awaiting[MFA_PRODUCER_ID_LEN]; /* event_id of the reply wanted */
    char *reply;                        /* its body, once it came */
};

static int __attribute__((format(printf, 4, 5)))
prod_fail(char *err, size_t errlen, int status, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return status;
}

static char *
prod_dup(const char *s)
{
    return s != NULL ? xstrdup(s) : NULL;
}

struct mfa_producer *
mfa_producer_new(const struct mfa_producer_options *o, char *err, size_t errlen)
{
    struct mfa_producer *p = NULL;
    struct mq_options mo;
    int quorum;

    if (sodium_init() < 0) {
        prod_fail(err, errlen, MFA_PRODUCER_INVALID,
                  "libsodium could not be initialised");
        goto out;
    }
    if (o == NULL || o->url == NULL || o->url[0] == '\0') {
        prod_fail(err, errlen, MFA_PRODUCER_INVALID,
                  "url: missing (amqp://user:password@host:5672/vhost)");
        goto out;
    }
    if (strncmp(o->url, "amqp://", 7) != 0 &&
        strncmp(o->url, "amqps://", 8) != 0) {
        prod_fail(err, errlen, MFA_PRODUCER_INVALID,
                  "url: must start with amqp:// or amqps://");
        goto out;
    }
    if (o->queue_type != NULL && strcmp(o->queue_type, "classic") != 0 &&
        strcmp(o->queue_type, "quorum") != 0) {
        prod_fail(err, errlen, MFA_PRODUCER_INVALID,
                  "queue_type: must be classic or quorum");
        goto out;
    }
    if (o->confirm_timeout_ms < 0 || o->heartbeat_s < 0 || o->window < 0 ||
        o->delivery_limit < 0) {
        prod_fail(err, errlen, MFA_PRODUCER_INVALID,
                  "options: timeouts, heartbeat, window and delivery_limit "
                  "cannot be negative");
        goto out;
    }
    quorum = o->queue_type != NULL && strcmp(o->queue_type, "quorum") == 0;
    p = xcalloc(1, sizeof(*p));
    p->url = xstrdup(o->url);
    p->name = xstrdup(o->name ? o->name : "mfa-producer");
    p->ca_file = prod_dup(o->ca_file);
    p->timeout_ms =
        o->confirm_timeout_ms ? o->confirm_timeout_ms : PROD_DEFAULT_TIMEOUT_MS;
    p->window = o->window ? o->window : PROD_DEFAULT_WINDOW;
    if (p->window > PROD_MAX_WINDOW)
        p->window = PROD_MAX_WINDOW;

    memset(&mo, 0, sizeof(mo));
    mo.name = p->name;
    mo.url = p->url;
    mo.ca_file = p->ca_file;
    mo.heartbeat = o->heartbeat_s;
    mo.prefetch = 0; /* no_ack consumer: prefetch does not apply */
    mo.confirm_timeout_ms = p->timeout_ms;
    mo.consume = PROD_REPLY_TO;
    mo.consume_no_ack = 1;
    mo.no_watchdog = 1;
    mo.no_topology = o->no_declare != 0;
    mo.quorum = quorum;
    mo.delivery_limit = o->delivery_limit ? o->delivery_limit : 20;
    /* Retry tiers are the workers' business: declared by them only. */
    mo.delays = NULL;
    mo.ndelays = 0;
    p->mq = mq_new(&mo);
out:
    return p;
}

void
mfa_producer_free(struct mfa_producer *p)
{
    if (p == NULL)
        return;
    mq_free(p->mq);
    free(p->reply);
    free(p->url);
    free(p->name);
    free(p->ca_file);
    free(p);
}

static int
prod_connect(struct mfa_producer *p, char *err, size_t errlen)
{
    char why[256], url[256];

    if (mq_connected(p->mq))
        return MFA_PRODUCER_OK;
    if (mq_connect(p->mq, why, sizeof(why)) == 0)
        return MFA_PRODUCER_OK;
    mfa_producer_url_redact(p->url, url, sizeof(url));
    return prod_fail(err, errlen, MFA_PRODUCER_UNREACHABLE,
                     "cannot connect to the broker at %s: %s", url, why);
}

int
mfa_producer_connect(struct mfa_producer *p, char *err, size_t errlen)
{
    return prod_connect(p, err, errlen);
}

/* Deliveries are replies (the only queue consumed is direct reply-to):
 * keep the awaited one, drop late answers to calls that timed out. */
static void
prod_on_delivery(struct mq_msg *m, void *arg)
{
    struct mfa_producer *p = arg;

    if (p->awaiting[0] != '\0' && p->reply == NULL &&
        m->correlation_id != NULL &&
        strcmp(m->correlation_id, p->awaiting) == 0) {
        p->reply = m->body;
        m->body = NULL;
    }
    mq_msg_free(m);
}

static void
prod_out(struct mq_out *o, const char *type, const char *body,
         const char *event_id, int want_reply)
{
    memset(o, 0, sizeof(*o));
    o->exchange = MFA_EX_EVENTS;
    o->routing_key = type;
    o->type = type;
    o->body = body;
    o->body_len = strlen(body);
    o->message_id = event_id;
    o->reply_to = want_reply ? PROD_REPLY_TO : NULL;
    o->persistent = 1;
    o->mandatory = 1;
}

static int
prod_status(int outcome)
{
    switch (outcome) {
    case MQ_CONFIRMED: return MFA_PRODUCER_OK;
    case MQ_RETURNED:
    case MQ_NACKED: return MFA_PRODUCER_REFUSED;
    default: return MFA_PRODUCER_UNCONFIRMED;
    }
}

/* The sentence for a message that did not make it. */
static void
prod_explain(const struct mfa_producer *p, const struct mq_out *o, int how,
             const char *lost, char *err, size_t errlen)
{
    if (how == MQ_RETURNED)
        prod_fail(err, errlen, 0,
                  "the broker returned event %s: no queue is bound to "
                  "routing key %s on exchange %s (are the workers' queues "
                  "declared?)",
                  o->message_id, o->routing_key, o->exchange);
    else if (how == MQ_NACKED)
        prod_fail(err, errlen, 0,
                  "the broker refused (nacked) event %s: it could not "
                  "store it (queue full, or a cluster node down?)",
                  o->message_id);
    else if (lost != NULL)
        prod_fail(err, errlen, 0,
                  "connection to the broker lost (%s) before event %s was "
                  "confirmed: it may or may not have arrived; publish it "
                  "again with the same event_id",
                  lost, o->message_id);
    else
        prod_fail(err, errlen, 0,
                  "no confirm from the broker for event %s within %d ms: "
                  "it may or may not have arrived; publish it again with "
                  "the same event_id",
                  o->message_id, p->timeout_ms);
}

/*
 * Publishes outs[0..n) and sets status[i] and how[i] (an MQ_* outcome).
 * A connection that fails is re-made once and what was not confirmed on
 * it is sent again. Returns OK or the first failing status, with err.
 */
static int
prod_send(struct mfa_producer *p, const struct mq_out *outs, size_t n,
          int *status, int *how, char *err, size_t errlen)
{
    struct mq_out *todo = xcalloc(n, sizeof(*todo));
    size_t *idx = xcalloc(n, sizeof(*idx));
    int *ok = xcalloc(n, sizeof(*ok));
    size_t ntodo = n;
    char lost[256] = "";
    int rc = MFA_PRODUCER_OK, unreachable = 0;

    for (size_t i = 0; i < n; i++) {
        todo[i] = outs[i];
        idx[i] = i;
        status[i] = MFA_PRODUCER_UNREACHABLE;
        how[i] = MQ_UNCONFIRMED;
    }
    for (int round = 0; round < 2 && ntodo > 0; round++) {
        int fresh = 0, r;
        size_t k = 0;

        /* A broker restart since the last call shows up here as EOF,
         * before anything is sent on a dead socket. */
        if (mq_connected(p->mq) && mq_pump(p->mq, prod_on_delivery, p) != 0)
            mq_disconnect(p->mq);
        if (!mq_connected(p->mq)) {
            if (prod_connect(p, err, errlen) != MFA_PRODUCER_OK) {
                unreachable = 1;
                break;
            }
            fresh = 1;
        }
        r = mq_publish(p->mq, todo, ntodo, ok, prod_on_delivery, p);
        for (size_t j = 0; j < ntodo; j++) {
            how[idx[j]] = mq_outcome(p->mq, j);
            status[idx[j]] = prod_status(how[idx[j]]);
            if (r < 0 && how[idx[j]] == MQ_UNCONFIRMED) {
                todo[k] = todo[j];
                idx[k++] = idx[j];
            }
        }
        if (r >= 0)
            break;
        snprintf(lost, sizeof(lost), "%s", mq_last_error(p->mq));
        mq_disconnect(p->mq);
        ntodo = k;
        if (fresh)
            break; /* a new connection failed at once: give up */
    }
    for (size_t i = 0; i < n; i++) {
        if (status[i] == MFA_PRODUCER_OK)
            continue;
        /* A reconnect that failed leaves the messages sent before it
         * unknown, and only the never-sent ones unreachable. */
        if (status[i] == MFA_PRODUCER_UNREACHABLE && lost[0] != '\0')
            status[i] = MFA_PRODUCER_UNCONFIRMED;
        if (rc == MFA_PRODUCER_OK) {
            rc = status[i];
            if (!(unreachable && rc == MFA_PRODUCER_UNREACHABLE))
                prod_explain(p, &outs[i], how[i], lost[0] != '\0' ? lost : NULL,
                             err, errlen);
        }
    }
    free(ok);
    free(idx);
    free(todo);
    return rc;
}

static int
prod_publish(struct mfa_producer *p, const char *type, const char *data_json,
             const char *event_id, int want_reply,
             char event_id_out[MFA_PRODUCER_ID_LEN], char *err, size_t errlen)
{
    char id[MFA_PRODUCER_ID_LEN];
    struct mq_out o;
    char *body = NULL;
    int rc, status, how;

    rc = mfa_producer_build(type, data_json, event_id, &body, id, err, errlen);
    if (event_id_out != NULL)
        memcpy(event_id_out, id, sizeof(id));
    if (rc != MFA_PRODUCER_OK)
        goto out;
    if (want_reply) {
        /* Set before publishing: the reply can overtake the confirm. */
        memcpy(p->awaiting, id, sizeof(id));
        free(p->reply);
        p->reply = NULL;
    }
    prod_out(&o, type, body, id, want_reply);
    rc = prod_send(p, &o, 1, &status, &how, err, errlen);
out:
    /* login.code_submitted carries the user's code. */
    if (body != NULL)
        sodium_memzero(body, strlen(body));
    free(body);
    return rc;
}

int
mfa_producer_publish(struct mfa_producer *p, const char *type,
                     const char *data_json, const char *event_id,
                     char event_id_out[MFA_PRODUCER_ID_LEN], char *err,
                     size_t errlen)
{
    return prod_publish(p, type, data_json, event_id, 0, event_id_out, err,
                        errlen);
}

/* Reads replies until ours came or the deadline passed. */
static int
prod_wait_reply(struct mfa_producer *p, const char *type, long long deadline,
                int timeout_ms, char *err, size_t errlen)
{
    while (p->reply == NULL) {
        long long left = deadline - clock_mono_ms();
        struct pollfd pfd;

        if (left <= 0)
            return prod_fail(err, errlen, MFA_PRODUCER_NO_REPLY,
                             "no reply to %s (event %s) within %d ms: it "
                             "was published and confirmed, but no worker "
                             "answered (is mfa-codes running?)",
                             type, p->awaiting, timeout_ms);
        if (!mq_buffered(p->mq)) {
            pfd.fd = mq_fd(p->mq);
            pfd.events = POLLIN;
            pfd.revents = 0;
            /* Short slices: TLS may hold bytes the socket no longer
             * shows, and the read below never blocks. */
            if (poll(&pfd, 1,
                     left < PROD_POLL_SLICE_MS ? (int)left
                                               : PROD_POLL_SLICE_MS) < 0 &&
                errno != EINTR)
                return prod_fail(err, errlen, MFA_PRODUCER_NO_REPLY,
                                 "waiting for the reply: poll: %s",
                                 strerror(errno));
        }
        if (mq_pump(p->mq, prod_on_delivery, p) != 0) {
            char why[256];

            snprintf(why, sizeof(why), "%s", mq_last_error(p->mq));
            mq_disconnect(p->mq);
            return prod_fail(err, errlen, MFA_PRODUCER_NO_REPLY,
                             "connection to the broker lost (%s) while "
                             "waiting for the reply to event %s; the event "
                             "itself was confirmed",
                             why, p->awaiting);
        }
    }
    return MFA_PRODUCER_OK;
}

int
mfa_producer_call(struct mfa_producer *p, const char *type,
                  const char *data_json, const char *event_id, int timeout_ms,
                  char event_id_out[MFA_PRODUCER_ID_LEN], char **reply,
                  char *err, size_t errlen)
{
    long long deadline = clock_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    int rc;

    *reply = NULL;
    rc = prod_publish(p, type, data_json, event_id, 1, event_id_out, err,
                      errlen);
    if (rc == MFA_PRODUCER_OK)
        rc = prod_wait_reply(p, type, deadline, timeout_ms, err, errlen);
    if (rc == MFA_PRODUCER_OK) {
        *reply = p->reply;
        p->reply = NULL;
    }
    p->awaiting[0] = '\0';
    return rc;
}

/* A batch message must be one of our types and validate as the workers
 * will read it; its message_id is the event_id inside the body. */
static int
prod_batch_check(const struct mfa_producer_msg *m, char id[MFA_PRODUCER_ID_LEN])
{
    const char *const *t;
    struct envelope ev;

    for (t = mfa_producer_types(); *t != NULL; t++)
        if (m->type != NULL && strcmp(*t, m->type) == 0)
            break;
    if (*t == NULL || m->body == NULL ||
        envelope_parse(m->body, strlen(m->body), m->type, &ev, NULL, 0) != 0)
        return -1;
    memcpy(id, ev.event_id, MFA_PRODUCER_ID_LEN);
    envelope_free(&ev);
    return 0;
}

int
mfa_producer_publish_batch(struct mfa_producer *p,
                           struct mfa_producer_msg *msgs, size_t n, char *err,
                           size_t errlen)
{
    size_t w = (size_t)p->window;
    struct mq_out *outs = xcalloc(w, sizeof(*outs));
    char(*ids)[MFA_PRODUCER_ID_LEN] = xcalloc(w, sizeof(*ids));
    size_t *at = xcalloc(w, sizeof(*at));
    int *status = xcalloc(w, sizeof(*status));
    int *how = xcalloc(w, sizeof(*how));
    int rc = MFA_PRODUCER_OK;
    size_t start;

    for (start = 0; start < n; start += w) {
        size_t end = start + w < n ? start + w : n, k = 0;
        int r = MFA_PRODUCER_OK;

        for (size_t i = start; i < end; i++) {
            if (prod_batch_check(&msgs[i], ids[k]) != 0) {
                msgs[i].status = MFA_PRODUCER_INVALID;
                if (rc == MFA_PRODUCER_OK)
                    rc = prod_fail(err, errlen, MFA_PRODUCER_INVALID,
                                   "message %zu: not a valid event (build "
                                   "it with mfa_producer_build)",
                                   i);
                continue;
            }
            prod_out(&outs[k], msgs[i].type, msgs[i].body, ids[k], 0);
            at[k++] = i;
        }
        if (k > 0)
            r = prod_send(p, outs, k, status, how,
                          rc == MFA_PRODUCER_OK ? err : NULL,
                          rc == MFA_PRODUCER_OK ? errlen : 0);
        for (size_t j = 0; j < k; j++)
            msgs[at[j]].status = status[j];
        if (rc == MFA_PRODUCER_OK)
            rc = r;
        if (r == MFA_PRODUCER_UNREACHABLE)
            break;
    }
    /* After an unreachable broker nothing more was tried. */
    for (start += w; start < n; start++)
        msgs[start].status = MFA_PRODUCER_UNREACHABLE;
    free(how);
    free(status);
    free(at);
    free(ids);
    free(outs);
    return rc;
}
