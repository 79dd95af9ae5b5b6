/*
 * fuzz_envelope.c - libFuzzer target for envelope_parse() (mfa/envelope.h).
 *
 * The input is a message body as it comes off a queue. Every body is
 * parsed without an AMQP type. A body that is accepted is then parsed
 * again with its own type (must pass), with another known type (must be
 * refused) and with a hostile type cut from the input (the error quotes
 * it), and is rebuilt with envelope_build(), whose output must parse to
 * the same event: what we publish, our own consumers must accept.
 *
 * Security notes: the checks below are the promises handlers and SQL rely
 * on (ids lowercased UUIDs, no NULs or control characters where the
 * header says so, lengths capped) and that the dead-letter header relies
 * on (errors are short printable ASCII).
 */
#include "fuzz.h"
#include "mfa/addr.h"
#include "mfa/envelope.h"

#include <json-c/json.h>
#include <sodium.h>

/* A lowercased canonical UUID, as every char[37] id must be. */
static void
check_uuid(const char *id)
{
    FUZZ_CHECK(addr_uuid_check(id) == 0);
    for (const char *p = id; *p != '\0'; p++)
        FUZZ_CHECK(!(*p >= 'A' && *p <= 'F'));
}

/*
 * A string field: strict UTF-8, no NUL inside (it is a C string, so that
 * is the JSON length: envelope.c compared both), at most max characters
 * (octets when octets is set), no control characters when text is set.
 */
static void
check_str(const char *s, size_t max, int octets, int text)
{
    size_t len, chars = 0;

    FUZZ_CHECK(s != NULL);
    len = strlen(s);
    FUZZ_CHECK(fuzz_utf8_ok((const unsigned char *)s, len));
    for (size_t i = 0; i < len; i++)
        chars += ((unsigned char)s[i] & 0xc0) != 0x80;
    FUZZ_CHECK((octets ? len : chars) <= max);
    if (text)
        FUZZ_CHECK(!addr_has_control(s));
}

