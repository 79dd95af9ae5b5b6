/*
 * loop.c - mfa-sms's set-up, shutdown, poll hooks and request slots.
 *
 * Called by the runtime: sms_init after configuration and keys are loaded
 * (templates are loaded through dispatch_setup, and each locale's sms.txt
 * must fit one SMS segment with a 10-digit code, else the worker does not
 * start and names the file), sms_fini after the loop ends, the poll hooks
 * on every turn of the loop to drive the curl multi handle next to the
 * AMQP socket.
 *
 * Requests in flight are capped at sms.concurrency: that many easy
 * handles at most, each reused request after request so the multi
 * handle's connection cache keeps TLS connections to Twilio open. A job
 * that finds no free handle waits in a FIFO here instead of in libcurl,
 * because libcurl would start its timeout while it waits and a timeout is
 * an ambiguous answer. Its ValidityPeriod is computed when it starts, and
 * a job whose code got too close to expiry while waiting is not sent.
 *
 * Security notes: jobs hold the recipient's number, the rendered text
 * (with the code) and the request with the Authorization header; all are
 * wiped when the request is over (sms_on_done) or the job is freed.
 */
#include "mfa/sms_text.h"
#include "runtime/dispatch.h"
#include "sms.h"
#include "store.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

struct sms_job *
sms_job_new(struct sms_state *st, struct job *job)
{
    struct sms_job *sj = xcalloc(1, sizeof(*sj));

    sj->st = st;
    sj->job = job;
    buf_init(&sj->text, SMS_TEXT_MAX);
    sj->next = st->active;
    if (st->active)
        st->active->prev = sj;
    st->active = sj;
    return sj;
}

void
sms_job_free(struct sms_job *sj)
{
    struct sms_state *st;

    if (sj == NULL)
        return;
    st = sj->st;
    if (sj->prev)
        sj->prev->next = sj->next;
    else if (st->active == sj)
        st->active = sj->next;
    if (sj->next)
        sj->next->prev = sj->prev;
    twilio_call_clear(&sj->call);
    buf_free(&sj->text);
    sodium_memzero(sj, sizeof(*sj));
    free(sj);
}

int
sms_in_flight(const struct sms_state *st, const char *delivery_id)
{
    for (const struct sms_job *sj = st->active; sj != NULL; sj = sj->next)
        if (strcmp(sj->delivery_id, delivery_id) == 0)
            return 1;
    return 0;
}

/* A free easy handle, a new one while under the cap, or NULL. */
static CURL *
sms_handle_get(struct sms_state *st)
{
    CURL *e;

    if (st->nidle > 0)
        return st->idle[--st->nidle];
    if (st->nhandles >= st->cfg->sms.concurrency)
        return NULL;
    e = curl_easy_init();
    if (e != NULL)
        st->nhandles++;
    return e;
}

static void
sms_handle_put(struct sms_state *st, CURL *e)
{
    if (st->closing) {
        curl_easy_cleanup(e);
        st->nhandles--;
        return;
    }
    st->idle[st->nidle++] = e;
}

static void sms_on_done(CURL *easy, const struct curlm_result *r, void *arg);

/*
 * Starts sj on easy. 0 started; 1 not started and never will be
 * (sj->not_sent_why says why; easy is still the caller's).
 */
static int
sms_start(struct sms_state *st, struct sms_job *sj, CURL *easy)
{
    const struct mfa_sms_config *cfg = &st->cfg->sms;
    /* Rounded up: the handler's seconds_left was rounded down already. */
    long left = (long)((sj->deadline_ms - clock_mono_ms() + 999) / 1000);
    struct twilio_msg m;
    char err[200];

    sj->not_sent = 1;
    if (left < st->cfg->codes.min_remaining_seconds) {
        snprintf(sj->not_sent_why, sizeof(sj->not_sent_why),
                 "expiring (%ld s left after waiting for a free "
                 "connection)",
                 left > 0 ? left : 0);
        return 1;
    }
    memset(&m, 0, sizeof(m));
    m.to = sj->to;
    m.body = sj->text.data;
    /* A late SMS is never delivered: Twilio drops it when the code would
     * be dead anyway. */
    m.validity_s = left > 0 ? left : 1;
    m.status_callback = cfg->status_callback;
    if (twilio_call_start(&sj->call, easy, cfg, &m, err, sizeof(err)) != 0) {
        snprintf(sj->not_sent_why, sizeof(sj->not_sent_why), "%s", err);
        return 1;
    }
    if (curlm_add(st->curlm, easy, sms_on_done, sj) != 0) {
        twilio_call_clear(&sj->call);
        snprintf(sj->not_sent_why, sizeof(sj->not_sent_why),
                 "curl: cannot start the transfer");
        return 1;
    }
    sj->not_sent = 0;
    sj->easy = easy;
    return 0;
}

/* Starts waiting jobs while handles are free; one that cannot start
 * completes at once (the completion records why). */
