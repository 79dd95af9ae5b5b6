/*
 * job.h - runtime-internal view of a job and the worker (not for handlers).
 */
#ifndef RUNTIME_JOB_H
#define RUNTIME_JOB_H

#include "runtime/mq.h"
#include "runtime/worker.h"
#include "util/buf.h"

struct job_out {
    char *exchange;
    char *routing_key;
    char *type;
    char *event_id;
    char *body;
};

struct job {
    struct job *next;
    struct worker *w;
    struct mq_msg *msg;
    struct envelope ev;
    int parsed;                            /* ev is valid */
    enum mfa_verdict (*fn)(struct job *j); /* handle or completion */
    enum mfa_verdict verdict;
    int duplicate; /* inbox said: done before */
    int keep_effects;
    int local_retries; /* deadlocks re-run in place */
    int again;         /* run again in the next batch */
    int started;       /* went PENDING in this batch: not rerun */
    char error[512];
    struct json_object *reply;
    struct job_out *outs;
    size_t nouts;
    void *data;
};

struct job_list {
    struct job *head;
    struct job *tail;
    int n;
};

struct worker {
    const struct worker_spec *spec;
    struct mfa_config cfg;
    struct mfa_keys *keys;
    struct db *db;
    struct mq *mq;
    void *state;
    int stopping;
    struct job_list ready; /* delivered, not started */
    struct job_list done;  /* async jobs whose I/O finished */
    int pending;           /* async jobs in flight */
    /* The async jobs in flight, and copies of their events delivered
     * meanwhile (a redelivery, or a follow-up published again for a
     * duplicate): a copy waits in held until its first has finished, then
     * finds the inbox row, instead of starting a second send. */
    struct job_list inflight;
    struct job_list held;
    long long db_retry_at; /* monotonic ms; 0 = now */
    int db_backoff_ms;
};

void job_list_push(struct job_list *l, struct job *j);
struct job *job_list_pop(struct job_list *l);
/* Takes j out of l, if it is there. */
void job_list_unlink(struct job_list *l, struct job *j);
/* 1 if a job of l is for this event. */
int job_list_has_event(const struct job_list *l, const char *event_id);
struct job *job_new(struct worker *w, struct mq_msg *msg);
void job_free(struct job *j);
void job_reset_outputs(struct job *j);
/* outputs <-> JSON stored in the inbox row */
char *job_outputs_json(const struct job *j);
int job_outputs_load(struct job *j, const char *json);

/* Runs up to max ready jobs (or finished async ones) in one transaction;
 * see batch.c. Returns -1 when the database or broker went away. */
int batch_run(struct worker *w, struct job_list *from, int max);
/* Redelivered messages of classic queues (redeliver.c): whether j must
 * run alone; counting its run (0 run it, 1 over the limit: verdict set to
 * REJECT, -1 database error); forgetting it once handled. */
int redeliver_alone(const struct worker *w, const struct job_list *from,
                    const struct job *j);
int redeliver_count(struct worker *w, struct job *j);
void redeliver_forget(struct worker *w, const struct job *j);
/* The transaction of a batch (batch_tx.c): 0 committed, -1 database lost
 * or COMMIT failed (nothing happened). */
int batch_tx(struct worker *w, struct job **jobs, size_t n);
/* mq's delivery callback (arg = the worker): parses and queues a job. Also
 * given to mq_publish(), which reads deliveries while it waits. */
void worker_on_delivery(struct mq_msg *msg, void *arg);

#endif
