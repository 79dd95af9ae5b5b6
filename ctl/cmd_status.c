/*
 * cmd_status.c - `mfactl status [--json]`: is Portal MFA healthy?
 *
 * For every queue of the topology (work queues, their retry tiers,
 * mfa.dead) the messages ready and the consumers, from a passive
 * queue.declare (no management plugin needed); the last hour's deliveries
 * per channel from PostgreSQL; whether SMS is configured. Exit status 1
 * when something needs attention: a work queue without consumers (its
 * events are piling up), a queue missing (no worker has declared the
 * topology), dead letters, or a server that cannot be reached. That makes
 * it a health check for cron, a container or a load balancer.
 *
 * Unacknowledged messages (being processed right now) are not reported:
 * AMQP's queue.declare-ok has only the ready count and the consumers.
 * `rabbitmqctl list_queues name messages_unacknowledged` or the
 * management UI show them.
 */
#include "ctl/ctl.h"
#include "ctl/ctl_mq.h"
#include "ctl/ctl_stats.h"
#include "util/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#define STATUS_WINDOW_S 3600

struct status {
    struct ctl_queue *q;
    size_t nq;
    int mq_ok;
    char mq_err[256];
    int db_ok;
    char db_err[512];
    struct ctl_channel_stats ch[CTL_CHANNELS];
    struct ctl_sms_state sms;
    struct json_object *problems; /* array of strings */
};

static void __attribute__((format(printf, 2, 3)))
status_problem(struct status *st, const char *fmt, ...)
{
    char line[600];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    json_object_array_add(st->problems, json_object_new_string(line));
}

static void
status_collect(struct ctl *c, struct status *st)
{
    struct ctl_mq m;
    struct db *db;

    st->q = ctl_queues_list(&c->cfg, &st->nq);
    st->problems = json_object_new_array();
    if (ctl_mq_open(c, &m) == 0 && ctl_mq_inspect(&m, st->q, st->nq) == 0) {
        st->mq_ok = 1;
    } else {
        snprintf(st->mq_err, sizeof(st->mq_err), "%s", m.err);
        status_problem(st, "broker: %s", st->mq_err);
    }
    ctl_mq_close(&m);
    for (size_t i = 0; st->mq_ok && i < st->nq; i++) {
        const struct ctl_queue *q = &st->q[i];

        if (!q->exists)
            status_problem(st,
                           "%s: queue missing (no worker has declared "
                           "it)",
                           q->name);
        else if (q->kind == CTL_Q_WORK && q->consumers == 0)
            status_problem(st, "%s: no consumers (%u message%s waiting)",
                           q->name, q->ready, q->ready == 1 ? "" : "s");
        else if (q->kind == CTL_Q_DEAD && q->ready > 0)
            status_problem(st, "%s: %u dead letter%s (mfactl dlq list)",
                           q->name, q->ready, q->ready == 1 ? "" : "s");
    }
    db = db_new(c->cfg.postgres.conninfo);
    if (db_connect(db) == 0 &&
        ctl_stats_deliveries(db, STATUS_WINDOW_S, st->ch) == 0 &&
        ctl_stats_sms(db, &st->sms) == 0) {
        st->db_ok = 1;
    } else {
        snprintf(st->db_err, sizeof(st->db_err), "%s", db->errmsg);
        status_problem(st, "database: %s", st->db_err);
    }
    db_free(db);
}

static struct json_object *
status_num_or_null(int have, double v)
{
    return have ? json_object_new_double(v) : NULL;
}

