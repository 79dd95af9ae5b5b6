/*
 * smtp.h - mfa-email's SMTP client: up to smtp.concurrency pooled
 * sessions, each a libcurl easy handle (connect, TLS, STARTTLS, AUTH on
 * the worker's curl multi handle) over which the mail transaction runs
 * without blocking the worker's loop.
 */
#ifndef EMAIL_SMTP_H
#define EMAIL_SMTP_H

#include <poll.h>

#include "mfa/settings.h"
#include "runtime/curlm.h"
#include "util/buf.h"

enum smtp_outcome {
    SMTP_SENT,     /* 2xx after DATA */
    SMTP_TEMPFAIL, /* 4xx, timeout, connection, TLS, AUTH or sender
                      trouble */
    SMTP_PERMFAIL, /* 5xx to RCPT, DATA or the message */
};

struct smtp_result {
    enum smtp_outcome outcome;
    long reply_code;   /* last SMTP reply code, 0 if none */
    char text[300];    /* "550 5.1.1 ..." or "connect: ..." */
    char queue_id[65]; /* from "queued as X" / "id=X"; "" if none */
};

/* Runs from smtp_pool_poll_run (or smtp_pool_free), never from
 * smtp_pool_send. */
typedef void (*smtp_done_fn)(const struct smtp_result *r, void *arg);

struct smtp_pool;

/* NULL with err when smtp.from has no usable address. */
struct smtp_pool *smtp_pool_new(const struct mfa_smtp_config *cfg,
                                struct curlm *m, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Completes everything queued or in flight as aborted (done runs), closes
 * the sessions. Before curlm_free() of the multi handle it uses. */
void smtp_pool_free(struct smtp_pool *p);

/*
 * Queues one message to one recipient; takes msg (wiped and freed when
 * done). done runs once, later, from the loop. Returns -1 (msg freed,
 * done never called) when the recipient is unusable or the pool closing.
 */
int smtp_pool_send(struct smtp_pool *p, const char *rcpt, struct buf *msg,
                   smtp_done_fn done, void *arg)
    __attribute__((warn_unused_result));

/* The sessions' own sockets (after libcurl has connected them), for the
 * worker's poll(): like curlm_poll_fill / curlm_poll_run. poll_run also
 * runs timeouts and the completions of finished sends. */
int smtp_pool_poll_fill(struct smtp_pool *p, struct pollfd *fds, int max,
                        int *timeout_ms);
void smtp_pool_poll_run(struct smtp_pool *p, const struct pollfd *fds, int n);

/* Sends queued, in flight, or finished and not yet completed. */
int smtp_pool_busy(const struct smtp_pool *p);

#endif
