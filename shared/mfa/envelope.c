/*
 * envelope.c - parse and validate event envelopes.
 *
 * Callers: the runtime (shared/runtime/worker.c) parses every delivered
 * message before a handler runs; the producer library reads back every
 * event it builds or is handed (producer/event.c, producer.c), so it
 * refuses what a worker would dead-letter. Building envelopes is
 * envelope_build.c; RFC 3339 times are the clock's (shared/util/clock.c).
 *
 * Security notes: bodies are untrusted and come from other systems. The
 * size is capped before json-c sees a byte; the whole body must be strict
 * UTF-8 (json-c's own check lets overlongs and surrogates through); every
 * string field is checked for embedded NULs (json-c decodes \u0000), its
 * length and its alphabet, so handlers and SQL never see surprises. Error
 * messages name fields but do not echo values (they reach logs and the
 * x-mfa-error header), except a sanitized, truncated event type.
 */
#include "mfa/envelope.h"
#include "mfa/addr.h"
#include "util/clock.h"
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>
#include <sodium.h>

/* How a string field is checked (after the common NUL/UTF-8 checks). */
enum kind {
    K_ANY,     /* only length: verification codes are compared, not shown */
    K_TEXT,    /* length in characters, no control characters */
    K_EMAIL,   /* length in octets, no control characters; syntax is
                  contact-sync's decision (addr_email_check) */
    K_ID,      /* CRM identifiers: [A-Za-z0-9._:-] */
    K_UUID,    /* copied, lowercased, into a char[37] */
    K_COUNTRY, /* two ASCII letters, any case */
    K_LOCALE,  /* en, nl-BE, pt_BR */
    K_ENUM,    /* one of f->choices */
    K_B64,     /* standard base64 with padding (what seal_b64 writes) */
    K_TIME     /* RFC 3339; microseconds go to f->off_us */
};

#define F_REQ 0x1  /* the key must be present */
#define F_NULL 0x2 /* JSON null is accepted (and means clear/none) */
#define F_OPT 0x4  /* the destination is a struct ev_opt */

struct field {
    const char *key;
    enum kind kind;
    unsigned flags;
    size_t min, max;
    size_t off;    /* destination inside struct envelope */
    size_t off_us; /* K_TIME only */
    const char *const *choices;
};

#define OFF(m) offsetof(struct envelope, u.m)
#define FLD(k, kd, fl, mn, mx, m)                                              \
    {                                                                          \
        .key = (k), .kind = (kd), .flags = (fl), .min = (mn), .max = (mx),     \
        .off = OFF(m)                                                          \
    }
#define END                                                                    \
    {                                                                          \
        .key = NULL                                                            \
    }

/* Limits shared by several types, so they cannot drift apart. */
#define ID_MAX 64
#define NAME_MAX_CHARS 200
#define PHONE_MAX 64

static const char *const methods[] = {"email", "sms", NULL};
static const char *const templates[] = {"contact_changed", NULL};

static const struct field promoted_fields[] = {
    FLD("contact_id", K_ID, F_REQ, 1, ID_MAX, promoted.contact_id),
    FLD("organization_id", K_ID, F_REQ, 1, ID_MAX, promoted.organization_id),
    FLD("display_name", K_TEXT, F_REQ, 0, NAME_MAX_CHARS,
        promoted.display_name),
    /* The CRM sends the keys even when it has no value, so a missing key
     * is a broken producer rather than "no email". */
    FLD("email", K_EMAIL, F_REQ | F_NULL | F_OPT, 0, ADDR_EMAIL_MAX,
        promoted.email),
    FLD("phone", K_TEXT, F_REQ | F_NULL | F_OPT, 0, PHONE_MAX, promoted.phone),
    FLD("country", K_COUNTRY, F_NULL | F_OPT, 0, 2, promoted.country),
    FLD("locale", K_LOCALE, F_NULL | F_OPT, 0, 16, promoted.locale),
    END,
};

static const struct field changed_fields[] = {
    FLD("contact_id", K_ID, F_REQ, 1, ID_MAX, changed.contact_id),
    FLD("email", K_EMAIL, F_NULL | F_OPT, 0, ADDR_EMAIL_MAX, changed.email),
    FLD("phone", K_TEXT, F_NULL | F_OPT, 0, PHONE_MAX, changed.phone),
    FLD("country", K_COUNTRY, F_NULL | F_OPT, 0, 2, changed.country),
    FLD("display_name", K_TEXT, F_NULL | F_OPT, 0, NAME_MAX_CHARS,
        changed.display_name),
    FLD("locale", K_LOCALE, F_NULL | F_OPT, 0, 16, changed.locale),
    END,
};