static void
status_json(const struct status *st)
{
    struct json_object *o = json_object_new_object();
    struct json_object *qs = json_object_new_array();
    struct json_object *dl = json_object_new_object();
    struct json_object *sms = json_object_new_object();

    json_object_object_add(
        o, "healthy",
        json_object_new_boolean(json_object_array_length(st->problems) == 0));
    json_object_object_add(o, "problems", json_object_get(st->problems));
    json_object_object_add(
        o, "broker", json_object_new_string(st->mq_ok ? "ok" : st->mq_err));
    json_object_object_add(
        o, "database", json_object_new_string(st->db_ok ? "ok" : st->db_err));
    for (size_t i = 0; st->mq_ok && i < st->nq; i++) {
        struct json_object *q = json_object_new_object();
        const struct ctl_queue *x = &st->q[i];

        json_object_object_add(q, "name", json_object_new_string(x->name));
        json_object_object_add(q, "kind",
                               json_object_new_string(ctl_qkind_name(x->kind)));
        json_object_object_add(q, "exists", json_object_new_boolean(x->exists));
        json_object_object_add(
            q, "ready", x->exists ? json_object_new_int64(x->ready) : NULL);
        json_object_object_add(q, "consumers",
                               x->exists ? json_object_new_int64(x->consumers)
                                         : NULL);
        /* Not available over AMQP: say so instead of printing a 0. */
        json_object_object_add(q, "unacked", NULL);
        json_object_array_add(qs, q);
    }
    json_object_object_add(o, "queues", qs);
    json_object_object_add(dl, "window_seconds",
                           json_object_new_int(STATUS_WINDOW_S));
    for (int i = 0; st->db_ok && i < CTL_CHANNELS; i++) {
        const struct ctl_channel_stats *s = &st->ch[i];
        struct json_object *c = json_object_new_object();

        json_object_object_add(c, "total", json_object_new_int64(s->total));
        json_object_object_add(c, "queued", json_object_new_int64(s->queued));
        json_object_object_add(c, "sent", json_object_new_int64(s->sent));
        json_object_object_add(c, "failed", json_object_new_int64(s->failed));
        json_object_object_add(c, "retried", json_object_new_int64(s->retried));
        json_object_object_add(c, "dropped", json_object_new_int64(s->dropped));
        json_object_object_add(c, "median_seconds",
                               status_num_or_null(s->have_latency, s->p50_s));
        json_object_object_add(c, "p95_seconds",
                               status_num_or_null(s->have_latency, s->p95_s));
        json_object_object_add(dl, s->channel, c);
    }
    json_object_object_add(o, "deliveries", dl);
    if (st->db_ok) {
        json_object_object_add(sms, "configured",
                               json_object_new_boolean(st->sms.configured));
        json_object_object_add(
            sms, "detail",
            st->sms.configured ? NULL : json_object_new_string(st->sms.why));
        json_object_object_add(o, "sms", sms);
    } else {
        json_object_put(sms);
        json_object_object_add(o, "sms", NULL);
    }
    printf("%s\n",
           json_object_to_json_string_ext(
               o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
}

/* "1.2s" or "-" */
static void
status_secs(int have, double v, char *out, size_t n)
{
    if (have)
        snprintf(out, n, "%.1fs", v);
    else
        snprintf(out, n, "-");
}

static void
status_table(const struct status *st)
{
    size_t np = json_object_array_length(st->problems);
    char a[24], b[24];

    printf("QUEUE                                  KIND    READY  CONSUMERS\n");
    if (!st->mq_ok)
        printf("  (broker unreachable: %s)\n", st->mq_err);
    for (size_t i = 0; st->mq_ok && i < st->nq; i++) {
        const struct ctl_queue *q = &st->q[i];

        if (q->exists)
            printf("%-38s %-6s %6u %10u\n", q->name, ctl_qkind_name(q->kind),
                   q->ready, q->consumers);
        else
            printf("%-38s %-6s %6s %10s\n", q->name, ctl_qkind_name(q->kind),
                   "-", "missing");
    }
    printf("(ready = waiting to be delivered; messages being processed "
           "(unacked)\n are not visible over AMQP: rabbitmqctl list_queues "
           "name messages_unacknowledged)\n\n");
    printf("DELIVERIES, LAST HOUR   TOTAL  SENT  FAILED  RETRIED  DROPPED  "
           "QUEUED  MEDIAN    P95\n");
    if (!st->db_ok)
        printf("  (database unreachable: %s)\n", st->db_err);
    for (int i = 0; st->db_ok && i < CTL_CHANNELS; i++) {
        const struct ctl_channel_stats *s = &st->ch[i];

        status_secs(s->have_latency, s->p50_s, a, sizeof(a));
        status_secs(s->have_latency, s->p95_s, b, sizeof(b));
        printf("%-21s %7ld %5ld %7ld %8ld %8ld %7ld %7s %6s\n", s->channel,
               s->total, s->sent, s->failed, s->retried, s->dropped, s->queued,
               a, b);
    }
    printf("\nSMS: %s\n", !st->db_ok           ? "unknown"
                          : st->sms.configured ? "configured"
                                               : st->sms.why);
    if (np == 0) {
        printf("\nstatus: healthy\n");
        return;
    }
    printf("\nstatus: NEEDS ATTENTION\n");
    for (size_t i = 0; i < np; i++)
        printf("  - %s\n", json_object_get_string(
                               json_object_array_get_idx(st->problems, i)));
}

int
cmd_status(struct ctl *c, int argc, char **argv)
{
    struct status st;
    int as_json = 0, rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            as_json = 1;
        } else {
            fprintf(stderr, "usage: mfactl status [--json]\n");
            return 2;
        }
    }
    memset(&st, 0, sizeof(st));
    status_collect(c, &st);
    if (as_json)
        status_json(&st);
    else
        status_table(&st);
    rc = json_object_array_length(st.problems) == 0 ? 0 : 1;
    json_object_put(st.problems);
    free(st.q);
    return rc;
}
