/*
 * log.c - JSON-lines logger on stderr.
 *
 * Used by every layer. Lines are built in one buffer and written with a
 * single write(2) so concurrent processes sharing a terminal or a pipe do
 * not interleave mid-line. Strings are escaped by json-c.
 */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

static char log_worker[64] = "mfa";
static char log_event[64];
static enum log_level log_min = LOGL_INFO;

static const char *const log_names[] = {"debug", "info", "warn", "error",
                                        "fatal"};

void
log_open(const char *worker)
{
    snprintf(log_worker, sizeof(log_worker), "%s", worker);
}

void
log_set_level(enum log_level lvl)
{
    log_min = lvl;
}

int
log_level_parse(const char *s, enum log_level *out)
{
    for (int i = 0; i <= LOGL_ERROR; i++) {
        if (strcmp(s, log_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

void
log_set_event(const char *event_id)
{
    snprintf(log_event, sizeof(log_event), "%s", event_id ? event_id : "");
}

static void
log_emit(enum log_level lvl, const char *msg, va_list *pairs)
{
    struct json_object *o = json_object_new_object();
    struct timespec ts;
    struct tm tm;
    char when[48];
    const char *line;
    size_t len;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when) - 8, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + strlen(when), 7, ".%03uZ",
             (unsigned)(ts.tv_nsec / 1000000) % 1000u);
    json_object_object_add(o, "time", json_object_new_string(when));
    json_object_object_add(o, "level", json_object_new_string(log_names[lvl]));
    json_object_object_add(o, "worker", json_object_new_string(log_worker));
    if (log_event[0])
        json_object_object_add(o, "event_id",
                               json_object_new_string(log_event));
    json_object_object_add(o, "msg", json_object_new_string(msg));
    if (pairs) {
        const char *k, *v;

        while ((k = va_arg(*pairs, const char *)) != NULL) {
            v = va_arg(*pairs, const char *);
            json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
        }
    }
    line = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
    {
        char *out = malloc(len + 2);

        if (out) {
            memcpy(out, line, len);
            out[len] = '\n';
            if (write(STDERR_FILENO, out, len + 1) < 0) {
                /* nowhere left to report it */
            }
            free(out);
        }
    }
    json_object_put(o);
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    if (lvl < log_min)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_emit(lvl, msg, NULL);
}

void
log_kv(enum log_level lvl, const char *msg, ...)
{
    va_list ap;

    if (lvl < log_min)
        return;
    va_start(ap, msg);
    log_emit(lvl, msg, &ap);
    va_end(ap);
}

void
fatal(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_emit(LOGL_FATAL, msg, NULL);
    exit(1);
}
