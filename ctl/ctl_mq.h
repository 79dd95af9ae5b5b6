/*
 * ctl_mq.h - mfactl's view of RabbitMQ: the topology's queues, their
 * depth and consumers (passive queue.declare, no management plugin), and
 * reading a queue without consuming it (basic.get, then requeue).
 *
 * Callers: cmd_status.c, cmd_metrics.c, cmd_dlq.c.
 */
#ifndef CTL_CTL_MQ_H
#define CTL_CTL_MQ_H

#include <stddef.h>
#include <stdint.h>

#include <amqp.h>

#include "ctl/ctl.h"
#include "runtime/mq.h"

enum ctl_qkind { CTL_Q_WORK, CTL_Q_RETRY, CTL_Q_DEAD };

/* One queue of the topology and what the broker says about it. */
struct ctl_queue {
    char name[128];
    enum ctl_qkind kind;
    int exists;     /* filled by ctl_mq_inspect() */
    uint32_t ready; /* messages ready (unacked ones are not counted) */
    uint32_t consumers;
};

/* A connection that declares nothing and consumes nothing; its second
 * channel carries our passive declares and gets. */
struct ctl_mq {
    struct mq *mq;
    amqp_connection_state_t conn;
    int side_open; /* channel CTL_MQ_SIDE is open */
    char err[256];
};

#define CTL_MQ_SIDE 2

/* "work", "retry", "dead". */
const char *ctl_qkind_name(enum ctl_qkind k);

/*
 * Every queue of the topology for this configuration: each work queue
 * followed by its retry tiers, then mfa.dead. Returns a malloc'd array
 * of *n entries (exists = 0 until inspected).
 */
struct ctl_queue *ctl_queues_list(const struct mfa_config *cfg, size_t *n);

/* Connects with amqp.url. 0, or -1 with m->err. */
int ctl_mq_open(struct ctl *c, struct ctl_mq *m)
    __attribute__((warn_unused_result));
void ctl_mq_close(struct ctl_mq *m);

/* Fills exists/ready/consumers of each queue. A missing queue is not an
 * error (exists = 0). 0, or -1 with m->err when the broker failed. */
int ctl_mq_inspect(struct ctl_mq *m, struct ctl_queue *q, size_t n)
    __attribute__((warn_unused_result));

/*
 * basic.get without auto-ack on the side channel: 1 with *msg and *tag
 * filled (the message stays ours, unacked, until ctl_mq_settle() or the
 * connection closes), 0 when the queue is empty, -1 on error. The caller
 * frees msg with amqp_destroy_message().
 */
int ctl_mq_get(struct ctl_mq *m, const char *queue, amqp_message_t *msg,
               uint64_t *tag) __attribute__((warn_unused_result));
/* Ack (ack = 1) or give back to the queue (ack = 0, requeue). tag 0 with
 * multiple = 1 means every message we hold. 0 or -1. */
int ctl_mq_settle(struct ctl_mq *m, uint64_t tag, int multiple, int ack)
    __attribute__((warn_unused_result));
/* queue.purge: the number of messages removed, or -1. */
long ctl_mq_purge(struct ctl_mq *m, const char *queue);

/* Header helpers on a read message: value or NULL / 0 / -1 when absent. */
const amqp_field_value_t *ctl_mq_header(const amqp_basic_properties_t *p,
                                        const char *key);
/* A string header copied (sanitized to printable ASCII, capped) into out;
 * 0, or -1 when absent or not a string. */
int ctl_mq_header_str(const amqp_basic_properties_t *p, const char *key,
                      char *out, size_t n);
/* An integer or timestamp header; 0 with *v, or -1. */
int ctl_mq_header_int(const amqp_basic_properties_t *p, const char *key,
                      long long *v);
/* A property (message_id, type, ...) as a sanitized C string in out. */
void ctl_mq_bytes(amqp_bytes_t b, int present, char *out, size_t n);

#endif
