/*
 * cmd_dlq.c - `mfactl dlq list|replay|purge`: the dead-letter queue.
 *
 * mfa.dead holds what the workers gave up on (invalid input, retries
 * exhausted) with the reason in x-mfa-error and the queue it came from in
 * x-mfa-origin (the runtime's batch.c); a message the broker dead-lettered
 * itself (quorum delivery limit) has x-death instead, which is read as a
 * fallback. Listing reads with basic.get and keeps every message unacked
 * until the end, then gives them all back (a requeued message would come
 * straight back to the next get): a listing never consumes and shows each
 * message once. A replay republishes through the default exchange to the
 * origin work queue with publisher confirms and mandatory, and acks the
 * dead copy only after the confirm: a crash in between leaves a duplicate,
 * which the workers' inbox absorbs (same event_id), never a loss.
 *
 * Security notes: bodies are never printed (they hold addresses, and a
 * dispatch job holds a sealed code); headers are shown reduced to
 * printable ASCII. A replay may only target one of the four work queues,
 * whatever a forged x-mfa-origin says.
 */
#include "ctl/ctl.h"
#include "ctl/ctl_mq.h"
#include "runtime/topology.h"
#include "util/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <json-c/json.h>

#define DLQ_DEFAULT_LIMIT 50

/* What an operator may see of a dead letter. */
struct dlq_item {
    char event_id[80];
    char type[80];
    char origin[128];
    char reason[256];
    long long dead_at; /* unix seconds, 0 = unknown */
};

static void
dlq_usage(FILE *out)
{
    fprintf(out, "usage: mfactl dlq list [--limit N] [--json]\n"
                 "       mfactl dlq replay EVENT_ID | --all\n"
                 "       mfactl dlq purge [--yes]\n");
}

static const amqp_field_value_t *
dlq_table_get(const amqp_table_t *t, const char *key)
{
    size_t klen = strlen(key);

    for (int i = 0; i < t->num_entries; i++)
        if (t->entries[i].key.len == klen &&
            memcmp(t->entries[i].key.bytes, key, klen) == 0)
            return &t->entries[i].value;
    return NULL;
}

/* The newest x-death entry, for messages the broker dead-lettered. */
static const amqp_table_t *
dlq_xdeath(const amqp_basic_properties_t *p)
{
    const amqp_field_value_t *v = ctl_mq_header(p, "x-death");

    if (v == NULL || v->kind != AMQP_FIELD_KIND_ARRAY ||
        v->value.array.num_entries < 1 ||
        v->value.array.entries[0].kind != AMQP_FIELD_KIND_TABLE)
        return NULL;
    return &v->value.array.entries[0].value.table;
}

static void
dlq_table_str(const amqp_table_t *t, const char *key, char *out, size_t n)
{
    const amqp_field_value_t *v = dlq_table_get(t, key);
    amqp_bytes_t b;

    if (v == NULL || v->kind != AMQP_FIELD_KIND_UTF8)
        return;
    b = v->value.bytes;
    ctl_mq_bytes(b, 1, out, n);
}

static void
dlq_describe(const amqp_message_t *msg, struct dlq_item *it)
{
    const amqp_basic_properties_t *p = &msg->properties;
    const amqp_table_t *xd = dlq_xdeath(p);
    long long v;

    memset(it, 0, sizeof(*it));
    ctl_mq_bytes(p->message_id, !!(p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG),
                 it->event_id, sizeof(it->event_id));
    ctl_mq_bytes(p->type, !!(p->_flags & AMQP_BASIC_TYPE_FLAG), it->type,
                 sizeof(it->type));
    if (ctl_mq_header_str(p, MFA_HDR_ORIGIN, it->origin, sizeof(it->origin)) !=
            0 &&
        xd != NULL)
        dlq_table_str(xd, "queue", it->origin, sizeof(it->origin));
    if (ctl_mq_header_str(p, MFA_HDR_ERROR, it->reason, sizeof(it->reason)) !=
            0 &&
        xd != NULL) {
        char why[64] = "";

        dlq_table_str(xd, "reason", why, sizeof(why));
        snprintf(it->reason, sizeof(it->reason), "broker: %s",
                 why[0] ? why : "dead-lettered");
    }
    if (ctl_mq_header_int(p, MFA_HDR_DEAD_AT, &v) == 0) {
        it->dead_at = v;
    } else if (xd != NULL) {
        const amqp_field_value_t *t = dlq_table_get(xd, "time");

        if (t != NULL && t->kind == AMQP_FIELD_KIND_TIMESTAMP)
            it->dead_at = (long long)t->value.u64;
    }
}

