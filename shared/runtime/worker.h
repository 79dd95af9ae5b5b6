/*
 * worker.h - the one skeleton every Portal MFA worker runs on.
 *
 * A worker's main() is a struct worker_spec handed to worker_main(), which
 * loads the configuration and keys, connects to RabbitMQ and PostgreSQL
 * (and reconnects), consumes with manual acks, runs the handler inside a
 * transaction that also claims the inbox row, publishes what the handler
 * asked for with publisher confirms, and only then acks. Retries, dead
 * letters, replies to invalid input and graceful shutdown live here too.
 *
 * The handler never acks and never blocks: it returns a verdict.
 */
#ifndef RUNTIME_WORKER_H
#define RUNTIME_WORKER_H

#include <poll.h>

#include <json-c/json.h>

#include "mfa/crypto.h"
#include "mfa/db.h"
#include "mfa/envelope.h"
#include "mfa/settings.h"

enum mfa_verdict {
    MFA_OK,      /* commit, publish the outputs with confirms, ack */
    MFA_RETRY,   /* transient: roll back, next retry tier, then dead */
    MFA_REJECT,  /* bad input: roll back, dead-letter with the reason now */
    MFA_FATAL,   /* our bug or broken set-up: exit, message comes back */
    MFA_PENDING, /* provider I/O started; job_finish() completes it later */
};

struct worker;
struct job;

struct worker_spec {
    const char *name;    /* program name, "mfa-codes" */
    const char *queue;   /* queue consumed */
    const char *summary; /* one line for --help */
    /* After configuration, keys and logging; 0 or fatal. */
    int (*init)(struct worker *w);
    void (*fini)(struct worker *w);
    /* Runs inside the transaction that claimed the inbox row. */
    enum mfa_verdict (*handle)(struct job *job);
    /* Extra sockets for the poll loop (curl multi); may be NULL. fill adds
     * up to max pollfds and may lower *timeout_ms; run sees them after
     * poll returns. */
    int (*poll_fill)(struct worker *w, struct pollfd *fds, int max,
                     int *timeout_ms);
    void (*poll_run)(struct worker *w, struct pollfd *fds, int n);
    /* Jobs started but not finished (async workers); drain waits for 0. */
    int (*inflight)(struct worker *w);
    /* Frees what job_set_data() attached, when the job itself is freed
     * (after its acks, or when its delivery is dropped). A completion may
     * run again (a deadlock, a failed COMMIT), so it leaves the data. */
    void (*data_free)(void *data);
    int batch_max; /* messages per transaction, 0 = 1 */
    /* Events with the same key (say, a login id) never share a batch: the
     * later one starts the next. A handler may then db_defer() a write
     * that only events with its key read back. NULL key: no constraint. */
    const char *(*batch_key)(const struct envelope *ev);
    /* Optional, on the batch's fast way only: the statements that read
     * what the handlers of jobs[0..n) will need. batch_read fills up to
     * max of st[] (their parameters valid until batch_done) and returns
     * how many, 0 for nothing to read, -1 when it cannot. The runtime
     * sends them (with the async handlers' inbox look-up) in one round
     * trip and hands their results, in order, to batch_result (the
     * worker's then; batch_done drops them when the batch is over). They
     * go before the BEGIN, where a read needs no transaction and a batch
     * that writes nothing needs no COMMIT; with batch_read_locks set
     * they go after it, in the same round trip, so that they may lock
     * the rows the handlers will write (SELECT ... FOR UPDATE): the
     * locks then hold to the batch's COMMIT.
     * Handlers must not depend on them: the careful way runs without. */
    int (*batch_read)(struct worker *w, struct job *const *jobs, size_t n,
                      struct db_stmt *st, int max);
    void (*batch_result)(struct worker *w, PGresult **res, int n);
    int batch_read_locks;
    void (*batch_done)(struct worker *w);
};

int worker_main(int argc, char **argv, const struct worker_spec *spec);

const struct mfa_config *worker_config(const struct worker *w);
const struct mfa_keys *worker_keys(const struct worker *w);
struct db *worker_db(struct worker *w);
void *worker_state(struct worker *w);
void worker_set_state(struct worker *w, void *state);
int worker_stopping(const struct worker *w);

/* ---- for handlers ---------------------------------------------------- */

struct worker *job_worker(struct job *j);
const struct envelope *job_event(const struct job *j);
struct db *job_db(struct job *j);
/* Retries already made (0 on the first delivery) and whether a RETRY now
 * would dead-letter instead. */
int job_attempt(const struct job *j);
int job_last_attempt(const struct job *j);
/* The reply to reply_to (correlation_id = event_id). Takes ownership. */
void job_reply(struct job *j, struct json_object *reply);
/* A follow-up event, published after commit. Takes ownership of data. */
void job_emit(struct job *j, const char *exchange, const char *routing_key,
              const char *type, struct json_object *data);
/* Why the verdict is RETRY or REJECT (logged, x-mfa-error). */
void job_fail(struct job *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* On RETRY keep what the handler wrote (attempt counters, last error). */
void job_keep_effects(struct job *j);
/* Per-job data of an async worker. */
void job_set_data(struct job *j, void *data);
void *job_data(const struct job *j);
/* Completes a PENDING job: complete() runs like a handler, in its own
 * transaction with the inbox claim, on the loop's next turn. */
void job_finish(struct job *j, enum mfa_verdict (*complete)(struct job *j));

#endif
