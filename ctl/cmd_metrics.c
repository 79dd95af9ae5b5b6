/*
 * cmd_metrics.c - `mfactl metrics`: the Prometheus text exposition format
 * (version 0.0.4) for node_exporter's textfile collector:
 *
 *   mfactl metrics > /var/lib/node_exporter/mfa.prom.$$ &&
 *       mv /var/lib/node_exporter/mfa.prom.$$ /var/lib/node_exporter/mfa.prom
 *
 * Queue depths and consumers (passive declares, like `mfactl status`),
 * deliveries of the last hour by channel and status with their latency,
 * login outcomes, wrong codes and lockouts of the last hour, and whether
 * SMS is configured. Figures over a window are gauges: the database keeps
 * rows, not counters, and a gauge over a fixed window needs no rate().
 * A source that cannot be read is reported as mfa_up{source=...} 0 and the
 * exit status is 1, but everything else is still written, so the rename
 * can be unconditional and alerts see the outage.
 *
 * Security notes: only counts leave this file; labels are our own queue,
 * channel and status names, escaped all the same.
 */
#include "ctl/ctl.h"
#include "ctl/ctl_mq.h"
#include "ctl/ctl_stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_WINDOW_S 3600

static const char SQL_LOGINS[] =
    "SELECT status, count(*) FROM mfa.operator_logins "
    "WHERE created_at > now() - interval '1 hour' GROUP BY status";
/* A login verified or locked in the last hour opened at most login.ttl
 * before that: the bound on created_at lets the index do the work. */
static const char SQL_OUTCOMES[] =
    "SELECT "
    " (SELECT count(*) FROM mfa.operator_logins "
    "   WHERE verified_at > now() - interval '1 hour' "
    "   AND created_at > now() - interval '1 hour' "
    "       - make_interval(secs => $1::int)), "
    " (SELECT count(*) FROM mfa.verify_failures "
    "   WHERE at > now() - interval '1 hour'), "
    " (SELECT count(*) FROM mfa.operator_logins "
    "   WHERE locked_at > now() - interval '1 hour' "
    "   AND created_at > now() - interval '1 hour' "
    "       - make_interval(secs => $1::int))";

static const char *const login_states[] = {
    "pending", "code_sent", "verified", "locked", "expired", "cancelled", NULL};

