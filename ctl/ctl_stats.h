/*
 * ctl_stats.h - the database figures mfactl status and metrics share:
 * deliveries per channel over a recent window and the state of the SMS
 * settings. Read through the operator views (schema/004, 090), so they
 * work as mfa_operator.
 */
#ifndef CTL_CTL_STATS_H
#define CTL_CTL_STATS_H

#include "mfa/db.h"

#define CTL_CHANNELS 2 /* email, sms: always both, in that order */

struct ctl_channel_stats {
    const char *channel;
    long total, queued, sent, failed, dropped;
    long retried;        /* attempts > 1: more than one provider call */
    int have_latency;    /* at least one sent in the window */
    double p50_s, p95_s; /* created_at -> sent_at, seconds */
};

/* Deliveries created in the last window_s seconds. 0 or -1 (db->errmsg). */
int ctl_stats_deliveries(struct db *db, long window_s,
                         struct ctl_channel_stats out[CTL_CHANNELS])
    __attribute__((warn_unused_result));

struct ctl_sms_state {
    int configured; /* SMS may be offered */
    char why[160];  /* what is missing when not configured */
};

/* The SMS settings row: complete (client_id, account_sid, from set) with
 * a sealed secret, by mfa-codes' rule (methods.h). 0 or -1 (db->errmsg). */
int ctl_stats_sms(struct db *db, struct ctl_sms_state *out)
    __attribute__((warn_unused_result));

#endif
