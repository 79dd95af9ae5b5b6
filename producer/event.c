/*
 * event.c - the producer's events: the public types, their help, and
 * building + validating an envelope before anything is sent.
 *
 * Callers: producer.c (every publish), mfa-publish (--help, --lines
 * validation before publishing), applications through mfa_producer.h,
 * tests/unit/test_producer.c. Pure functions: no connection, no state.
 *
 * Validation is the workers' own: the envelope is made by envelope_build()
 * and then read back by envelope_parse() with the AMQP type, exactly as
 * the runtime will read it, so an event refused here would have been
 * dead-lettered there, and the error names the same field.
 *
 * Security notes: data_json is untrusted (a CRM export, a shell). It is
 * capped before json-c sees it and parsed strictly (UTF-8 checked); error
 * messages name fields and byte offsets, never echo values (they may hold
 * a code or an address). URLs are shown with the password redacted.
 */
#include "producer/mfa_producer.h"

#include "mfa/addr.h"
#include "mfa/envelope.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#ifndef MFA_VERSION
#define MFA_VERSION "0.0.0"
#endif

/* What --help shows for one field of a type's data. */
struct prod_field {
    const char *name;
    int required;
    const char *about;
};

struct prod_type {
    const char *name;
    int replies;
    const char *effect;
    const struct prod_field *fields;
    const char *reply;   /* reply shape, NULL = none */
    const char *example; /* a data object that validates */
};

#define CRM_ID "CRM id: 1-64 of A-Z a-z 0-9 . _ : -"

static const struct prod_field promoted_fields[] = {
    {"contact_id", 1, CRM_ID},
    {"organization_id", 1, CRM_ID},
    {"display_name", 1, "text, up to 200 characters"},
    {"email", 1, "address, or null if the contact has none"},
    {"phone", 1, "any format (checked by the worker), or null"},
    {"country", 0, "2 letters: region of national numbers"},
    {"locale", 0, "language of messages: en, nl-BE, ..."},
    {NULL, 0, NULL},
};

static const struct prod_field changed_fields[] = {
    {"contact_id", 1, CRM_ID},
    {"email", 0, "new address (unconfirmed); null clears"},
    {"phone", 0, "new number; null clears"},
    {"country", 0, "2 letters; null clears"},
    {"display_name", 0, "text, up to 200 characters"},
    {"locale", 0, "en, nl-BE, ...; null clears"},
    {NULL, 0, NULL},
};

static const struct prod_field demoted_fields[] = {
    {"contact_id", 1, CRM_ID},
    {NULL, 0, NULL},
};

static const struct prod_field confirmed_fields[] = {
    {"contact_id", 1, CRM_ID},
    {"email", 1, "the address confirmed: the current one"},
    {NULL, 0, NULL},
};

static const struct prod_field started_fields[] = {
    {"login_id", 1, "a new UUID for this login attempt"},
    {"contact_id", 1, CRM_ID},
    {"ip", 0, "the user's IP address, for the audit"},
    {"user_agent", 0, "the browser's User-Agent (512 chars)"},
    {NULL, 0, NULL},
};

static const struct prod_field requested_fields[] = {
    {"login_id", 1, "the login_id of login.started"},
    {"method", 1, "email or sms: a method offered"},
    {NULL, 0, NULL},
};

static const struct prod_field submitted_fields[] = {
    {"login_id", 1, "the login_id of login.started"},
    {"code", 1, "the code as the user typed it"},
    {NULL, 0, NULL},
};

