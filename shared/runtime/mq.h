/*
 * mq.h - one AMQP connection and channel over librabbitmq-c 0.11.
 *
 * Owns the frame reading: deliveries, publisher confirms, returns and
 * broker-side closes all arrive on the one channel and are sorted here, so
 * a confirm wait never loses a delivery and vice versa. Not thread-safe
 * (neither is the library); one per process, driven by the worker loop.
 */
#ifndef RUNTIME_MQ_H
#define RUNTIME_MQ_H

#include <stddef.h>
#include <stdint.h>

/* A delivered message, copied out of the library's buffers. */
struct mq_msg {
    uint64_t tag;
    unsigned gen; /* connection generation it arrived on */
    char *exchange;
    char *routing_key;
    char *body;
    size_t body_len;
    char *message_id;
    char *type;
    char *reply_to;
    char *correlation_id;
    int attempt; /* x-mfa-attempt, 0 on first delivery */
    int redelivered;
};

/* A message to publish. Strings are borrowed for the call. */
struct mq_out {
    const char *exchange;
    const char *routing_key;
    const char *body;
    size_t body_len;
    const char *message_id;
    const char *type;
    const char *correlation_id;
    const char *reply_to;
    int persistent;
    int mandatory;
    /* Runtime headers; NULL / negative = absent. */
    const char *error;
    const char *origin;
    int attempt;
    long long dead_at;
};

struct mq_options {
    const char *name;    /* connection_name shown by the broker */
    const char *url;     /* amqp:// or amqps:// */
    const char *ca_file; /* amqps: CA bundle, NULL = system default */
    int heartbeat;       /* seconds, 0 = off */
    int prefetch;
    int confirm_timeout_ms;
    const char *consume; /* queue to consume, NULL = publish only */
    int quorum;
    int delivery_limit;
    const long *delays;
    size_t ndelays;
    /* The producer library (0 for workers): consume with no_ack, as
     * direct reply-to (amq.rabbitmq.reply-to) requires; skip the topology
     * for a broker user that may only publish; no SIGALRM watchdog in
     * someone else's process (RPCs time out after confirm_timeout_ms). */
    int consume_no_ack;
    int no_topology;
    int no_watchdog;
};

typedef void (*mq_deliver_fn)(struct mq_msg *msg, void *arg);

struct mq;

struct mq *mq_new(const struct mq_options *o);
void mq_free(struct mq *mq);
/* Connects, logs in, opens the channel, confirm.select, declares the
 * topology, basic.qos and basic.consume. 0 or -1 with err. */
int mq_connect(struct mq *mq, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void mq_disconnect(struct mq *mq);
int mq_connected(const struct mq *mq);
/* A connection object exists (possibly failed, not yet torn down). */
int mq_active(const struct mq *mq);
unsigned mq_generation(const struct mq *mq);
int mq_fd(const struct mq *mq);
/* Frames already read into the library's buffers: do not poll first. */
int mq_buffered(const struct mq *mq);

/* Reads what is available without blocking (and services heartbeats).
 * Deliveries go to fn. 0, or -1 when the connection failed. */
int mq_pump(struct mq *mq, mq_deliver_fn fn, void *arg)
    __attribute__((warn_unused_result));

/*
 * Publishes n messages and waits for every confirm (deliveries arriving
 * meanwhile go to fn). ok[i] is set to 1 for each message the broker
 * confirmed and did not return. Returns 0 when all are ok, 1 when some
 * were nacked, returned or unconfirmed in time, -1 on connection failure.
 */
int mq_publish(struct mq *mq, const struct mq_out *outs, size_t n, int *ok,
               mq_deliver_fn fn, void *arg) __attribute__((warn_unused_result));

/*
 * Why message i of the last mq_publish() is (not) ok: the producer library
 * tells "no queue bound" from "nacked" from "unknown, publish again". On a
 * connection failure, messages confirmed before it still say CONFIRMED.
 */
enum { MQ_CONFIRMED, MQ_RETURNED, MQ_NACKED, MQ_UNCONFIRMED };
int mq_outcome(const struct mq *mq, size_t i);

int mq_ack(struct mq *mq, uint64_t tag, int multiple)
    __attribute__((warn_unused_result));
/* Stop consuming (shutdown): unacked deliveries stay ours to finish. */
int mq_cancel(struct mq *mq) __attribute__((warn_unused_result));

void mq_msg_free(struct mq_msg *m);

const char *mq_last_error(const struct mq *mq);

/* The library connection (amqp_connection_state_t) while connected, else
 * NULL. For mfactl: passive declares and basic.get on a channel of its
 * own (never channel 1, ours), and never while mq_publish() waits. */
struct amqp_connection_state_t_;
struct amqp_connection_state_t_ *mq_amqp(struct mq *mq);

#endif