static const struct field demoted_fields[] = {
    FLD("contact_id", K_ID, F_REQ, 1, ID_MAX, demoted.contact_id),
    END,
};

static const struct field confirmed_fields[] = {
    FLD("contact_id", K_ID, F_REQ, 1, ID_MAX, email_confirmed.contact_id),
    FLD("email", K_EMAIL, F_REQ, 1, ADDR_EMAIL_MAX, email_confirmed.email),
    END,
};

static const struct field started_fields[] = {
    FLD("login_id", K_UUID, F_REQ, 0, 0, login_started.login_id),
    FLD("contact_id", K_ID, F_REQ, 1, ID_MAX, login_started.contact_id),
    FLD("ip", K_TEXT, F_NULL, 0, 64, login_started.ip),
    FLD("user_agent", K_TEXT, F_NULL, 0, 512, login_started.user_agent),
    END,
};

static const struct field requested_fields[] = {
    FLD("login_id", K_UUID, F_REQ, 0, 0, code_requested.login_id),
    {.key = "method",
     .kind = K_ENUM,
     .flags = F_REQ,
     .off = OFF(code_requested.method),
     .choices = methods},
    END,
};

static const struct field submitted_fields[] = {
    FLD("login_id", K_UUID, F_REQ, 0, 0, code_submitted.login_id),
    FLD("code", K_ANY, F_REQ, 1, 64, code_submitted.code),
    END,
};

static const struct field dispatch_code_fields[] = {
    FLD("delivery_id", K_UUID, F_REQ, 0, 0, dispatch_code.delivery_id),
    FLD("login_id", K_UUID, F_REQ, 0, 0, dispatch_code.login_id),
    FLD("contact_id", K_ID, F_REQ, 1, ID_MAX, dispatch_code.contact_id),
    {.key = "channel",
     .kind = K_ENUM,
     .flags = F_REQ,
     .off = OFF(dispatch_code.channel),
     .choices = methods},
    FLD("sealed", K_B64, F_REQ, 1, 1024, dispatch_code.sealed),
    {.key = "expires_at",
     .kind = K_TIME,
     .flags = F_REQ,
     .max = 39,
     .off = OFF(dispatch_code.expires_at),
     .off_us = OFF(dispatch_code.expires_at_us)},
    END,
};

static const struct field dispatch_notice_fields[] = {
    FLD("delivery_id", K_UUID, F_REQ, 0, 0, dispatch_notice.delivery_id),
    FLD("contact_id", K_ID, F_REQ, 1, ID_MAX, dispatch_notice.contact_id),
    {.key = "template",
     .kind = K_ENUM,
     .flags = F_REQ,
     .off = OFF(dispatch_notice.template_name),
     .choices = templates},
    FLD("to", K_EMAIL, F_REQ, 1, ADDR_EMAIL_MAX, dispatch_notice.to),
    FLD("locale", K_LOCALE, F_NULL, 0, 16, dispatch_notice.locale),
    FLD("display_name", K_TEXT, F_NULL, 0, NAME_MAX_CHARS,
        dispatch_notice.display_name),
    END,
};

static const struct type_def {
    const char *name;
    enum ev_type type;
    const struct field *fields;
} type_defs[] = {
    {"contact.promoted", EV_CONTACT_PROMOTED, promoted_fields},
    {"contact.changed", EV_CONTACT_CHANGED, changed_fields},
    {"contact.demoted", EV_CONTACT_DEMOTED, demoted_fields},
    {"user.email_confirmed", EV_USER_EMAIL_CONFIRMED, confirmed_fields},
    {"login.started", EV_LOGIN_STARTED, started_fields},
    {"login.code_requested", EV_LOGIN_CODE_REQUESTED, requested_fields},
    {"login.code_submitted", EV_LOGIN_CODE_SUBMITTED, submitted_fields},
    {"dispatch.code", EV_DISPATCH_CODE, dispatch_code_fields},
    {"dispatch.notice", EV_DISPATCH_NOTICE, dispatch_notice_fields},
};

#define N_TYPES (sizeof(type_defs) / sizeof(type_defs[0]))

static const struct type_def *
env_type_def(const char *name)
{
    size_t i;

    for (i = 0; name != NULL && i < N_TYPES; i++)
        if (strcmp(type_defs[i].name, name) == 0)
            return &type_defs[i];
    return NULL;
}

enum ev_type
envelope_type_from_name(const char *name)
{
    const struct type_def *t = env_type_def(name);

    return t != NULL ? t->type : EV_UNKNOWN;
}

