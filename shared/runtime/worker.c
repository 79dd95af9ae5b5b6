/*
 * worker.c - worker_main(): set-up, the event loop, reconnects, shutdown.
 *
 * Called by each workers/<name>/main.c. One loop per process polls the
 * signalfd, the AMQP socket and the worker's own sockets (curl multi).
 * Fatal errors happen only before the loop starts; afterwards a lost
 * broker or database is reconnected with backoff and jitter while the
 * messages we hold stay unacked. SIGTERM/SIGINT: stop consuming, finish
 * what is in flight, ack, exit 0; a second signal exits at once (what is
 * unacked comes back from the broker).
 */
#include "runtime/job.h"
#include "runtime/topology.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <sodium.h>

#define WORKER_MAX_FDS 1100
#define WORKER_BACKOFF_MIN_MS 250
#define WORKER_BACKOFF_MAX_MS 15000
#define WORKER_DRAIN_MS 30000

const struct mfa_config *
worker_config(const struct worker *w)
{
    return &w->cfg;
}

const struct mfa_keys *
worker_keys(const struct worker *w)
{
    return w->keys;
}

struct db *
worker_db(struct worker *w)
{
    return w->db;
}

void *
worker_state(struct worker *w)
{
    return w->state;
}

void
worker_set_state(struct worker *w, void *state)
{
    w->state = state;
}

int
worker_stopping(const struct worker *w)
{
    return w->stopping;
}

static void
worker_usage(const struct worker_spec *spec, FILE *out)
{
    fprintf(out,
            "usage: %s [--config FILE] [--check]\n"
            "\n%s\n\n"
            "Consumes the queue %s. Configuration: --config FILE, else\n"
            "$MFA_CONFIG, else config/mfa.yaml when present; every key can\n"
            "be overridden by MFA_<SECTION>_<KEY> (see config/mfa.yaml).\n"
            "\n"
            "  --config FILE  configuration file\n"
            "  --check        load configuration and keys, then exit\n"
            "  --help         this text\n"
            "  --version      print the version\n",
            spec->name, spec->summary, spec->queue);
}

/* Next delay of an exponential backoff with full jitter. */
static int
worker_backoff(int *cur)
{
    int d;

    *cur = *cur ? *cur * 2 : WORKER_BACKOFF_MIN_MS;
    if (*cur > WORKER_BACKOFF_MAX_MS)
        *cur = WORKER_BACKOFF_MAX_MS;
    d = *cur / 2 + (int)randombytes_uniform((uint32_t)(*cur / 2 + 1));
    return d;
}

void
worker_on_delivery(struct mq_msg *msg, void *arg)
{
    struct worker *w = arg;
    struct job *j = job_new(w, msg);
    char err[256];

    if (envelope_parse(msg->body, msg->body_len, msg->type, &j->ev, err,
                       sizeof(err)) == 0) {
        j->parsed = 1;
    } else {
        /* Bad input never reaches a handler or the database. */
        j->verdict = MFA_REJECT;
        snprintf(j->error, sizeof(j->error), "invalid event: %s", err);
    }
    job_list_push(&w->ready, j);
}

static void
worker_drop_ready(struct worker *w)
{
    struct job *j;

    /* Deliveries of a lost connection come back from the broker. */
    while ((j = job_list_pop(&w->ready)) != NULL)
        job_free(j);
    while ((j = job_list_pop(&w->held)) != NULL)
        job_free(j);
}

/* Copies held back by batch_run whose first has finished go back to the
 * front of the ready queue: now they find its inbox row. */
static void
worker_release_held(struct worker *w)
{
    struct job_list keep = {0}, back = {0};
    struct job *j;

    if (w->held.head == NULL)
        return;
    while ((j = job_list_pop(&w->held)) != NULL) {
        if (job_list_has_event(&w->inflight, j->ev.event_id) ||
            job_list_has_event(&w->done, j->ev.event_id))
            job_list_push(&keep, j);
        else
            job_list_push(&back, j);
    }
    while ((j = job_list_pop(&w->ready)) != NULL)
        job_list_push(&back, j);
    w->held = keep;
    w->ready = back;
}