static const struct prod_type prod_types[] = {
    {"contact.promoted", 0,
     "a CRM contact becomes a portal user (created or re-enabled)",
     promoted_fields, NULL,
     "{\"contact_id\":\"c-42\",\"organization_id\":\"org-7\","
     "\"display_name\":\"Jane Doe\",\"email\":\"jane@example.com\","
     "\"phone\":\"+31 6 12345678\",\"country\":\"NL\",\"locale\":\"nl\"}"},
    {"contact.changed", 0,
     "the CRM changed a contact: give only what changed\n"
     "      (an event older than the last one applied is ignored)",
     changed_fields, NULL,
     "{\"contact_id\":\"c-42\",\"phone\":\"+31 6 87654321\"}"},
    {"contact.demoted", 0,
     "no longer a portal user: disable, cancel open logins", demoted_fields,
     NULL, "{\"contact_id\":\"c-42\"}"},
    {"user.email_confirmed", 0, "the user confirmed their email address",
     confirmed_fields, NULL,
     "{\"contact_id\":\"c-42\",\"email\":\"jane@example.com\"}"},
    {"login.started", 1,
     "password checked: open the MFA step, list the methods", started_fields,
     "{login_id, status: pending|no_method|unknown_user|\n"
     "             disabled, methods: [email, sms], email_hint, phone_hint}",
     "{\"login_id\":\"0b7e6f6c-2d1a-4f0e-9c57-3c1f1a2b4d5e\","
     "\"contact_id\":\"c-42\",\"ip\":\"203.0.113.9\"}"},
    {"login.code_requested", 1, "the user chose a method: send a code",
     requested_fields,
     "{login_id, status: sent|method_unavailable|rate_limited|\n"
     "             expired|locked|unknown_login, retry_after_s?, "
     "expires_at?}",
     "{\"login_id\":\"0b7e6f6c-2d1a-4f0e-9c57-3c1f1a2b4d5e\","
     "\"method\":\"email\"}"},
    {"login.code_submitted", 1, "the user typed the code: verify it",
     submitted_fields,
     "{login_id, status: verified|invalid|expired|locked|\n"
     "             unknown_login, attempts_left?}",
     "{\"login_id\":\"0b7e6f6c-2d1a-4f0e-9c57-3c1f1a2b4d5e\","
     "\"code\":\"123456\"}"},
};

#define PROD_NTYPES (sizeof(prod_types) / sizeof(prod_types[0]))

static const char *const prod_type_names[PROD_NTYPES + 1] = {
    "contact.promoted",     "contact.changed",
    "contact.demoted",      "user.email_confirmed",
    "login.started",        "login.code_requested",
    "login.code_submitted", NULL};

static int __attribute__((format(printf, 3, 4)))
prod_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return MFA_PRODUCER_INVALID;
}

static const struct prod_type *
prod_type_find(const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < PROD_NTYPES; i++)
        if (strcmp(prod_types[i].name, name) == 0)
            return &prod_types[i];
    return NULL;
}

const char *
mfa_producer_version(void)
{
    return MFA_VERSION;
}

const char *const *
mfa_producer_types(void)
{
    return prod_type_names;
}

int
mfa_producer_type_replies(const char *type)
{
    const struct prod_type *t = prod_type_find(type);

    return t != NULL && t->replies;
}

int
mfa_producer_type_help(const char *type, FILE *out)
{
    const struct prod_type *t = prod_type_find(type);

    if (t == NULL)
        return -1;
    fprintf(out, "\n  %s\n      %s\n", t->name, t->effect);
    for (const struct prod_field *f = t->fields; f->name != NULL; f++)
        fprintf(out, "      %-16s %-8s %s\n", f->name,
                f->required ? "required" : "", f->about);
    fprintf(out, "      reply: %s\n",
            t->reply != NULL ? t->reply : "none (no --wait)");
    fprintf(out, "      e.g. --data '%s'\n", t->example);
    return 0;
}

void
mfa_producer_uuid(char out[MFA_PRODUCER_ID_LEN])
{
    addr_uuid_new(out);
}

/* A name safe to quote in a message: short, printable ASCII. */
static int
prod_printable(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e || s[i] == '"')
            return 0;
    return 1;
}

static const char *
prod_json_kind(struct json_object *o)
{
    switch (json_object_get_type(o)) {
    case json_type_null: return "null";
    case json_type_boolean: return "a boolean";
    case json_type_double:
    case json_type_int: return "a number";
    case json_type_array: return "an array";
    case json_type_string: return "a string";
    default: return "an object";
    }
}

/*
 * Strict JSON with UTF-8 checked, one object and nothing after it. The
 * offsets in errors let a user find the spot in a long line.
 */