/* "45s", "12m", "3h", "2d" or "?". */
static void
dlq_age(long long dead_at, char *out, size_t n)
{
    long long s = (long long)time(NULL) - dead_at;

    if (dead_at <= 0)
        snprintf(out, n, "?");
    else if (s < 0)
        snprintf(out, n, "0s");
    else if (s < 120)
        snprintf(out, n, "%llds", s);
    else if (s < 7200)
        snprintf(out, n, "%lldm", s / 60);
    else if (s < 172800)
        snprintf(out, n, "%lldh", s / 3600);
    else
        snprintf(out, n, "%lldd", s / 86400);
}

/* Opens the connection and counts mfa.dead. 0 or -1 (printed). */
static int
dlq_open(struct ctl *c, struct ctl_mq *m, uint32_t *count)
{
    struct ctl_queue q;

    memset(&q, 0, sizeof(q));
    snprintf(q.name, sizeof(q.name), "%s", MFA_Q_DEAD);
    if (ctl_mq_open(c, m) != 0 || ctl_mq_inspect(m, &q, 1) != 0) {
        fprintf(stderr, "mfactl dlq: broker: %s\n", m->err);
        return -1;
    }
    if (!q.exists) {
        fprintf(stderr,
                "mfactl dlq: queue %s does not exist (no worker "
                "has started yet?)\n",
                MFA_Q_DEAD);
        return -1;
    }
    *count = q.ready;
    return 0;
}

static struct json_object *
dlq_item_json(const struct dlq_item *it)
{
    struct json_object *o = json_object_new_object();

    json_object_object_add(
        o, "event_id",
        it->event_id[0] ? json_object_new_string(it->event_id) : NULL);
    json_object_object_add(
        o, "type", it->type[0] ? json_object_new_string(it->type) : NULL);
    json_object_object_add(
        o, "origin", it->origin[0] ? json_object_new_string(it->origin) : NULL);
    json_object_object_add(o, "reason", json_object_new_string(it->reason));
    json_object_object_add(o, "dead_at",
                           it->dead_at > 0 ? json_object_new_int64(it->dead_at)
                                           : NULL);
    json_object_object_add(
        o, "age_seconds",
        it->dead_at > 0
            ? json_object_new_int64((long long)time(NULL) - it->dead_at)
            : NULL);
    return o;
}