struct loop_state {
    int sfd;
    long long mq_retry_at;
    int mq_backoff;
    long long drain_until;
    int signals;
};

static void
worker_mq_lost(struct worker *w, struct loop_state *ls)
{
    if (!mq_active(w->mq))
        return; /* already down, reconnect scheduled */
    log_warn("broker connection lost: %s", mq_last_error(w->mq));
    mq_disconnect(w->mq);
    worker_drop_ready(w);
    ls->mq_retry_at = clock_mono_ms() + worker_backoff(&ls->mq_backoff);
}

static void
worker_mq_try(struct worker *w, struct loop_state *ls)
{
    char err[256];

    if (mq_connected(w->mq) || w->stopping || clock_mono_ms() < ls->mq_retry_at)
        return;
    if (mq_connect(w->mq, err, sizeof(err)) != 0) {
        int d = worker_backoff(&ls->mq_backoff);

        log_warn("broker: %s; retrying in %d ms", err, d);
        ls->mq_retry_at = clock_mono_ms() + d;
        return;
    }
    ls->mq_backoff = 0;
    log_info("broker connected; consuming %s", w->spec->queue);
}

static int
worker_db_ready(struct worker *w)
{
    int d;

    if (db_connected(w->db))
        return 1;
    if (clock_mono_ms() < w->db_retry_at)
        return 0;
    if (db_connect(w->db) == 0) {
        w->db_backoff_ms = 0;
        log_info("database connected");
        return 1;
    }
    d = worker_backoff(&w->db_backoff_ms);
    log_warn("database: %s; retrying in %d ms", w->db->errmsg, d);
    w->db_retry_at = clock_mono_ms() + d;
    return 0;
}

/* Runs what can run now: finished async jobs first, then new ones. */
static void
worker_work(struct worker *w, struct loop_state *ls)
{
    int max = w->spec->batch_max > 0 ? w->spec->batch_max : 1;
    int rc;

    for (;;) {
        struct job_list *from;

        worker_release_held(w);
        if (!(w->done.head || (w->ready.head && !w->stopping)) ||
            !worker_db_ready(w))
            break;
        from = w->done.head ? &w->done : &w->ready;

        rc = batch_run(w, from, max);
        if (rc == -2) { /* database lost; jobs kept */
            w->db_retry_at =
                clock_mono_ms() + worker_backoff(&w->db_backoff_ms);
            return;
        }
        if (rc != 0) {
            worker_mq_lost(w, ls);
            return;
        }
    }
}

