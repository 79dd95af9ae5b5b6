/*
 * job.c - a delivered message on its way through a worker.
 *
 * Handlers see a job through the accessors of worker.h: the parsed event,
 * the database connection (inside the transaction), and an outbox of a
 * reply and follow-up events. The outbox is stored in the inbox row in the
 * same transaction as the effect, so a redelivered duplicate re-sends
 * exactly what the first processing meant to send.
 * Security: follow-up bodies may hold sealed codes (never clear ones);
 * they are freed with the job.
 */
#include "runtime/job.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
job_list_push(struct job_list *l, struct job *j)
{
    j->next = NULL;
    if (l->tail)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
    l->n++;
}

struct job *
job_list_pop(struct job_list *l)
{
    struct job *j = l->head;

    if (j == NULL)
        return NULL;
    l->head = j->next;
    if (l->head == NULL)
        l->tail = NULL;
    l->n--;
    j->next = NULL;
    return j;
}

void
job_list_unlink(struct job_list *l, struct job *j)
{
    struct job *prev = NULL;

    for (struct job *k = l->head; k != NULL; prev = k, k = k->next) {
        if (k != j)
            continue;
        if (prev)
            prev->next = j->next;
        else
            l->head = j->next;
        if (l->tail == j)
            l->tail = prev;
        l->n--;
        j->next = NULL;
        return;
    }
}

int
job_list_has_event(const struct job_list *l, const char *event_id)
{
    for (const struct job *k = l->head; k != NULL; k = k->next)
        if (k->parsed && strcmp(k->ev.event_id, event_id) == 0)
            return 1;
    return 0;
}

struct job *
job_new(struct worker *w, struct mq_msg *msg)
{
    struct job *j = xcalloc(1, sizeof(*j));

    j->w = w;
    j->msg = msg;
    j->fn = w->spec->handle;
    return j;
}

void
job_reset_outputs(struct job *j)
{
    for (size_t i = 0; i < j->nouts; i++) {
        free(j->outs[i].exchange);
        free(j->outs[i].routing_key);
        free(j->outs[i].type);
        free(j->outs[i].event_id);
        free(j->outs[i].body);
    }
    free(j->outs);
    j->outs = NULL;
    j->nouts = 0;
    if (j->reply)
        json_object_put(j->reply);
    j->reply = NULL;
}

void
job_free(struct job *j)
{
    if (j == NULL)
        return;
    job_reset_outputs(j);
    if (j->data != NULL && j->w->spec->data_free != NULL)
        j->w->spec->data_free(j->data);
    if (j->parsed)
        envelope_free(&j->ev);
    mq_msg_free(j->msg);
    free(j);
}

struct worker *
job_worker(struct job *j)
{
    return j->w;
}

const struct envelope *
job_event(const struct job *j)
{
    return &j->ev;
}

struct db *
job_db(struct job *j)
{
    return j->w->db;
}

int
job_attempt(const struct job *j)
{
    return j->msg->attempt;
}

int
job_last_attempt(const struct job *j)
{
    return (size_t)j->msg->attempt >= j->w->cfg.retry.delays_seconds.n;
}

void
job_reply(struct job *j, struct json_object *reply)
{
    if (j->reply)
        json_object_put(j->reply);
    j->reply = reply;
}

static void
job_add_out(struct job *j, const char *exchange, const char *routing_key,
            const char *type, const char *event_id, const char *body)
{
    struct job_out *o;

    j->outs = xrealloc(j->outs, (j->nouts + 1) * sizeof(*j->outs));
    o = &j->outs[j->nouts++];
    o->exchange = xstrdup(exchange);
    o->routing_key = xstrdup(routing_key);
    o->type = xstrdup(type);
    o->event_id = xstrdup(event_id);
    o->body = xstrdup(body);
}

void
job_emit(struct job *j, const char *exchange, const char *routing_key,
         const char *type, struct json_object *data)
{
    char id[37];
    char *body = envelope_build(type, NULL, data, id);

    /* Only our own code builds these: an unknown type or an oversized
     * body is a bug, not input. */
    if (body == NULL)
        fatal("job_emit: cannot build a %s event", type);
    job_add_out(j, exchange, routing_key, type, id, body);
    free(body);
}

void
job_fail(struct job *j, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(j->error, sizeof(j->error), fmt, ap);
    va_end(ap);
}

void
job_keep_effects(struct job *j)
{
    j->keep_effects = 1;
}

void
job_set_data(struct job *j, void *data)
{
    j->data = data;
}

void *
job_data(const struct job *j)
{
    return j->data;
}

void
job_finish(struct job *j, enum mfa_verdict (*complete)(struct job *j))
{
    j->fn = complete;
    j->w->pending--;
    job_list_unlink(&j->w->inflight, j);
    job_list_push(&j->w->done, j);
}

char *
job_outputs_json(const struct job *j)
{
    struct json_object *o = json_object_new_object();
    struct json_object *arr = json_object_new_array();
    char *s;

    if (j->reply)
        json_object_object_add(o, "reply", json_object_get(j->reply));
    for (size_t i = 0; i < j->nouts; i++) {
        struct json_object *e = json_object_new_object();

        json_object_object_add(e, "exchange",
                               json_object_new_string(j->outs[i].exchange));
        json_object_object_add(e, "routing_key",
                               json_object_new_string(j->outs[i].routing_key));
        json_object_object_add(e, "type",
                               json_object_new_string(j->outs[i].type));
        json_object_object_add(e, "event_id",
                               json_object_new_string(j->outs[i].event_id));
        json_object_object_add(e, "body",
                               json_object_new_string(j->outs[i].body));
        json_object_array_add(arr, e);
    }
    json_object_object_add(o, "publish", arr);
    s = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return s;
}

static const char *
job_json_str(struct json_object *o, const char *key)
{
    struct json_object *v;

    if (!json_object_object_get_ex(o, key, &v) ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

int
job_outputs_load(struct job *j, const char *json)
{
    struct json_object *o, *reply, *arr;
    int rc = -1;

    job_reset_outputs(j);
    if (json == NULL)
        return 0; /* processed before outputs were recorded: nothing to do */
    o = json_tokener_parse(json);
    if (o == NULL)
        return -1;
    if (json_object_object_get_ex(o, "reply", &reply))
        j->reply = json_object_get(reply);
    if (json_object_object_get_ex(o, "publish", &arr) &&
        json_object_is_type(arr, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
            struct json_object *e = json_object_array_get_idx(arr, i);
            const char *ex = job_json_str(e, "exchange");
            const char *rk = job_json_str(e, "routing_key");
            const char *ty = job_json_str(e, "type");
            const char *id = job_json_str(e, "event_id");
            const char *body = job_json_str(e, "body");

            if (!ex || !rk || !ty || !id || !body)
                goto out;
            job_add_out(j, ex, rk, ty, id, body);
        }
    }
    rc = 0;
out:
    json_object_put(o);
    return rc;
}
