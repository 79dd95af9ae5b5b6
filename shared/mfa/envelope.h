/*
 * envelope.h - the event envelope: parse and validate, or build.
 *
 * Every message on mfa.events and mfa.dispatch is
 *   {"event_id": uuid, "type": name, "occurred_at": RFC 3339, "data": {...}}
 * (DESIGN.md "Event envelope", docs/internals.md "Messages and the runtime").
 * envelope_parse() turns a body into a typed struct or an error naming the
 * field ("data.login_id: not a UUID"), which the runtime puts in the
 * dead-letter header x-mfa-error. Handlers only ever see validated events.
 */
#ifndef MFA_ENVELOPE_H
#define MFA_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

struct json_object;

/* Bodies above this are refused before any parsing. */
#define ENVELOPE_MAX_BODY (64 * 1024)

enum ev_type {
    EV_UNKNOWN = 0,
    EV_CONTACT_PROMOTED,
    EV_CONTACT_CHANGED,
    EV_CONTACT_DEMOTED,
    EV_USER_EMAIL_CONFIRMED,
    EV_LOGIN_STARTED,
    EV_LOGIN_CODE_REQUESTED,
    EV_LOGIN_CODE_SUBMITTED,
    EV_DISPATCH_CODE,
    EV_DISPATCH_NOTICE
};

/*
 * A field that may be absent, null or set:
 *   present == 0                   absent: leave the stored value alone;
 *   present == 1, value == NULL    null (or ""): clear the stored value;
 *   present == 1, value != NULL    set to value (non-empty, validated).
 * An empty string is folded into null so "clear" has one spelling.
 */
struct ev_opt {
    int present;
    const char *value;
};

/*
 * All const char * below point into root and live until envelope_free().
 * Optional plain strings (ip, user_agent, dispatch_notice.locale and
 * .display_name) are NULL when absent or null. Lengths are in characters
 * (code points), except email and "to", which are in octets (RFC 5321).
 */
struct envelope {
    char event_id[37]; /* lowercased uuid */
    enum ev_type type;
    const char *type_name;    /* static string */
    char occurred_at[40];     /* as given, RFC 3339 */
    int64_t occurred_at_us;   /* microseconds since the Unix epoch, UTC */
    struct json_object *root; /* owns everything below */
    struct json_object *data;
    union {
        /* email, phone: required keys, may be null or "";
         * country, locale: optional. */
        struct {
            const char *contact_id, *organization_id, *display_name;
            struct ev_opt email, phone, country, locale;
        } promoted;
        struct {
            const char *contact_id;
            struct ev_opt email, phone, country, display_name, locale;
        } changed;
        struct {
            const char *contact_id;
        } demoted;
        struct {
            const char *contact_id, *email;
        } email_confirmed;
        struct {
            char login_id[37];
            const char *contact_id, *ip, *user_agent;
        } login_started;
        struct {
            char login_id[37];
            const char *method; /* "email" | "sms" */
        } code_requested;
        struct {
            char login_id[37];
            /* any string of 1..64 characters: the digit count is policy
             * and checked by mfa-codes, where a miss counts as a try */
            const char *code;
        } code_submitted;
        struct {
            char delivery_id[37], login_id[37];
            const char *contact_id, *channel, *sealed, *expires_at;
            int64_t expires_at_us;
        } dispatch_code;
        struct {
            char delivery_id[37];
            /* template_name is the JSON field "template" */
            const char *contact_id, *template_name, *to, *locale, *display_name;
        } dispatch_notice;
    } u;
};

/*
 * Parse and validate body (len bytes, need not be NUL-terminated).
 * amqp_type is the AMQP "type" property: when non-NULL and non-empty it
 * must equal the envelope's type. Returns 0 and fills ev, or -1 with ev
 * zeroed (envelope_free() is still safe) and err set to a sentence that
 * names the field. err may be NULL.
 */
int envelope_parse(const char *body, size_t len, const char *amqp_type,
                   struct envelope *ev, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Releases root; leaves ev zeroed. Safe on a zeroed or freed envelope. */
void envelope_free(struct envelope *ev);

/* EV_UNKNOWN for NULL or an unknown name. */
enum ev_type envelope_type_from_name(const char *name);
/* The wire name of a type, or NULL for EV_UNKNOWN / out of range. */
const char *envelope_type_name(enum ev_type type);

/*
 * RFC 3339 date-time ("2026-11-29T10:00:00Z", "...10:00:00.5+01:00") to
 * microseconds since the epoch, UTC: clock_rfc3339_parse() (util/clock.h),
 * under the envelope's name for its callers. 0 or -1.
 */
int envelope_time_parse(const char *s, int64_t *us)
    __attribute__((warn_unused_result));

/*
 * Build a new envelope (envelope_build.c): {event_id, type, occurred_at
 * (now, UTC with milliseconds), data}. Takes ownership of data (an
 * object, or NULL for {}), even on failure. event_id_or_NULL: a UUID to
 * reuse (lowercased), or NULL for a new one, copied to out_event_id (may
 * be NULL). Returns a malloc'd JSON string, or NULL for a malformed type
 * name (any lower-case words joined by dots: the consumed types and
 * results like code.sent), a bad event id, data that is not an object, or
 * a result larger than ENVELOPE_MAX_BODY.
 */
char *envelope_build(const char *type_name, const char *event_id_or_NULL,
                     struct json_object *data, char out_event_id[37])
    __attribute__((warn_unused_result));

#endif
