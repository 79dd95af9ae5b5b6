/*
 * topology.h - the RabbitMQ names of the design brief, in one place.
 *
 * The portal and CRM code against these names: keep them.
 */
#ifndef RUNTIME_TOPOLOGY_H
#define RUNTIME_TOPOLOGY_H

#include <stddef.h>

#include <amqp.h>

#define MFA_EX_EVENTS "mfa.events"     /* topic: portal and CRM publish */
#define MFA_EX_DISPATCH "mfa.dispatch" /* direct: email | sms */
#define MFA_EX_RESULTS "mfa.results"   /* topic: outcomes */
#define MFA_Q_CONTACT_SYNC "mfa.contact-sync"
#define MFA_Q_LOGIN "mfa.login"
#define MFA_Q_DISPATCH_EMAIL "mfa.dispatch.email"
#define MFA_Q_DISPATCH_SMS "mfa.dispatch.sms"
#define MFA_Q_DEAD "mfa.dead"

#define MFA_HDR_ERROR "x-mfa-error"     /* why a message is dead */
#define MFA_HDR_ORIGIN "x-mfa-origin"   /* the queue it came from */
#define MFA_HDR_ATTEMPT "x-mfa-attempt" /* retries so far */
#define MFA_HDR_DEAD_AT "x-mfa-dead-at" /* unix seconds */

struct topology_opts {
    int quorum;         /* queue_type: quorum (else classic) */
    int delivery_limit; /* x-delivery-limit on quorum work queues */
    const long *delays; /* retry tiers, seconds */
    size_t ndelays;
};

/* The four work queues, NULL-terminated. */
extern const char *const topology_work_queues[];

/* "<origin>.retry.<N>s" */
void topology_retry_queue(char *out, size_t n, const char *origin,
                          long delay_s);

/*
 * Declares exchanges, queues, bindings and retry tiers (idempotent).
 * A mismatch with existing queues closes the channel: err says which.
 */
int topology_declare(amqp_connection_state_t conn, amqp_channel_t ch,
                     const struct topology_opts *o, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Text of an RPC reply error (channel.close reason etc.). */
void topology_rpc_error(amqp_rpc_reply_t r, const char *what, char *err,
                        size_t errlen);

#endif