static void
metrics_head(const char *name, const char *type, const char *help)
{
    printf("# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value as the format wants it: \\, \" and \n escaped. */
static void
metrics_label(const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            printf("\\%c", *v);
        else if (*v == '\n')
            printf("\\n");
        else
            putchar(*v);
    }
}

static void
metrics_queues(const struct ctl_queue *q, size_t n)
{
    static const struct {
        const char *name, *help;
    } m[] = {
        {"mfa_queue_exists", "1 when the queue exists on the broker."},
        {"mfa_queue_messages_ready",
         "Messages ready for delivery (unacknowledged ones are not visible "
         "over AMQP)."},
        {"mfa_queue_consumers", "Consumers of the queue."},
    };

    for (size_t k = 0; k < sizeof(m) / sizeof(m[0]); k++) {
        metrics_head(m[k].name, "gauge", m[k].help);
        for (size_t i = 0; i < n; i++) {
            long v = k == 0   ? q[i].exists
                     : k == 1 ? (long)q[i].ready
                              : (long)q[i].consumers;

            if (k > 0 && !q[i].exists)
                continue;
            printf("%s{queue=\"", m[k].name);
            metrics_label(q[i].name);
            printf("\",kind=\"%s\"} %ld\n", ctl_qkind_name(q[i].kind), v);
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (q[i].kind != CTL_Q_DEAD || !q[i].exists)
            continue;
        metrics_head("mfa_dead_letters", "gauge",
                     "Messages in the dead-letter queue (mfactl dlq list).");
        printf("mfa_dead_letters %u\n", q[i].ready);
    }
}

static void
metrics_deliveries(const struct ctl_channel_stats *ch)
{
    metrics_head("mfa_deliveries_last_hour", "gauge",
                 "Deliveries created in the last hour by channel and "
                 "current status.");
    for (int i = 0; i < CTL_CHANNELS; i++) {
        const struct ctl_channel_stats *s = &ch[i];
        const char *st[] = {"queued", "sent", "failed", "dropped"};
        long v[] = {s->queued, s->sent, s->failed, s->dropped};

        for (int k = 0; k < 4; k++)
            printf("mfa_deliveries_last_hour{channel=\"%s\",status=\"%s\"} "
                   "%ld\n",
                   s->channel, st[k], v[k]);
    }
    metrics_head("mfa_deliveries_retried_last_hour", "gauge",
                 "Deliveries of the last hour that took more than one "
                 "provider call.");
    for (int i = 0; i < CTL_CHANNELS; i++)
        printf("mfa_deliveries_retried_last_hour{channel=\"%s\"} %ld\n",
               ch[i].channel, ch[i].retried);
    metrics_head("mfa_delivery_latency_seconds", "gauge",
                 "Time from queueing to sending of the last hour's "
                 "deliveries (quantile 0.5 and 0.95).");
    for (int i = 0; i < CTL_CHANNELS; i++) {
        if (!ch[i].have_latency)
            continue;
        printf("mfa_delivery_latency_seconds{channel=\"%s\",quantile=\"0.5\"}"
               " %.3f\n",
               ch[i].channel, ch[i].p50_s);
        printf("mfa_delivery_latency_seconds{channel=\"%s\","
               "quantile=\"0.95\"} %.3f\n",
               ch[i].channel, ch[i].p95_s);
    }
}

struct login_figures {
    long by_status[6]; /* in login_states order */
    long verified, wrong, locked;
};

static int
metrics_logins_read(struct db *db, long login_ttl_s, struct login_figures *f)
{
    PGresult *res = db_query(db, SQL_LOGINS, 0, NULL);
    PGresult *out = NULL;
    char ttl[32];
    const char *p[1] = {ttl};
    int rc = -1;

    memset(f, 0, sizeof(*f));
    snprintf(ttl, sizeof(ttl), "%ld", login_ttl_s);
    if (res == NULL)
        goto done;
    out = db_query(db, SQL_OUTCOMES, 1, p);
    if (out == NULL || PQntuples(out) != 1)
        goto done;
    for (int k = 0; login_states[k] != NULL; k++)
        for (int r = 0; r < PQntuples(res); r++)
            if (strcmp(db_get(res, r, 0), login_states[k]) == 0)
                f->by_status[k] = strtol(db_get(res, r, 1), NULL, 10);
    f->verified = strtol(db_get(out, 0, 0), NULL, 10);
    f->wrong = strtol(db_get(out, 0, 1), NULL, 10);
    f->locked = strtol(db_get(out, 0, 2), NULL, 10);
    rc = 0;
done:
    if (res != NULL)
        PQclear(res);
    if (out != NULL)
        PQclear(out);
    return rc;
}

static void
metrics_logins(const struct login_figures *f)
{
    metrics_head("mfa_logins_last_hour", "gauge",
                 "Login challenges opened in the last hour by status.");
    for (int k = 0; login_states[k] != NULL; k++)
        printf("mfa_logins_last_hour{status=\"%s\"} %ld\n", login_states[k],
               f->by_status[k]);
    metrics_head("mfa_verifications_last_hour", "gauge",
                 "Code checks of the last hour by outcome.");
    printf("mfa_verifications_last_hour{outcome=\"verified\"} %ld\n",
           f->verified);
    printf("mfa_verifications_last_hour{outcome=\"wrong_code\"} %ld\n",
           f->wrong);
    metrics_head("mfa_lockouts_last_hour", "gauge",
                 "Logins locked after too many wrong codes in the last hour.");
    printf("mfa_lockouts_last_hour %ld\n", f->locked);
}

int
cmd_metrics(struct ctl *c, int argc, char **argv)
{
    struct ctl_channel_stats ch[CTL_CHANNELS];
    struct ctl_sms_state sms;
    struct login_figures lf;
    struct ctl_queue *q;
    struct ctl_mq m;
    struct db *db;
    size_t nq = 0;
    int mq_ok = 0, db_ok = 0;

    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "usage: mfactl metrics\n");
        return 2;
    }
    q = ctl_queues_list(&c->cfg, &nq);
    if (ctl_mq_open(c, &m) == 0 && ctl_mq_inspect(&m, q, nq) == 0)
        mq_ok = 1;
    else
        fprintf(stderr, "mfactl metrics: broker: %s\n", m.err);
    ctl_mq_close(&m);

    db = db_new(c->cfg.postgres.conninfo);
    /* Everything is read before anything is printed: each metric family
     * must come out in one piece. */
    if (db_connect(db) == 0 &&
        ctl_stats_deliveries(db, METRICS_WINDOW_S, ch) == 0 &&
        ctl_stats_sms(db, &sms) == 0 &&
        metrics_logins_read(db, c->cfg.login.ttl_seconds, &lf) == 0)
        db_ok = 1;
    else
        fprintf(stderr, "mfactl metrics: database: %s\n", db->errmsg);

    metrics_head("mfa_up", "gauge",
                 "1 when mfactl could read the source (broker, database).");
    printf("mfa_up{source=\"broker\"} %d\n", mq_ok);
    printf("mfa_up{source=\"database\"} %d\n", db_ok);
    if (mq_ok)
        metrics_queues(q, nq);
    if (db_ok) {
        metrics_deliveries(ch);
        metrics_head("mfa_sms_configured", "gauge",
                     "1 when the SMS settings are complete (SMS can be "
                     "offered).");
        printf("mfa_sms_configured %d\n", sms.configured);
        metrics_logins(&lf);
    }
    db_free(db);
    free(q);
    return mq_ok && db_ok ? 0 : 1;
}