static int
dlq_list(struct ctl *c, long limit, int as_json)
{
    struct json_object *arr = json_object_new_array();
    struct ctl_mq m;
    struct dlq_item it;
    amqp_message_t msg;
    uint64_t tag;
    uint32_t total = 0;
    long shown = 0;
    char age[24];
    int rc = 1, got;

    if (dlq_open(c, &m, &total) != 0)
        goto out;
    if (!as_json) {
        printf("%s: %u dead letter%s\n", MFA_Q_DEAD, total,
               total == 1 ? "" : "s");
        if (total > 0)
            printf("%-36s  %-22s  %-18s  %5s  %s\n", "EVENT_ID", "TYPE",
                   "ORIGIN", "AGE", "REASON");
    }
    /* Hold every message until the end: at most what was there when we
     * looked, so messages dead-lettered meanwhile cannot keep us here. */
    while (shown < limit && shown < (long)total) {
        got = ctl_mq_get(&m, MFA_Q_DEAD, &msg, &tag);
        if (got < 0) {
            fprintf(stderr, "mfactl dlq: %s\n", m.err);
            goto out;
        }
        if (got == 0)
            break;
        dlq_describe(&msg, &it);
        amqp_destroy_message(&msg);
        shown++;
        if (as_json) {
            json_object_array_add(arr, dlq_item_json(&it));
            continue;
        }
        dlq_age(it.dead_at, age, sizeof(age));
        printf("%-36s  %-22s  %-18s  %5s  %s\n",
               it.event_id[0] ? it.event_id : "-", it.type[0] ? it.type : "-",
               it.origin[0] ? it.origin : "-", age, it.reason);
    }
    if (shown > 0 && ctl_mq_settle(&m, 0, 1, 0) != 0) {
        fprintf(stderr,
                "mfactl dlq: %s (the broker requeues them when "
                "we disconnect)\n",
                m.err);
        goto out;
    }
    if (as_json) {
        struct json_object *o = json_object_new_object();

        json_object_object_add(o, "queue", json_object_new_string(MFA_Q_DEAD));
        json_object_object_add(o, "total", json_object_new_int64(total));
        json_object_object_add(o, "messages", json_object_get(arr));
        printf("%s\n", json_object_to_json_string_ext(
                           o, JSON_C_TO_STRING_PRETTY |
                                  JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
    } else if (shown < (long)total) {
        printf("(%ld of %u shown; --limit N for more)\n", shown, total);
    }
    rc = 0;
out:
    json_object_put(arr);
    ctl_mq_close(&m);
    return rc;
}

/* The origin if it is one of our work queues, else NULL. */
static const char *
dlq_target(const char *origin)
{
    for (int i = 0; topology_work_queues[i] != NULL; i++)
        if (strcmp(origin, topology_work_queues[i]) == 0)
            return topology_work_queues[i];
    return NULL;
}

static void
dlq_ignore_delivery(struct mq_msg *msg, void *arg)
{
    /* mfactl consumes nothing; nothing can be delivered. */
    (void)arg;
    mq_msg_free(msg);
}

/*
 * Republishes one dead letter to its origin and acks the dead copy after
 * the confirm. 0 replayed, 1 skipped (no known origin, or not taken by
 * the broker: the copy stays held and is requeued later), -1 connection
 * failed.
 */
static int
dlq_replay_one(struct ctl_mq *m, const amqp_message_t *msg, uint64_t tag,
               const struct dlq_item *it)
{
    const amqp_basic_properties_t *p = &msg->properties;
    const char *target = dlq_target(it->origin);
    char *mid = NULL, *type = NULL, *corr = NULL;
    struct mq_out o;
    int ok = 0, rc;

    if (target == NULL) {
        fprintf(stderr,
                "mfactl dlq: %s: origin \"%s\" is not a work "
                "queue; left in %s\n",
                it->event_id[0] ? it->event_id : "(no id)", it->origin,
                MFA_Q_DEAD);
        return 1;
    }
    /* The original properties, as they were; the dead-letter headers
     * (reason, attempt, dead-at) are left behind so the event gets the
     * whole retry budget again. reply_to is dropped: whoever waited for
     * the answer gave up long ago. */
    memset(&o, 0, sizeof(o));
    if (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG)
        mid = xstrndup(p->message_id.bytes, p->message_id.len);
    if (p->_flags & AMQP_BASIC_TYPE_FLAG)
        type = xstrndup(p->type.bytes, p->type.len);
    if (p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG)
        corr = xstrndup(p->correlation_id.bytes, p->correlation_id.len);
    o.exchange = "";
    o.routing_key = target;
    o.body = msg->body.bytes;
    o.body_len = msg->body.len;
    o.message_id = mid;
    o.type = type;
    o.correlation_id = corr;
    o.persistent = 1;
    o.mandatory = 1;
    o.attempt = -1;
    rc = mq_publish(m->mq, &o, 1, &ok, dlq_ignore_delivery, NULL);
    if (rc < 0) {
        snprintf(m->err, sizeof(m->err), "%s", mq_last_error(m->mq));
        goto out;
    }
    if (rc != 0 || !ok) {
        fprintf(stderr,
                "mfactl dlq: %s: the broker did not take the "
                "replay (nacked, returned or no confirm); left in "
                "%s\n",
                it->event_id[0] ? it->event_id : "(no id)", MFA_Q_DEAD);
        rc = 1;
        goto out;
    }
    rc = ctl_mq_settle(m, tag, 0, 1);
    if (rc == 0)
        printf("replayed %s (%s) to %s\n",
               it->event_id[0] ? it->event_id : "(no id)",
               it->type[0] ? it->type : "?", target);
out:
    free(mid);
    free(type);
    free(corr);
    return rc;
}

static int
dlq_replay(struct ctl *c, const char *id)
{
    struct ctl_mq m;
    struct dlq_item it;
    amqp_message_t msg;
    uint64_t tag;
    uint32_t total = 0;
    long seen = 0, replayed = 0, skipped = 0, held = 0;
    int rc = 1, got, r;

    if (dlq_open(c, &m, &total) != 0)
        goto out;
    while (seen < (long)total) {
        got = ctl_mq_get(&m, MFA_Q_DEAD, &msg, &tag);
        if (got < 0) {
            fprintf(stderr, "mfactl dlq: %s\n", m.err);
            goto out;
        }
        if (got == 0)
            break;
        seen++;
        dlq_describe(&msg, &it);
        if (id != NULL && strcasecmp(it.event_id, id) != 0) {
            amqp_destroy_message(&msg);
            held++;
            continue;
        }
        r = dlq_replay_one(&m, &msg, tag, &it);
        amqp_destroy_message(&msg);
        if (r < 0) {
            fprintf(stderr, "mfactl dlq: broker: %s\n", m.err);
            goto out;
        }
        if (r == 0) {
            replayed++;
        } else {
            skipped++;
            held++;
        }
        if (id != NULL)
            break; /* once */
    }
    /* Everything looked at but not replayed goes back where it was. */
    if (held > 0 && ctl_mq_settle(&m, 0, 1, 0) != 0) {
        fprintf(stderr, "mfactl dlq: %s\n", m.err);
        goto out;
    }
    if (id != NULL && replayed == 0 && skipped == 0) {
        fprintf(stderr, "mfactl dlq: no dead letter with event_id %s\n", id);
        goto out;
    }
    if (id == NULL)
        printf("%ld replayed, %ld left in %s\n", replayed, skipped, MFA_Q_DEAD);
    rc = skipped > 0 ? 1 : 0;
out:
    ctl_mq_close(&m);
    return rc;
}

/* Asks on the terminal; 1 for yes. */
static int
dlq_confirm(uint32_t n)
{
    char line[32];

    fprintf(stderr,
            "Delete %u dead letter%s from %s for good? "
            "Type yes to confirm: ",
            n, n == 1 ? "" : "s", MFA_Q_DEAD);
    fflush(stderr);
    if (fgets(line, sizeof(line), stdin) == NULL)
        return 0;
    line[strcspn(line, "\r\n")] = '\0';
    return strcasecmp(line, "yes") == 0 || strcasecmp(line, "y") == 0;
}

static int
dlq_purge(struct ctl *c, int yes)
{
    struct ctl_mq m;
    uint32_t total = 0;
    long n;
    int rc = 1;

    if (dlq_open(c, &m, &total) != 0)
        goto out;
    if (total == 0) {
        printf("%s is empty\n", MFA_Q_DEAD);
        rc = 0;
        goto out;
    }
    if (!yes && !dlq_confirm(total)) {
        fprintf(stderr, "mfactl dlq: not purged\n");
        goto out;
    }
    n = ctl_mq_purge(&m, MFA_Q_DEAD);
    if (n < 0) {
        fprintf(stderr, "mfactl dlq: %s\n", m.err);
        goto out;
    }
    printf("purged %ld dead letter%s from %s\n", n, n == 1 ? "" : "s",
           MFA_Q_DEAD);
    rc = 0;
out:
    ctl_mq_close(&m);
    return rc;
}

static int
dlq_parse_limit(const char *s, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 1 || v > 100000)
        return -1;
    *out = v;
    return 0;
}

int
cmd_dlq(struct ctl *c, int argc, char **argv)
{
    long limit = DLQ_DEFAULT_LIMIT;
    int as_json = 0, yes = 0, all = 0;
    const char *id = NULL;

    if (argc < 2) {
        dlq_usage(stderr);
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
            if (dlq_parse_limit(argv[++i], &limit) != 0) {
                fprintf(stderr, "mfactl dlq: --limit wants 1..100000\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--json") == 0) {
            as_json = 1;
        } else if (strcmp(argv[i], "--yes") == 0) {
            yes = 1;
        } else if (strcmp(argv[i], "--all") == 0) {
            all = 1;
        } else if (argv[i][0] != '-' && id == NULL) {
            id = argv[i];
        } else {
            dlq_usage(stderr);
            return 2;
        }
    }
    if (strcmp(argv[1], "list") == 0 && id == NULL && !yes && !all)
        return dlq_list(c, limit, as_json);
    if (strcmp(argv[1], "replay") == 0 && (id != NULL) != all && !yes &&
        !as_json)
        return dlq_replay(c, id);
    if (strcmp(argv[1], "purge") == 0 && id == NULL && !all && !as_json)
        return dlq_purge(c, yes);
    dlq_usage(stderr);
    return 2;
}