static void
worker_signal(struct worker *w, struct loop_state *ls)
{
    struct signalfd_siginfo si;

    while (read(ls->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (++ls->signals > 1) {
            log_warn("second signal: exiting now");
            exit(1);
        }
        log_info("signal %u: finishing in-flight work, then exiting",
                 si.ssi_signo);
        w->stopping = 1;
        ls->drain_until = clock_mono_ms() + WORKER_DRAIN_MS;
        if (mq_connected(w->mq) && mq_cancel(w->mq) != 0)
            worker_mq_lost(w, ls);
        worker_drop_ready(w);
    }
}

static int
worker_inflight(struct worker *w)
{
    return w->pending + w->done.n +
           (w->spec->inflight ? w->spec->inflight(w) : 0);
}

static void
worker_loop(struct worker *w, struct loop_state *ls)
{
    static struct pollfd fds[WORKER_MAX_FDS];

    for (;;) {
        int nfd = 0, extra = 0, timeout = 1000;

        worker_mq_try(w, ls);
        if (mq_connected(w->mq) && mq_pump(w->mq, worker_on_delivery, w) != 0)
            worker_mq_lost(w, ls);
        worker_work(w, ls);
        if (w->stopping &&
            (worker_inflight(w) == 0 || clock_mono_ms() > ls->drain_until))
            break;

        fds[nfd].fd = ls->sfd;
        fds[nfd++].events = POLLIN;
        if (mq_connected(w->mq)) {
            fds[nfd].fd = mq_fd(w->mq);
            fds[nfd++].events = POLLIN;
            if (mq_buffered(w->mq))
                timeout = 0;
            /* Wake up in time to send heartbeats. */
            if (w->cfg.amqp.heartbeat_seconds > 0 &&
                timeout > (int)w->cfg.amqp.heartbeat_seconds * 250)
                timeout = (int)w->cfg.amqp.heartbeat_seconds * 250;
        }
        if ((w->ready.head && !w->stopping) || w->done.head) {
            long long wait = w->db_retry_at - clock_mono_ms();

            timeout = wait <= 0 ? 0 : (wait < timeout ? (int)wait : timeout);
        }
        if (w->spec->poll_fill)
            extra = w->spec->poll_fill(w, fds + nfd, WORKER_MAX_FDS - nfd,
                                       &timeout);
        if (poll(fds, (nfds_t)(nfd + extra), timeout) < 0 && errno != EINTR)
            fatal("poll: %s", strerror(errno));
        if (fds[0].revents & POLLIN)
            worker_signal(w, ls);
        if (w->spec->poll_run)
            w->spec->poll_run(w, fds + nfd, extra);
    }
}

static int
worker_setup_signals(void)
{
    sigset_t set;
    int fd;

    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
        fatal("sigprocmask: %s", strerror(errno));
    fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        fatal("signalfd: %s", strerror(errno));
    return fd;
}

int
worker_main(int argc, char **argv, const struct worker_spec *spec)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check", no_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0}};
    struct worker w;
    struct loop_state ls;
    struct mq_options mo;
    const char *config = NULL;
    enum log_level lvl;
    char err[512];
    int c, check = 0;

    memset(&w, 0, sizeof(w));
    memset(&ls, 0, sizeof(ls));
    w.spec = spec;
    log_open(spec->name);
    while ((c = getopt_long(argc, argv, "c:khV", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'k': check = 1; break;
        case 'h': worker_usage(spec, stdout); return 0;
        case 'V': printf("%s %s\n", spec->name, MFA_VERSION); return 0;
        default: worker_usage(spec, stderr); return 2;
        }
    }
    crypto_setup();
    if (mfa_config_load(&w.cfg, config, err, sizeof(err)) != 0)
        fatal("configuration: %s", err);
    if (log_level_parse(w.cfg.log.level, &lvl) == 0)
        log_set_level(lvl);
    w.keys = keys_load(w.cfg.keys.master_key_file, w.cfg.keys.master_key, err,
                       sizeof(err));
    if (w.keys == NULL)
        fatal("%s", err);
    if (check) {
        printf("%s: configuration and keys ok\n", spec->name);
        goto out;
    }
    ls.sfd = worker_setup_signals();
    w.db = db_new(w.cfg.postgres.conninfo);
    memset(&mo, 0, sizeof(mo));
    mo.name = spec->name;
    mo.url = w.cfg.amqp.url;
    mo.heartbeat = (int)w.cfg.amqp.heartbeat_seconds;
    mo.prefetch = (int)w.cfg.amqp.prefetch;
    mo.confirm_timeout_ms = (int)w.cfg.amqp.confirm_timeout_ms;
    mo.consume = spec->queue;
    mo.quorum = strcmp(w.cfg.amqp.queue_type, "quorum") == 0;
    mo.delivery_limit = (int)w.cfg.amqp.delivery_limit;
    mo.delays = w.cfg.retry.delays_seconds.v;
    mo.ndelays = w.cfg.retry.delays_seconds.n;
    w.mq = mq_new(&mo);
    if (spec->init && spec->init(&w) != 0)
        fatal("%s: initialisation failed", spec->name);
    log_info("%s %s starting", spec->name, MFA_VERSION);
    worker_loop(&w, &ls);
    log_info("%s stopped", spec->name);
    if (spec->fini)
        spec->fini(&w);
    worker_drop_ready(&w);
    while (w.done.head)
        job_free(job_list_pop(&w.done));
    mq_free(w.mq);
    db_free(w.db);
    close(ls.sfd);
out:
    keys_free(w.keys);
    mfa_config_free(&w.cfg);
    return 0;
}
