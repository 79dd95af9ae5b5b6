/*
 * sms.h - mfa-sms's pieces: worker state, one job in flight, the hooks
 * for main.c.
 *
 * handler.c  dispatch.code: checks, unseal, render (MFA_PENDING), and the
 *            completion that records Twilio's answer
 * loop.c     init/fini, the poll hooks, the pool of easy handles and the
 *            queue of requests waiting for one (sms.concurrency)
 * store.c    the user's phone and its block (mfa.users), with the SMS
 *            settings row in the same query; the delivery and code rows
 *            are shared/mfa/delivery.c, the common job steps
 *            shared/runtime/dispatch.c
 */
#ifndef SMS_SMS_H
#define SMS_SMS_H

#include <poll.h>

#include "mfa/addr.h"
#include "mfa/sms_settings.h"
#include "mfa/tmpl.h"
#include "mfa/twilio.h"
#include "runtime/curlm.h"
#include "runtime/dispatch.h"
#include "runtime/worker.h"
#include "util/buf.h"

struct sms_job;

struct sms_state {
    const struct mfa_config *cfg;
    const struct mfa_keys *keys;
    struct curlm *curlm;
    struct tmpl_set *tmpl;
    struct sms_settings_cache settings; /* checks of the last good row */
    CURL **idle; /* easy handles not in use (their connections
                    stay in the multi handle's cache) */
    int nidle;
    int nhandles; /* created, at most sms.concurrency */
    struct sms_job *wait_head, *wait_tail; /* FIFO for a free handle */
    int nwait;
    struct sms_job *active; /* every job between handler and completion */
    int closing;            /* fini: completions only clean up */
};

/* A code SMS between the handler and its completion. */
struct sms_job {
    struct sms_job *next_wait;
    struct sms_job *prev, *next; /* state->active */
    struct job *job;
    struct sms_state *st;
    char delivery_id[ADDR_UUID_LEN + 1];
    char login_id[ADDR_UUID_LEN + 1];
    char contact_id[72];
    char to[20]; /* E.164: personal data, wiped with the job */
    char to_masked[32];
    long long deadline_ms; /* clock_mono_ms(): when the code expires */
    struct buf text;       /* the rendered SMS: holds the code */
    struct twilio_call call;
    struct twilio_result res;
    CURL *easy;   /* while the request runs */
    int not_sent; /* never started: expiring, or no transfer */
    char not_sent_why[240];
};

/* worker_spec hooks. */
int sms_init(struct worker *w);
void sms_fini(struct worker *w);
enum mfa_verdict sms_handle(struct job *job);
int sms_poll_fill(struct worker *w, struct pollfd *fds, int max,
                  int *timeout_ms);
void sms_poll_run(struct worker *w, struct pollfd *fds, int n);
int sms_inflight(struct worker *w);

/* loop.c, for handler.c */

/* Starts sj's request now if a handle is free, else queues it (FIFO).
 * 0, or -1 (nothing started; sj untouched beyond its text/call). */
int sms_submit(struct sms_state *st, struct sms_job *sj)
    __attribute__((warn_unused_result));
/* 1 when a job for delivery_id is already between handler and
 * completion in this process. */
int sms_in_flight(const struct sms_state *st, const char *delivery_id);
/* A new job, linked into st->active; sms_job_free unlinks and wipes. */
struct sms_job *sms_job_new(struct sms_state *st, struct job *job);
void sms_job_free(struct sms_job *sj);

/* handler.c: the completion, run by the runtime after job_finish. */
enum mfa_verdict sms_complete(struct job *job);

#endif