const char *
envelope_type_name(enum ev_type type)
{
    size_t i;

    for (i = 0; i < N_TYPES; i++)
        if (type_defs[i].type == type)
            return type_defs[i].name;
    return NULL;
}

/* Always returns -1, so callers can write `rc = env_err(...); goto out;`. */
static int __attribute__((format(printf, 3, 4)))
env_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/*
 * A quotable copy of an untrusted string for an error message: printable
 * ASCII only, no quotes or backslashes, at most 40 bytes then "...".
 */
static void
env_quote(const char *s, char out[48])
{
    size_t i;

    for (i = 0; s[i] != '\0' && i < 40; i++) {
        unsigned char c = (unsigned char)s[i];

        out[i] =
            (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') ? '?' : (char)c;
    }
    out[i] = '\0';
    if (s[i] != '\0')
        memcpy(out + i, "...", 4);
}

/* ---- RFC 3339 ---------------------------------------------------------- */

/* Kept for the envelope's callers and tests; the parser is the clock's. */
int
envelope_time_parse(const char *s, int64_t *us)
{
    return clock_rfc3339_parse(s, us);
}

/* ---- fields ------------------------------------------------------------ */

/* Code points in valid UTF-8: count the bytes that start a sequence. */
static size_t
env_chars(const char *s, size_t len)
{
    size_t i, n = 0;

    for (i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            n++;
    return n;
}

static int
env_is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
env_is_alnum(char c)
{
    return env_is_alpha(c) || (c >= '0' && c <= '9');
}

/* 2-3 letters, then optionally [-_] and 2-4 letters or digits. */
static int
env_locale_ok(const char *s, size_t len)
{
    size_t i = 0, j;

    while (i < len && env_is_alpha(s[i]))
        i++;
    if (i < 2 || i > 3)
        return 0;
    if (i == len)
        return 1;
    if (s[i] != '-' && s[i] != '_')
        return 0;
    for (j = i + 1; j < len; j++)
        if (!env_is_alnum(s[j]))
            return 0;
    return len - i - 1 >= 2 && len - i - 1 <= 4;
}

static int
env_b64_ok(const char *s, size_t len)
{
    unsigned char bin[1024];
    size_t binlen = 0;
    int ok;

    /* Decode rather than eyeball the alphabet: exactly what unseal_b64()
     * will accept later, padding rules included. */
    ok = len % 4 == 0 &&
         sodium_base642bin(bin, sizeof(bin), s, len, NULL, &binlen, NULL,
                           sodium_base64_VARIANT_ORIGINAL) == 0;
    sodium_memzero(bin, sizeof(bin));
    return ok;
}

/* "email, sms" for an error message. */
static void
env_choices(const char *const *choices, char *out, size_t n)
{
    size_t i, used = 0;
    int w;

    out[0] = '\0';
    for (i = 0; choices[i] != NULL && used < n; i++) {
        w = snprintf(out + used, n - used, "%s%s", i ? ", " : "", choices[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

/* The kind-specific part of a string field's validation. */
static int
env_check_kind(const struct field *f, const char *s, size_t len,
               struct envelope *ev, char *err, size_t errlen)
{
    char list[128];
    size_t i, n;
    int64_t us;

    switch (f->kind) {
    case K_ANY:
    case K_TEXT:
    case K_EMAIL:
        if (f->kind != K_ANY && addr_has_control(s))
            return env_err(err, errlen,
                           "data.%s: contains control "
                           "characters",
                           f->key);
        n = f->kind == K_EMAIL ? len : env_chars(s, len);
        if (n < f->min)
            return env_err(err, errlen, "data.%s: empty", f->key);
        if (n > f->max)
            return env_err(err, errlen, "data.%s: too long (max %zu %s)",
                           f->key, f->max,
                           f->kind == K_EMAIL ? "bytes" : "characters");
        return 0;
    case K_ID:
        if (len < f->min)
            return env_err(err, errlen, "data.%s: empty", f->key);
        if (len > f->max)
            return env_err(err, errlen,
                           "data.%s: too long (max %zu "
                           "characters)",
                           f->key, f->max);
        for (i = 0; i < len; i++)
            if (!env_is_alnum(s[i]) && strchr("._:-", s[i]) == NULL)
                return env_err(err, errlen,
                               "data.%s: invalid character "
                               "(allowed: A-Z a-z 0-9 . _ : -)",
                               f->key);
        return 0;
    case K_UUID:
        if (addr_uuid_check(s) != 0)
            return env_err(err, errlen, "data.%s: not a UUID", f->key);
        memcpy((char *)ev + f->off, s, ADDR_UUID_LEN + 1);
        addr_uuid_lower((char *)ev + f->off);
        return 0;
    case K_COUNTRY:
        if (len != 2 || !env_is_alpha(s[0]) || !env_is_alpha(s[1]))
            return env_err(err, errlen,
                           "data.%s: not a 2-letter country "
                           "code",
                           f->key);
        return 0;
    case K_LOCALE:
        if (len > f->max || !env_locale_ok(s, len))
            return env_err(err, errlen,
                           "data.%s: not a locale (like en, "
                           "nl-BE, pt_BR)",
                           f->key);
        return 0;
    case K_ENUM:
        for (i = 0; f->choices[i] != NULL; i++)
            if (strcmp(s, f->choices[i]) == 0)
                return 0;
        env_choices(f->choices, list, sizeof(list));
        return env_err(err, errlen, "data.%s: must be one of: %s", f->key,
                       list);
    case K_B64:
        if (len < f->min)
            return env_err(err, errlen, "data.%s: empty", f->key);
        if (len > f->max)
            return env_err(err, errlen,
                           "data.%s: too long (max %zu "
                           "characters)",
                           f->key, f->max);
        if (!env_b64_ok(s, len))
            return env_err(err, errlen, "data.%s: not base64", f->key);
        return 0;
    case K_TIME:
        if (len > f->max || clock_rfc3339_parse(s, &us) != 0)
            return env_err(err, errlen,
                           "data.%s: not an RFC 3339 "
                           "timestamp",
                           f->key);
        memcpy((char *)ev + f->off_us, &us, sizeof(us));
        return 0;
    }
    return env_err(err, errlen, "data.%s: no rule (bug)", f->key);
}

/* Validate one field of ev->data and store it where f says. */
static int
env_field(struct envelope *ev, const struct field *f, char *err, size_t errlen)
{
    struct json_object *v = NULL;
    struct ev_opt *opt = (struct ev_opt *)((char *)ev + f->off);
    const char **dst = (const char **)((char *)ev + f->off);
    const char *s;
    size_t len;

    if (!json_object_object_get_ex(ev->data, f->key, &v)) {
        if (f->flags & F_REQ)
            return env_err(err, errlen, "data.%s: missing", f->key);
        return 0; /* absent: the zeroed destination says so */
    }
    if (v == NULL) { /* json-c represents null as a NULL object */
        if (!(f->flags & F_NULL))
            return env_err(err, errlen, "data.%s: is null", f->key);
        if (f->flags & F_OPT)
            opt->present = 1;
        return 0;
    }
    if (!json_object_is_type(v, json_type_string))
        return env_err(err, errlen, "data.%s: not a string%s", f->key,
                       (f->flags & F_NULL) ? " or null" : "");
    s = json_object_get_string(v);
    len = (size_t)json_object_get_string_len(v);
    /* "\u0000" decodes to a NUL: C code would see a shorter string than
     * the producer meant (a truncated code, a different contact). */
    if (strlen(s) != len)
        return env_err(err, errlen, "data.%s: contains a NUL character",
                       f->key);
    if (addr_utf8_check(s, len) != 0)
        return env_err(err, errlen, "data.%s: not valid UTF-8", f->key);
    if ((f->flags & F_OPT) && len == 0) {
        opt->present = 1; /* "" clears, like null */
        return 0;
    }
    if (env_check_kind(f, s, len, ev, err, errlen) != 0)
        return -1;
    if (f->kind == K_UUID)
        return 0; /* stored as a lowercased copy by env_check_kind */
    if (f->flags & F_OPT) {
        opt->present = 1;
        opt->value = s;
    } else {
        *dst = s;
    }
    return 0;
}

/* A top-level string member, or an error naming it. */
static int
env_top_string(struct json_object *root, const char *key, const char **out,
               char *err, size_t errlen)
{
    struct json_object *v = NULL;

    if (!json_object_object_get_ex(root, key, &v))
        return env_err(err, errlen, "%s: missing", key);
    if (v == NULL || !json_object_is_type(v, json_type_string))
        return env_err(err, errlen, "%s: not a string", key);
    *out = json_object_get_string(v);
    if (strlen(*out) != (size_t)json_object_get_string_len(v))
        return env_err(err, errlen, "%s: contains a NUL character", key);
    return 0;
}

/* Body to a JSON object: size cap, strict UTF-8, strict json-c, no tail. */
static struct json_object *
env_parse_json(const char *body, size_t len, char *err, size_t errlen)
{
    struct json_tokener *tok = NULL;
    struct json_object *root = NULL;
    enum json_tokener_error jerr;
    size_t end;

    if (len > ENVELOPE_MAX_BODY) {
        env_err(err, errlen, "body: too large (%zu bytes, max %d)", len,
                ENVELOPE_MAX_BODY);
        goto out;
    }
    if (body == NULL || len == 0) {
        env_err(err, errlen, "body: empty");
        goto out;
    }
    if (addr_utf8_check(body, len) != 0) {
        env_err(err, errlen, "body: not valid UTF-8");
        goto out;
    }
    /* json-c stops at a raw NUL; anything after it would go unchecked. */
    if (memchr(body, '\0', len) != NULL) {
        env_err(err, errlen, "body: contains a NUL byte");
        goto out;
    }
    tok = json_tokener_new();
    if (tok == NULL)
        fatal("json_tokener_new: out of memory");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    root = json_tokener_parse_ex(tok, body, (int)len);
    jerr = json_tokener_get_error(tok);
    end = json_tokener_get_parse_end(tok);
    if (root == NULL && jerr == json_tokener_continue) {
        /* A terminating NUL tells json-c the input is complete; the body
         * was then consumed to its end. */
        root = json_tokener_parse_ex(tok, "", 1);
        jerr = json_tokener_get_error(tok);
        end = len;
    }
    if (jerr != json_tokener_success) {
        env_err(err, errlen, "body: not valid JSON (%s at offset %zu)",
                json_tokener_error_desc(jerr), end);
        json_object_put(root);
        root = NULL;
        goto out;
    }
    for (; end < len; end++) {
        if (strchr(" \t\r\n", body[end]) == NULL) {
            env_err(err, errlen,
                    "body: not valid JSON (trailing data at "
                    "offset %zu)",
                    end);
            json_object_put(root);
            root = NULL;
            goto out;
        }
    }
    /* "null" parses successfully to a NULL object: not an object either. */
    if (root == NULL || !json_object_is_type(root, json_type_object)) {
        env_err(err, errlen, "body: not a JSON object");
        json_object_put(root);
        root = NULL;
    }
out:
    if (tok != NULL)
        json_tokener_free(tok);
    return root;
}

int
envelope_parse(const char *body, size_t len, const char *amqp_type,
               struct envelope *ev, char *err, size_t errlen)
{
    const struct type_def *t;
    const struct field *f;
    const char *s;
    char q1[48], q2[48];
    int rc = -1;

    memset(ev, 0, sizeof(*ev));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    ev->root = env_parse_json(body, len, err, errlen);
    if (ev->root == NULL)
        goto out;

    if (env_top_string(ev->root, "event_id", &s, err, errlen) != 0)
        goto out;
    if (addr_uuid_check(s) != 0) {
        env_err(err, errlen, "event_id: not a UUID");
        goto out;
    }
    memcpy(ev->event_id, s, sizeof(ev->event_id));
    addr_uuid_lower(ev->event_id);

    if (env_top_string(ev->root, "type", &s, err, errlen) != 0)
        goto out;
    t = env_type_def(s);
    if (t == NULL) {
        env_quote(s, q1);
        env_err(err, errlen, "type: unknown event type \"%s\"", q1);
        goto out;
    }
    ev->type = t->type;
    ev->type_name = t->name;
    /* The routing key picked the queue; a body claiming another type
     * would run a handler the router never meant to reach. */
    if (amqp_type != NULL && amqp_type[0] != '\0' &&
        strcmp(amqp_type, t->name) != 0) {
        env_quote(amqp_type, q2);
        env_err(err, errlen,
                "type: \"%s\" does not match the AMQP type "
                "property \"%s\"",
                t->name, q2);
        goto out;
    }

    if (env_top_string(ev->root, "occurred_at", &s, err, errlen) != 0)
        goto out;
    if (strlen(s) >= sizeof(ev->occurred_at) ||
        clock_rfc3339_parse(s, &ev->occurred_at_us) != 0) {
        env_err(err, errlen, "occurred_at: not an RFC 3339 timestamp");
        goto out;
    }
    memcpy(ev->occurred_at, s, strlen(s) + 1);

    if (!json_object_object_get_ex(ev->root, "data", &ev->data)) {
        env_err(err, errlen, "data: missing");
        goto out;
    }
    if (ev->data == NULL || !json_object_is_type(ev->data, json_type_object)) {
        env_err(err, errlen, "data: not an object");
        goto out;
    }
    for (f = t->fields; f->key != NULL; f++)
        if (env_field(ev, f, err, errlen) != 0)
            goto out;
    rc = 0;
out:
    if (rc != 0)
        envelope_free(ev);
    return rc;
}

void
envelope_free(struct envelope *ev)
{
    if (ev == NULL)
        return;
    json_object_put(ev->root);
    memset(ev, 0, sizeof(*ev));
}