static void
sms_start_waiting(struct sms_state *st)
{
    while (st->wait_head != NULL && !st->closing) {
        struct sms_job *sj;
        CURL *e = sms_handle_get(st);

        if (e == NULL)
            return;
        sj = st->wait_head;
        st->wait_head = sj->next_wait;
        if (st->wait_head == NULL)
            st->wait_tail = NULL;
        sj->next_wait = NULL;
        st->nwait--;
        if (sms_start(st, sj, e) != 0) {
            sms_handle_put(st, e);
            buf_free(&sj->text);
            job_finish(sj->job, sms_complete);
        }
    }
}

int
sms_submit(struct sms_state *st, struct sms_job *sj)
{
    CURL *e;

    /* Behind others that wait: keep the order. */
    if (st->wait_head == NULL && (e = sms_handle_get(st)) != NULL) {
        if (sms_start(st, sj, e) != 0) {
            sms_handle_put(st, e);
            log_warn("sms: %s", sj->not_sent_why);
            return -1;
        }
        return 0;
    }
    if (st->wait_tail)
        st->wait_tail->next_wait = sj;
    else
        st->wait_head = sj;
    st->wait_tail = sj;
    st->nwait++;
    return 0;
}

/* From curlm_poll_run: the answer is in; wipe what held the code and the
 * secret, hand the job back to the runtime (sms_complete runs in a new
 * transaction), and give the handle to the next waiting job. */
static void
sms_on_done(CURL *easy, const struct curlm_result *r, void *arg)
{
    struct sms_job *sj = arg;
    struct sms_state *st = sj->st;
    struct job *job = sj->job;

    twilio_call_result(&sj->call, r->code, r->error, &sj->res);
    twilio_call_clear(&sj->call);
    buf_free(&sj->text);
    sj->easy = NULL;
    sms_handle_put(st, easy);
    if (st->closing) {
        /* Shutting down: the message stays unacked and comes back. */
        job_set_data(job, NULL);
        sms_job_free(sj);
    }
    job_finish(job, sms_complete);
    sms_start_waiting(st);
}

int
sms_init(struct worker *w)
{
    struct sms_state *st = xcalloc(1, sizeof(*st));
    const struct mfa_config *cfg = worker_config(w);
    char err[512];

    st->cfg = cfg;
    st->keys = worker_keys(w);
    if (dispatch_setup(cfg, sms_template_files, sms_template_nfiles,
                       store_read_sql, &st->tmpl, &st->curlm) != 0)
        goto fail;
    /* The longest code, the longest life a code can have, the WebOTP
     * line: if that fits one segment, every real message does. */
    if (sms_text_check(st->tmpl, cfg->templates.dir,
                       (cfg->codes.ttl_seconds + 59) / 60,
                       cfg->templates.portal_name, cfg->sms.webotp_domain, err,
                       sizeof(err)) != 0) {
        log_error("%s", err);
        goto fail;
    }
    st->idle = xcalloc((size_t)cfg->sms.concurrency, sizeof(*st->idle));
    worker_set_state(w, st);
    log_info("templates: %zu locale(s), default %s, each fits one SMS; "
             "twilio: %ld in flight, timeout %ld s, webotp %s",
             tmpl_locale_count(st->tmpl), cfg->templates.default_locale,
             cfg->sms.concurrency, cfg->sms.timeout_seconds,
             cfg->sms.webotp_domain[0] ? cfg->sms.webotp_domain : "off");
    return 0;
fail:
    curlm_free(st->curlm);
    tmpl_free(st->tmpl);
    free(st);
    return -1;
}

void
sms_fini(struct worker *w)
{
    struct sms_state *st = worker_state(w);

    if (st == NULL)
        return;
    st->closing = 1;
    /* Waiting jobs were never sent: their messages come back. */
    while (st->wait_head != NULL) {
        struct sms_job *sj = st->wait_head;
        struct job *job = sj->job;

        st->wait_head = sj->next_wait;
        job_set_data(job, NULL);
        sms_job_free(sj);
        job_finish(job, sms_complete);
    }
    st->wait_tail = NULL;
    st->nwait = 0;
    /* In flight: completed as aborted (sms_on_done frees them). */
    curlm_free(st->curlm);
    while (st->nidle > 0)
        curl_easy_cleanup(st->idle[--st->nidle]);
    free(st->idle);
    tmpl_free(st->tmpl);
    worker_set_state(w, NULL);
    free(st);
}

int
sms_poll_fill(struct worker *w, struct pollfd *fds, int max, int *timeout_ms)
{
    struct sms_state *st = worker_state(w);

    return st ? curlm_poll_fill(st->curlm, fds, max, timeout_ms) : 0;
}

void
sms_poll_run(struct worker *w, struct pollfd *fds, int n)
{
    struct sms_state *st = worker_state(w);

    if (st != NULL)
        curlm_poll_run(st->curlm, fds, n);
}

int
sms_inflight(struct worker *w)
{
    struct sms_state *st = worker_state(w);

    return st ? curlm_inflight(st->curlm) + st->nwait : 0;
}
