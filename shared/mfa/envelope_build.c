/*
 * envelope_build.c - build event envelopes (see envelope.h).
 *
 * Callers: the runtime's job_emit() (shared/runtime/job.c) for every
 * follow-up and result a handler publishes, and the producer library
 * (producer/event.c) for the events the portal and the CRM send. The
 * parser (envelope.c) reads back what is built here.
 *
 * Security notes: the type name and event id are checked before they go
 * out, and a body larger than ENVELOPE_MAX_BODY is refused here rather
 * than dead-lettered by our own consumers. data is the caller's and must
 * hold no secret in clear (dispatch jobs carry the code sealed).
 */
#include "mfa/addr.h"
#include "mfa/envelope.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <string.h>

#include <json-c/json.h>

static void
env_add_string(struct json_object *o, const char *key, const char *val)
{
    struct json_object *s = json_object_new_string(val);

    if (s == NULL || json_object_object_add(o, key, s) != 0)
        fatal("envelope: out of memory");
}

/*
 * Names we may build: the consumed types (envelope.c's table), and result
 * types such as code.sent or login.verified that only subscribers read:
 * lower-case words joined by dots.
 */
static int
env_type_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    int dots = 0;

    if (n < 3 || n > 64 || s[0] == '.' || s[n - 1] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (s[i + 1] == '.')
                return 0;
            dots++;
        } else if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_' ||
                     (s[i] >= '0' && s[i] <= '9'))) {
            return 0;
        }
    }
    return dots > 0;
}

char *
envelope_build(const char *type_name, const char *event_id_or_NULL,
               struct json_object *data, char out_event_id[37])
{
    struct json_object *root = NULL;
    const char *json;
    char id[ADDR_UUID_LEN + 1], now[CLOCK_RFC3339_MAX];
    char *out = NULL;

    if (out_event_id != NULL)
        out_event_id[0] = '\0';
    if (!env_type_name_ok(type_name))
        goto out;
    if (data != NULL && !json_object_is_type(data, json_type_object))
        goto out;
    if (event_id_or_NULL != NULL) {
        if (addr_uuid_check(event_id_or_NULL) != 0)
            goto out;
        memcpy(id, event_id_or_NULL, sizeof(id));
        addr_uuid_lower(id);
    } else {
        addr_uuid_new(id);
    }
    clock_rfc3339_now(now);

    root = json_object_new_object();
    if (root == NULL ||
        (data == NULL && (data = json_object_new_object()) == NULL))
        fatal("envelope: out of memory");
    env_add_string(root, "event_id", id);
    env_add_string(root, "type", type_name);
    env_add_string(root, "occurred_at", now);
    if (json_object_object_add(root, "data", data) != 0)
        fatal("envelope: out of memory");
    data = NULL; /* root owns it now */

    json = json_object_to_json_string_ext(
        root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (json == NULL)
        fatal("envelope: out of memory");
    /* Never produce what our own consumers would dead-letter as too big. */
    if (strlen(json) > ENVELOPE_MAX_BODY)
        goto out;
    out = xstrdup(json);
    if (out_event_id != NULL)
        memcpy(out_event_id, id, sizeof(id));
out:
    json_object_put(data);
    json_object_put(root);
    return out;
}
