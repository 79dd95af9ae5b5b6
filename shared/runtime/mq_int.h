/*
 * mq_int.h - inside the AMQP connection: what mq.c (connection, frame
 * reading, deliveries, acks) and mq_publish.c (publishes, confirms,
 * returns) share. Not for callers, which use mq.h.
 */
#ifndef RUNTIME_MQ_INT_H
#define RUNTIME_MQ_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#include <amqp.h>

#include "runtime/mq.h"

#define MQ_CHANNEL 1
#define MQ_WATCHDOG_S 60

/* A publish waiting for its confirm. */
enum { CONFIRM_PENDING = 0, CONFIRM_ACK, CONFIRM_NACK };

struct mq_pending {
    uint64_t seq;
    int state;
    int returned;
    const char *message_id;
};

struct mq {
    struct mq_options o;
    amqp_connection_state_t conn;
    int up;
    unsigned gen;
    uint64_t next_seq;       /* publish sequence number of the next one */
    struct mq_pending *pend; /* confirms being waited for */
    size_t npend;
    struct mq_pending *last; /* the previous mq_publish, for mq_outcome */
    size_t nlast;
    char *ctag; /* our consumer tag while consuming */
    char err[256];
};

/* mq.c: the process's SIGALRM watchdog around a library call that can
 * block, unless the options say no_watchdog. */
void mq_watch(const struct mq *mq, unsigned seconds, const char *what);
void mq_unwatch(const struct mq *mq);
/* Records "what: <library error>" and marks the connection down; -1. */
int mq_fail(struct mq *mq, const char *what, int status);
/* Reads and handles frames until none arrives within tv (NULL = wait
 * forever), or after one when just_one. 0, or -1 when the connection or
 * channel is gone. */
int mq_read(struct mq *mq, struct timeval *tv, mq_deliver_fn fn, void *arg,
            int just_one);

/* mq_publish.c, for the frame reader: basic.ack / basic.nack for our
 * publishes, and basic.return (read its message; -1 when that fails). */
void mq_on_confirm(struct mq *mq, uint64_t tag, int multiple, int state);
int mq_on_return(struct mq *mq);

#endif
