/*
 * client.c - the portal, as the benchmark's interactive client.
 *
 * bench/run.py uses it for the latency figures: it is the producer
 * library (producer/mfa_producer.h) doing what a portal does, one
 * mfa_producer_call() per event (publish, confirm, wait for the reply
 * over direct reply-to), from a pool of threads with one handle each.
 *
 * Open loop: event i is due at t0 + i/rate whatever happened to the
 * earlier ones, and its latency is counted from when it was due, not
 * from when a free thread got round to it, so a slow system cannot
 * hide its queueing by slowing the client down (coordinated omission).
 * The threads' lag behind the schedule is reported, so the client can
 * be seen not to be the limit.
 *
 *     client FILE --rate R --out OUT [--threads 64] [--timeout-ms 30000]
 * FILE: "event_id TAB type TAB data-json" per line, sent in order.
 * OUT: "event_id TAB due_us TAB start_us TAB done_us TAB rc TAB status"
 * (CLOCK_REALTIME microseconds; rc the mfa_producer_status; status the
 * reply's "status"). Prints a JSON summary on stdout: cpu_run_s is the
 * client's CPU from the start of the schedule (connecting excluded).
 * Environment: MFA_AMQP_URL.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "producer/mfa_producer.h"

#define CLIENT_MAX_THREADS 512

struct client_ev {
    char *id;
    char *type;
    char *data;
    long long due, start, done;
    int rc;
    char status[24];
};

struct client {
    struct client_ev *ev;
    size_t n;
    atomic_size_t next;
    double rate;
    atomic_llong t0;
    int timeout_ms;
    const char *url;
    atomic_int failed_connect;
};

static long long
client_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
client_sleep_until(long long t_us)
{
    struct timespec ts;

    ts.tv_sec = t_us / 1000000;
    ts.tv_nsec = (t_us % 1000000) * 1000;
    while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static void
client_status(const char *reply, char *out, size_t n)
{
    const char *v = reply ? strstr(reply, "\"status\"") : NULL;
    size_t k = 0;

    out[0] = '\0';
    if (v == NULL)
        return;
    v += 8;
    while (*v == ' ' || *v == ':' || *v == '"')
        v++;
    while (*v && *v != '"' && k + 1 < n)
        out[k++] = *v++;
    out[k] = '\0';
}

static void *
client_thread(void *arg)
{
    struct client *c = arg;
    struct mfa_producer_options o = {.url = c->url, .name = "bench-client"};
    struct mfa_producer *p;
    char err[512];

    p = mfa_producer_new(&o, err, sizeof(err));
    if (p == NULL || mfa_producer_connect(p, err, sizeof(err)) != 0) {
        fprintf(stderr, "client: %s\n", err);
        atomic_fetch_add(&c->failed_connect, 1);
        mfa_producer_free(p);
        return NULL;
    }
    /* Wait for the common start so connecting is not measured. */
    while (atomic_load(&c->t0) == 0)
        client_sleep_until(client_now_us() + 1000);
    for (;;) {
        size_t i = atomic_fetch_add(&c->next, 1);
        struct client_ev *e;
        char *reply = NULL;

        if (i >= c->n)
            break;
        e = &c->ev[i];
        e->due = atomic_load(&c->t0) + (long long)((double)i * 1e6 / c->rate);
        client_sleep_until(e->due);
        e->start = client_now_us();
        e->rc = mfa_producer_call(p, e->type, e->data, e->id, c->timeout_ms,
                                  NULL, &reply, err, sizeof(err));
        e->done = client_now_us();
        client_status(reply, e->status, sizeof(e->status));
        free(reply);
    }
    mfa_producer_free(p);
    return NULL;
}

static double
client_cpu(const struct rusage *r)
{
    return (double)r->ru_utime.tv_sec + r->ru_utime.tv_usec / 1e6 +
           (double)r->ru_stime.tv_sec + r->ru_stime.tv_usec / 1e6;
}