static int
prod_parse_data(const char *s, struct json_object **out, char *err,
                size_t errlen)
{
    size_t len = strlen(s), end;
    struct json_tokener *tok = NULL;
    struct json_object *o = NULL;
    enum json_tokener_error je;
    int rc = MFA_PRODUCER_INVALID;

    *out = NULL;
    if (len > ENVELOPE_MAX_BODY) {
        prod_err(err, errlen, "data: too large (%zu bytes, max %d)", len,
                 ENVELOPE_MAX_BODY);
        goto out;
    }
    /* json-c's own UTF-8 check lets overlong forms through; the workers'
     * check would then refuse "body", which tells a user nothing. */
    if (addr_utf8_check(s, len) != 0) {
        prod_err(err, errlen, "data: not valid UTF-8");
        goto out;
    }
    tok = json_tokener_new();
    if (tok == NULL) {
        prod_err(err, errlen, "data: out of memory");
        goto out;
    }
    json_tokener_set_flags(tok,
                           JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    o = json_tokener_parse_ex(tok, s, (int)len);
    je = json_tokener_get_error(tok);
    end = json_tokener_get_parse_end(tok);
    if (je == json_tokener_continue) {
        prod_err(err, errlen, "data: not valid JSON (ends too early)");
        goto out;
    }
    if (je != json_tokener_success) {
        prod_err(err, errlen, "data: not valid JSON (%s at byte %zu)",
                 json_tokener_error_desc(je), end);
        goto out;
    }
    while (end < len && strchr(" \t\r\n", s[end]) != NULL)
        end++;
    if (end < len) {
        prod_err(err, errlen,
                 "data: not valid JSON (text after the object "
                 "at byte %zu)",
                 end);
        goto out;
    }
    if (!json_object_is_type(o, json_type_object)) {
        prod_err(err, errlen, "data: must be a JSON object {...}, not %s",
                 prod_json_kind(o));
        goto out;
    }
    *out = o;
    o = NULL;
    rc = MFA_PRODUCER_OK;
out:
    json_object_put(o);
    if (tok != NULL)
        json_tokener_free(tok);
    return rc;
}

static void
prod_type_list(char *out, size_t n)
{
    size_t used = 0;

    out[0] = '\0';
    for (size_t i = 0; i < PROD_NTYPES && used < n; i++) {
        int w = snprintf(out + used, n - used, "%s%s", i ? ", " : "",
                         prod_types[i].name);

        if (w < 0)
            break;
        used += (size_t)w;
    }
}

int
mfa_producer_build(const char *type, const char *data_json,
                   const char *event_id, char **body,
                   char event_id_out[MFA_PRODUCER_ID_LEN], char *err,
                   size_t errlen)
{
    struct json_object *data = NULL;
    struct envelope ev;
    char id[MFA_PRODUCER_ID_LEN], why[256], list[256];
    char *b = NULL;
    int rc = MFA_PRODUCER_INVALID;

    *body = NULL;
    if (event_id_out != NULL)
        event_id_out[0] = '\0';
    if (prod_type_find(type) == NULL) {
        prod_type_list(list, sizeof(list));
        if (type != NULL && prod_printable(type))
            prod_err(err, errlen,
                     "type: unknown event type \"%s\" (one "
                     "of: %s)",
                     type, list);
        else
            prod_err(err, errlen, "type: unknown event type (one of: %s)",
                     list);
        goto out;
    }
    if (event_id != NULL && addr_uuid_check(event_id) != 0) {
        prod_err(err, errlen,
                 "event_id: not a UUID "
                 "(like 6f1c2a0e-8b5d-4c3e-9f7a-1b2c3d4e5f60)");
        goto out;
    }
    if (data_json != NULL &&
        prod_parse_data(data_json, &data, err, errlen) != MFA_PRODUCER_OK)
        goto out;
    /* envelope_build takes data over, also when it fails. */
    b = envelope_build(type, event_id, data, id);
    data = NULL;
    if (b == NULL) {
        prod_err(err, errlen, "the event is larger than %d bytes",
                 ENVELOPE_MAX_BODY);
        goto out;
    }
    if (envelope_parse(b, strlen(b), type, &ev, why, sizeof(why)) != 0) {
        prod_err(err, errlen, "%s", why);
        goto out;
    }
    envelope_free(&ev);
    *body = b;
    b = NULL;
    if (event_id_out != NULL)
        memcpy(event_id_out, id, sizeof(id));
    rc = MFA_PRODUCER_OK;
out:
    json_object_put(data);
    free(b);
    return rc;
}

void
mfa_producer_url_redact(const char *url, char *out, size_t n)
{
    const char *auth, *at, *colon, *slash;

    if (n == 0)
        return;
    if (url == NULL) {
        snprintf(out, n, "(none)");
        return;
    }
    auth = strstr(url, "://");
    auth = auth ? auth + 3 : url;
    slash = strchr(auth, '/');
    /* The last @ of the authority: a password may itself contain @ when
     * it was not percent-encoded. */
    at = NULL;
    for (const char *c = auth; *c && (slash == NULL || c < slash); c++)
        if (*c == '@')
            at = c;
    colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (colon == NULL) {
        snprintf(out, n, "%s", url);
        return;
    }
    snprintf(out, n, "%.*s:***%s", (int)(colon - url), url, at);
}
