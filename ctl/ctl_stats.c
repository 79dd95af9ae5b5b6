/*
 * ctl_stats.c - delivery figures and SMS settings state (ctl_stats.h).
 *
 * Callers: cmd_status.c, cmd_metrics.c, cmd_user.c. One aggregate query
 * per figure, bounded by the deliveries_created index, so a health check
 * every few seconds costs little even with a large table.
 *
 * Security notes: reads settings_state (secret_set, never the sealed
 * secret). Nothing here prints a destination.
 */
#include "ctl/ctl_stats.h"
#include "mfa/methods.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char SQL_DELIVERIES[] =
    "SELECT channel, count(*), "
    " count(*) FILTER (WHERE status = 'queued'), "
    " count(*) FILTER (WHERE status = 'sent'), "
    " count(*) FILTER (WHERE status = 'failed'), "
    " count(*) FILTER (WHERE status = 'dropped'), "
    " count(*) FILTER (WHERE attempts > 1), "
    " percentile_cont(0.5) WITHIN GROUP "
    "  (ORDER BY extract(epoch FROM sent_at - created_at)) "
    "  FILTER (WHERE sent_at IS NOT NULL), "
    " percentile_cont(0.95) WITHIN GROUP "
    "  (ORDER BY extract(epoch FROM sent_at - created_at)) "
    "  FILTER (WHERE sent_at IS NOT NULL) "
    "FROM mfa.delivery_status "
    "WHERE created_at > now() - make_interval(secs => $1::int) "
    "GROUP BY channel";

static const char SQL_SMS[] =
    "SELECT value->>'client_id', value->>'account_sid', value->>'from', "
    " secret_set, value::text "
    "FROM mfa.settings_state WHERE name = 'sms'";

static long
stats_long(const PGresult *res, int row, int col)
{
    const char *v = db_get(res, row, col);

    return v ? strtol(v, NULL, 10) : 0;
}

int
ctl_stats_deliveries(struct db *db, long window_s,
                     struct ctl_channel_stats out[CTL_CHANNELS])
{
    static const char *const names[CTL_CHANNELS] = {"email", "sms"};
    char win[32];
    const char *p[1] = {win};
    PGresult *res;

    memset(out, 0, sizeof(*out) * CTL_CHANNELS);
    for (int i = 0; i < CTL_CHANNELS; i++)
        out[i].channel = names[i];
    snprintf(win, sizeof(win), "%ld", window_s);
    res = db_query(db, SQL_DELIVERIES, 1, p);
    if (res == NULL)
        return -1;
    for (int r = 0; r < PQntuples(res); r++) {
        const char *ch = db_get(res, r, 0);
        struct ctl_channel_stats *s = NULL;

        for (int i = 0; i < CTL_CHANNELS; i++)
            if (ch && strcmp(ch, names[i]) == 0)
                s = &out[i];
        if (s == NULL)
            continue; /* the table's CHECK allows no other channel */
        s->total = stats_long(res, r, 1);
        s->queued = stats_long(res, r, 2);
        s->sent = stats_long(res, r, 3);
        s->failed = stats_long(res, r, 4);
        s->dropped = stats_long(res, r, 5);
        s->retried = stats_long(res, r, 6);
        if (db_get(res, r, 7) != NULL) {
            s->have_latency = 1;
            s->p50_s = strtod(db_get(res, r, 7), NULL);
            s->p95_s =
                db_get(res, r, 8) ? strtod(db_get(res, r, 8), NULL) : s->p50_s;
        }
    }
    PQclear(res);
    return 0;
}

static int
stats_blank(const char *s)
{
    return s == NULL || s[strspn(s, " \t")] == '\0';
}

int
ctl_stats_sms(struct db *db, struct ctl_sms_state *out)
{
    const char *client, *sid, *from, *secret;
    PGresult *res;

    memset(out, 0, sizeof(*out));
    res = db_query(db, SQL_SMS, 0, NULL);
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 0) {
        snprintf(out->why, sizeof(out->why),
                 "not configured (mfactl settings sms set)");
        goto out;
    }
    client = db_get(res, 0, 0);
    sid = db_get(res, 0, 1);
    from = db_get(res, 0, 2);
    secret = db_get(res, 0, 3);
    /* The decision is mfa-codes' own, so status never disagrees with
     * what logins are offered; the checks below only explain it. */
    out->configured = methods_sms_settings_complete(
        db_get(res, 0, 4), secret != NULL && strcmp(secret, "t") == 0);
    if (out->configured)
        goto out;
    if (stats_blank(client))
        snprintf(out->why, sizeof(out->why), "incomplete: no client_id");
    else if (stats_blank(sid))
        snprintf(out->why, sizeof(out->why), "incomplete: no account_sid");
    else if (stats_blank(from))
        snprintf(out->why, sizeof(out->why), "incomplete: no from number");
    else if (secret == NULL || strcmp(secret, "t") != 0)
        snprintf(out->why, sizeof(out->why), "incomplete: no client secret");
    else
        snprintf(out->why, sizeof(out->why), "incomplete");
out:
    PQclear(res);
    return 0;
}