/* A CRM identifier: 1..64 of [A-Za-z0-9._:-]. */
static void
check_id(const char *s)
{
    FUZZ_CHECK(s != NULL);
    FUZZ_CHECK(strlen(s) >= 1 && strlen(s) <= 64);
    FUZZ_CHECK(strspn(s,
                      "abcdefghijklmnopqrstuvwxyz"
                      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-") == strlen(s));
}

/* absent, or null/"" (value NULL), or a non-empty value. */
static void
check_opt(const struct ev_opt *o, size_t max, int octets)
{
    FUZZ_CHECK(o->present || o->value == NULL);
    if (o->value != NULL) {
        FUZZ_CHECK(o->value[0] != '\0');
        check_str(o->value, max, octets, 1);
    }
}

static void
check_country(const struct ev_opt *o)
{
    check_opt(o, 2, 1);
    if (o->value != NULL)
        FUZZ_CHECK(strlen(o->value) == 2);
}

/* The promises of struct envelope for an accepted event. */
static void
check_event(const struct envelope *ev)
{
    int64_t us;

    check_uuid(ev->event_id);
    FUZZ_CHECK(ev->type != EV_UNKNOWN);
    FUZZ_CHECK(ev->type_name != NULL);
    FUZZ_CHECK(envelope_type_from_name(ev->type_name) == ev->type);
    FUZZ_CHECK(strcmp(envelope_type_name(ev->type), ev->type_name) == 0);
    FUZZ_CHECK(envelope_time_parse(ev->occurred_at, &us) == 0);
    FUZZ_CHECK(us == ev->occurred_at_us);
    FUZZ_CHECK(ev->root != NULL && ev->data != NULL);
    FUZZ_CHECK(json_object_is_type(ev->data, json_type_object));

    switch (ev->type) {
    case EV_CONTACT_PROMOTED:
        check_id(ev->u.promoted.contact_id);
        check_id(ev->u.promoted.organization_id);
        check_str(ev->u.promoted.display_name, 200, 0, 1);
        FUZZ_CHECK(ev->u.promoted.email.present);
        FUZZ_CHECK(ev->u.promoted.phone.present);
        check_opt(&ev->u.promoted.email, ADDR_EMAIL_MAX, 1);
        check_opt(&ev->u.promoted.phone, 64, 0);
        check_country(&ev->u.promoted.country);
        check_opt(&ev->u.promoted.locale, 16, 1);
        break;
    case EV_CONTACT_CHANGED:
        check_id(ev->u.changed.contact_id);
        check_opt(&ev->u.changed.email, ADDR_EMAIL_MAX, 1);
        check_opt(&ev->u.changed.phone, 64, 0);
        check_country(&ev->u.changed.country);
        check_opt(&ev->u.changed.display_name, 200, 0);
        check_opt(&ev->u.changed.locale, 16, 1);
        break;
    case EV_CONTACT_DEMOTED: check_id(ev->u.demoted.contact_id); break;
    case EV_USER_EMAIL_CONFIRMED:
        check_id(ev->u.email_confirmed.contact_id);
        check_str(ev->u.email_confirmed.email, ADDR_EMAIL_MAX, 1, 1);
        FUZZ_CHECK(ev->u.email_confirmed.email[0] != '\0');
        break;
    case EV_LOGIN_STARTED:
        check_uuid(ev->u.login_started.login_id);
        check_id(ev->u.login_started.contact_id);
        if (ev->u.login_started.ip != NULL)
            check_str(ev->u.login_started.ip, 64, 0, 1);
        if (ev->u.login_started.user_agent != NULL)
            check_str(ev->u.login_started.user_agent, 512, 0, 1);
        break;
    case EV_LOGIN_CODE_REQUESTED:
        check_uuid(ev->u.code_requested.login_id);
        FUZZ_CHECK(strcmp(ev->u.code_requested.method, "email") == 0 ||
                   strcmp(ev->u.code_requested.method, "sms") == 0);
        break;
    case EV_LOGIN_CODE_SUBMITTED:
        check_uuid(ev->u.code_submitted.login_id);
        /* Any characters, controls included: it is compared, not shown. */
        check_str(ev->u.code_submitted.code, 64, 0, 0);
        FUZZ_CHECK(ev->u.code_submitted.code[0] != '\0');
        break;
    case EV_DISPATCH_CODE:
        check_uuid(ev->u.dispatch_code.delivery_id);
        check_uuid(ev->u.dispatch_code.login_id);
        check_id(ev->u.dispatch_code.contact_id);
        FUZZ_CHECK(strcmp(ev->u.dispatch_code.channel, "email") == 0 ||
                   strcmp(ev->u.dispatch_code.channel, "sms") == 0);
        check_str(ev->u.dispatch_code.sealed, 1024, 1, 1);
        FUZZ_CHECK(envelope_time_parse(ev->u.dispatch_code.expires_at, &us) ==
                   0);
        FUZZ_CHECK(us == ev->u.dispatch_code.expires_at_us);
        break;
    case EV_DISPATCH_NOTICE:
        check_uuid(ev->u.dispatch_notice.delivery_id);
        check_id(ev->u.dispatch_notice.contact_id);
        FUZZ_CHECK(strcmp(ev->u.dispatch_notice.template_name,
                          "contact_changed") == 0);
        check_str(ev->u.dispatch_notice.to, ADDR_EMAIL_MAX, 1, 1);
        if (ev->u.dispatch_notice.locale != NULL)
            check_str(ev->u.dispatch_notice.locale, 16, 1, 1);
        if (ev->u.dispatch_notice.display_name != NULL)
            check_str(ev->u.dispatch_notice.display_name, 200, 0, 1);
        break;
    default: FUZZ_CHECK(!"unknown event type accepted");
    }
}

/* A refusal: ev left zeroed, and an error fit for x-mfa-error. */
static void
check_refused(const struct envelope *ev, const char *err)
{
    static const struct envelope zero;

    FUZZ_CHECK(memcmp(ev, &zero, sizeof(zero)) == 0);
    FUZZ_CHECK(err[0] != '\0');
    FUZZ_CHECK(strlen(err) < 256);
    FUZZ_CHECK(fuzz_printable(err));
}

/* The same event through envelope_build() and back. */
static void
check_round_trip(const struct envelope *ev)
{
    struct json_object *copy = NULL;
    struct envelope ev2;
    char id[37], err[256];
    char *body;

    FUZZ_CHECK(json_object_deep_copy(ev->data, &copy, NULL) == 0);
    body = envelope_build(ev->type_name, ev->event_id, copy, id);
    if (body == NULL) /* only when the rebuilt body outgrew the cap */
        return;
    FUZZ_CHECK(strcmp(id, ev->event_id) == 0);
    if (envelope_parse(body, strlen(body), ev->type_name, &ev2, err,
                       sizeof(err)) != 0) {
        fprintf(stderr, "rebuilt body refused: %s\n", err);
        FUZZ_CHECK(!"envelope_build() output refused by envelope_parse()");
    }
    FUZZ_CHECK(ev2.type == ev->type);
    FUZZ_CHECK(strcmp(ev2.event_id, ev->event_id) == 0);
    FUZZ_CHECK(json_object_equal(ev2.data, ev->data));
    envelope_free(&ev2);
    free(body);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (sodium_init() < 0)
        abort();
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    struct envelope ev, ev2;
    char err[256], err2[256], hostile[64];
    const char *other;
    int64_t us;
    int rc;

    /* The date parser alone, on the input as a C string (cheap). */
    if (size < 48) {
        char *s = fuzz_cstr(data, size);

        (void)envelope_time_parse(s, &us);
        free(s);
    }

    rc = envelope_parse(body, size, NULL, &ev, err, sizeof(err));
    /* An empty AMQP type means "not set", exactly like NULL. */
    FUZZ_CHECK(envelope_parse(body, size, "", &ev2, err2, sizeof(err2)) == rc);
    envelope_free(&ev2);
    if (rc != 0) {
        check_refused(&ev, err);
        envelope_free(&ev); /* promised safe on a refused envelope */
        return 0;
    }
    check_event(&ev);

    /* Its own AMQP type: accepted, the same event. */
    FUZZ_CHECK(envelope_parse(body, size, ev.type_name, &ev2, err2,
                              sizeof(err2)) == 0);
    FUZZ_CHECK(ev2.type == ev.type);
    envelope_free(&ev2);

    /* Another type: refused (the routing key and the body disagree). */
    other = envelope_type_name(ev.type == EV_LOGIN_STARTED ? EV_CONTACT_DEMOTED
                                                           : EV_LOGIN_STARTED);
    FUZZ_CHECK(envelope_parse(body, size, other, &ev2, err2, sizeof(err2)) !=
               0);
    check_refused(&ev2, err2);

    /* A hostile type property, cut from the input: quoted in the error. */
    memcpy(hostile, data, size < sizeof(hostile) ? size : sizeof(hostile));
    hostile[size < sizeof(hostile) - 1 ? size : sizeof(hostile) - 1] = '\0';
    rc = envelope_parse(body, size, hostile, &ev2, err2, sizeof(err2));
    FUZZ_CHECK(
        rc == 0 ? hostile[0] == '\0' || strcmp(hostile, ev.type_name) == 0 : 1);
    if (rc != 0)
        check_refused(&ev2, err2);
    envelope_free(&ev2);

    check_round_trip(&ev);
    envelope_free(&ev);
    envelope_free(&ev); /* twice is promised safe too */
    return 0;
}