static void
client_load(struct client *c, const char *path)
{
    FILE *in = fopen(path, "r");
    size_t cap = 1024;
    char *line = NULL;
    size_t lcap = 0;

    if (in == NULL) {
        perror(path);
        exit(1);
    }
    c->ev = calloc(cap, sizeof(*c->ev));
    while (c->ev && getline(&line, &lcap, in) > 0) {
        char *t, *d;

        line[strcspn(line, "\r\n")] = '\0';
        if ((t = strchr(line, '\t')) == NULL ||
            (d = strchr(t + 1, '\t')) == NULL)
            continue;
        *t++ = '\0';
        *d++ = '\0';
        if (c->n == cap) {
            cap *= 2;
            c->ev = realloc(c->ev, cap * sizeof(*c->ev));
            if (c->ev == NULL)
                break;
            memset(c->ev + c->n, 0, (cap - c->n) * sizeof(*c->ev));
        }
        c->ev[c->n].id = strdup(line);
        c->ev[c->n].type = strdup(t);
        c->ev[c->n].data = strdup(d);
        c->n++;
    }
    if (c->ev == NULL) {
        fprintf(stderr, "client: out of memory\n");
        exit(1);
    }
    free(line);
    fclose(in);
}

int
main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"rate", required_argument, NULL, 'r'},
        {"out", required_argument, NULL, 'o'},
        {"threads", required_argument, NULL, 't'},
        {"timeout-ms", required_argument, NULL, 'T'},
        {NULL, 0, NULL, 0}};
    static pthread_t th[CLIENT_MAX_THREADS];
    struct client c = {.rate = 0, .timeout_ms = 30000};
    const char *outpath = NULL;
    int nth = 64, opt;
    long long lag_max = 0, t_end;
    struct rusage ru, ru0;
    FILE *out;

    while ((opt = getopt_long(argc, argv, "r:o:t:T:", lo, NULL)) != -1) {
        switch (opt) {
        case 'r': c.rate = strtod(optarg, NULL); break;
        case 'o': outpath = optarg; break;
        case 't': nth = (int)strtol(optarg, NULL, 10); break;
        case 'T': c.timeout_ms = (int)strtol(optarg, NULL, 10); break;
        default: return 2;
        }
    }
    c.url = getenv("MFA_AMQP_URL");
    if (optind >= argc || outpath == NULL || c.rate <= 0 || c.url == NULL ||
        nth < 1 || nth > CLIENT_MAX_THREADS) {
        fprintf(stderr, "usage: client FILE --rate R --out OUT "
                        "[--threads N] (MFA_AMQP_URL set)\n");
        return 2;
    }
    client_load(&c, argv[optind]);
    for (int i = 0; i < nth; i++)
        pthread_create(&th[i], NULL, client_thread, &c);
    /* Give every thread time to connect, then start the clock. */
    client_sleep_until(client_now_us() + 1500000);
    getrusage(RUSAGE_SELF, &ru0);
    atomic_store(&c.t0, client_now_us() + 100000);
    for (int i = 0; i < nth; i++)
        pthread_join(th[i], NULL);
    t_end = client_now_us();
    out = fopen(outpath, "w");
    if (out == NULL) {
        perror(outpath);
        return 1;
    }
    for (size_t i = 0; i < c.n; i++) {
        struct client_ev *e = &c.ev[i];

        if (e->start - e->due > lag_max)
            lag_max = e->start - e->due;
        fprintf(out, "%s\t%lld\t%lld\t%lld\t%d\t%s\n", e->id, e->due, e->start,
                e->done, e->rc, e->status);
    }
    fclose(out);
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"events\": %zu, \"threads\": %d, \"failed_connect\": %d, "
           "\"seconds\": %.3f, \"max_start_lag_ms\": %.3f, \"cpu_s\": %.3f, "
           "\"cpu_run_s\": %.3f}\n",
           c.n, nth, atomic_load(&c.failed_connect),
           (t_end - atomic_load(&c.t0)) / 1e6, lag_max / 1e3,
           (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
               (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6,
           client_cpu(&ru) - client_cpu(&ru0));
    return 0;
}
