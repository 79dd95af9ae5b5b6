/*
 * test_envelope.c - unit tests for mfa/envelope: every top-level and
 * per-type rule, good and bad, as got/want tables; RFC 3339 conversion;
 * null versus absent in contact.changed; build -> parse round trips.
 */
#include "mfa/addr.h"
#include "mfa/envelope.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <json-c/json.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define EID "6f1c2b3a-1d2e-4f5a-8b9c-0d1e2f3a4b5c"
#define LID "0b7e1c52-9a4d-4e1b-a0c3-5d6e7f8a9b0c"
#define DID "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
#define AT "2026-11-29T10:00:00Z"
#define AT_US INT64_C(1795946400000000)

static char body[2 * ENVELOPE_MAX_BODY];
static char err[512];

/* A well-formed envelope around type and data (raw JSON text). */
static const char *
mk(const char *type, const char *data)
{
    snprintf(body, sizeof(body),
             "{\"event_id\":\"" EID "\",\"type\":\"%s\",\"occurred_at\":\"" AT
             "\",\"data\":%s}",
             type, data);
    return body;
}

static int
parse(const char *b, struct envelope *ev)
{
    err[0] = '\0';
    return envelope_parse(b, strlen(b), NULL, ev, err, sizeof(err));
}

/* s repeated to n bytes, as JSON string contents (no escapes needed). */
static const char *
rep(const char *s, size_t n)
{
    static char bufs[2][4096];
    static int k;
    char *b = bufs[k++ % 2];
    size_t i, sl = strlen(s);

    for (i = 0; i < n; i++)
        b[i] = s[i % sl];
    b[n] = '\0';
    return b;
}

struct bad {
    const char *type, *data, *want;
};

/* Each row must fail with exactly want and leave the envelope zeroed. */
static void
run_bad(const struct bad *t, size_t n)
{
    struct envelope ev;
    size_t i;

    for (i = 0; i < n; i++) {
        if (parse(mk(t[i].type, t[i].data), &ev) != -1)
            fail_msg("row %zu (%s %s) accepted", i, t[i].type, t[i].data);
        if (strcmp(err, t[i].want) != 0)
            fail_msg("row %zu (%s %s): got \"%s\", want \"%s\"", i, t[i].type,
                     t[i].data, err, t[i].want);
        assert_null(ev.root);
        assert_int_equal(ev.type, EV_UNKNOWN);
        envelope_free(&ev);
    }
}

/* ---- body and top level ------------------------------------------------ */

static void
test_body_rules(void **state)
{
    static const struct {
        const char *body;
        size_t len; /* 0 = strlen */
        const char *want;
    } t[] = {
        {"", 0, "body: empty"},
        {"not json", 0, "body: not valid JSON ("},
        {"   ", 0, "body: not valid JSON (unexpected end of data"},
        {"{\"event_id\":", 0, "body: not valid JSON (unexpected end"},
        {"{\"a\":1} x", 0, "body: not valid JSON (unexpected character"},
        {"{\"a\":1,}", 0, "body: not valid JSON (unexpected character"},
        {"{\"a\":1}{}", 0, "body: not valid JSON ("},
        {"[1,2]", 0, "body: not a JSON object"},
        {"\"str\"", 0, "body: not a JSON object"},
        {"123", 0, "body: not a JSON object"},
        {"null", 0, "body: not a JSON object"},
        /* invalid UTF-8 inside a JSON string: caught before json-c */
        {"{\"event_id\":\"\xc3\x28\"}", 0, "body: not valid UTF-8"},
        {"{\"x\":\"\xc0\xaf\"}", 0, "body: not valid UTF-8"},
        {"{\"x\":\"\xed\xa0\x80\"}", 0, "body: not valid UTF-8"},
        {"{\"x\":\"\xf4\x90\x80\x80\"}", 0, "body: not valid UTF-8"},
        {"{\"x\":\"\xff\"}", 0, "body: not valid UTF-8"},
        {"{}\0garbage", 10, "body: contains a NUL byte"},
        {"{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]"
         "]]]]]]]]]]]]]]]]]]]]}",
         0, "body: not valid JSON (nesting too deep"},
        {"{}", 0, "event_id: missing"},
    };
    struct envelope ev;
    size_t i, len;

    (void)state;
    for (i = 0; i < N(t); i++) {
        len = t[i].len ? t[i].len : strlen(t[i].body);
        err[0] = '\0';
        if (envelope_parse(t[i].body, len, NULL, &ev, err, sizeof(err)) != -1)
            fail_msg("row %zu accepted", i);
        if (strncmp(err, t[i].want, strlen(t[i].want)) != 0)
            fail_msg("row %zu: got \"%s\", want \"%s...\"", i, err, t[i].want);
        assert_null(ev.root);
    }
    /* NULL body, NULL err: no crash, still -1. */
    assert_int_equal(envelope_parse(NULL, 0, NULL, &ev, NULL, 0), -1);
    assert_int_equal(envelope_parse("{}", 2, NULL, &ev, NULL, 0), -1);
    /* json-c's own message is carried through. */
    assert_int_equal(parse("{\"a\":tru}", &ev), -1);
    assert_non_null(strstr(err, "at offset"));
}

static void
test_body_size(void **state)
{
    static const char head[] = "{\"contact_id\":\"c1\",\"pad\":\"";
    char *data;
    struct envelope ev;
    size_t n;

    (void)state;
    /* Pad with an unknown field up to exactly the limit: accepted. */
    mk("contact.demoted", "{\"contact_id\":\"c1\",\"pad\":\"\"}");
    n = ENVELOPE_MAX_BODY - strlen(body);
    data = malloc(ENVELOPE_MAX_BODY);
    assert_non_null(data);
    memcpy(data, head, sizeof(head) - 1);
    memset(data + sizeof(head) - 1, 'x', n);
    memcpy(data + sizeof(head) - 1 + n, "\"}", 3);
    mk("contact.demoted", data);
    free(data);
    assert_int_equal(strlen(body), ENVELOPE_MAX_BODY);
    assert_int_equal(parse(body, &ev), 0);
    envelope_free(&ev);
    /* One byte more is refused before parsing, with the size. */
    strcat(body, " ");
    assert_int_equal(parse(body, &ev), -1);
    assert_string_equal(err, "body: too large (65537 bytes, max 65536)");
    /* Even a body that is not JSON at all: the cap comes first. */
    memset(body, '{', 100000);
    assert_int_equal(envelope_parse(body, 100000, NULL, &ev, err, sizeof(err)),
                     -1);
    assert_string_equal(err, "body: too large (100000 bytes, max 65536)");
}

static void
test_top_level(void **state)
{
    static const struct {
        const char *body, *amqp, *want;
    } t[] = {
        {"{\"type\":\"contact.demoted\",\"occurred_at\":\"" AT
         "\",\"data\":{}}",
         NULL, "event_id: missing"},
        {"{\"event_id\":42}", NULL, "event_id: not a string"},
        {"{\"event_id\":null}", NULL, "event_id: not a string"},
        {"{\"event_id\":\"nope\"}", NULL, "event_id: not a UUID"},
        {"{\"event_id\":\"" EID "x\"}", NULL, "event_id: not a UUID"},
        {"{\"event_id\":\"" EID "\\u0000\"}", NULL,
         "event_id: contains a NUL character"},
        {"{\"event_id\":\"" EID "\"}", NULL, "type: missing"},
        {"{\"event_id\":\"" EID "\",\"type\":[]}", NULL, "type: not a string"},
        {"{\"event_id\":\"" EID "\",\"type\":\"x\"}", NULL,
         "type: unknown event type \"x\""},
        {"{\"event_id\":\"" EID "\",\"type\":\"Login.Started\"}", NULL,
         "type: unknown event type \"Login.Started\""},
        /* the quoted type is sanitized and truncated */
        {"{\"event_id\":\"" EID "\",\"type\":\"a\\n\\\"b\xc3\xa9"
         "0123456789012345678901234567890123456789\"}",
         NULL,
         "type: unknown event type \"a??b??01234567890123456789012345678901"
         "23...\""},
        {"{\"event_id\":\"" EID "\",\"type\":\"login.started\"}",
         "login.code_submitted",
         "type: \"login.started\" does not match the AMQP type property "
         "\"login.code_submitted\""},
        {"{\"event_id\":\"" EID "\",\"type\":\"contact.demoted\"}", NULL,
         "occurred_at: missing"},
        {"{\"event_id\":\"" EID "\",\"type\":\"contact.demoted\","
         "\"occurred_at\":1}",
         NULL, "occurred_at: not a string"},
        {"{\"event_id\":\"" EID "\",\"type\":\"contact.demoted\","
         "\"occurred_at\":\"yesterday\"}",
         NULL, "occurred_at: not an RFC 3339 timestamp"},
        {"{\"event_id\":\"" EID "\",\"type\":\"contact.demoted\","
         "\"occurred_at\":\"2026-02-30T10:00:00Z\"}",
         NULL, "occurred_at: not an RFC 3339 timestamp"},
        {"{\"event_id\":\"" EID "\",\"type\":\"contact.demoted\","
         "\"occurred_at\":\"2026-11-29T10:00:00.1234567890123456789012Z\"}",
         NULL, "occurred_at: not an RFC 3339 timestamp"},
        {"{\"event_id\":\"" EID "\",\"type\":\"contact.demoted\","
         "\"occurred_at\":\"" AT "\"}",
         NULL, "data: missing"},
        {"{\"event_id\":\"" EID "\",\"type\":\"contact.demoted\","
         "\"occurred_at\":\"" AT "\",\"data\":null}",
         NULL, "data: not an object"},
        {"{\"event_id\":\"" EID "\",\"type\":\"contact.demoted\","
         "\"occurred_at\":\"" AT "\",\"data\":[]}",
         NULL, "data: not an object"},
        {"{\"event_id\":\"" EID "\",\"type\":\"contact.demoted\","
         "\"occurred_at\":\"" AT "\",\"data\":\"{}\"}",
         NULL, "data: not an object"},
    };
    struct envelope ev;
    size_t i;

    (void)state;
    for (i = 0; i < N(t); i++) {
        err[0] = '\0';
        if (envelope_parse(t[i].body, strlen(t[i].body), t[i].amqp, &ev, err,
                           sizeof(err)) != -1)
            fail_msg("row %zu accepted", i);
        if (strcmp(err, t[i].want) != 0)
            fail_msg("row %zu: got \"%s\", want \"%s\"", i, err, t[i].want);
        assert_null(ev.root);
    }
}

static void
test_top_level_good(void **state)
{
    static const char *good_amqp[] = {NULL, "", "contact.demoted"};
    struct envelope ev;
    size_t i;

    (void)state;
    for (i = 0; i < N(good_amqp); i++) {
        mk("contact.demoted", "{\"contact_id\":\"c1\"}");
        assert_int_equal(envelope_parse(body, strlen(body), good_amqp[i], &ev,
                                        err, sizeof(err)),
                         0);
        envelope_free(&ev);
    }
    /* Uppercase event id is lowercased; unknown fields are ignored at the
     * top and in data; whitespace around the object is fine. */
    snprintf(body, sizeof(body),
             " \n{\"event_id\":\"6F1C2B3A-1D2E-4F5A-8B9C-0D1E2F3A4B5C\","
             "\"extra\":{\"deep\":[1,2,3]},\"type\":\"contact.demoted\","
             "\"occurred_at\":\"2026-11-29T11:00:00.250+01:00\","
             "\"data\":{\"contact_id\":\"c1\",\"unknown\":5}}\r\n");
    assert_int_equal(parse(body, &ev), 0);
    assert_string_equal(ev.event_id, EID);
    assert_int_equal(ev.type, EV_CONTACT_DEMOTED);
    assert_string_equal(ev.type_name, "contact.demoted");
    assert_string_equal(ev.occurred_at, "2026-11-29T11:00:00.250+01:00");
    assert_true(ev.occurred_at_us == AT_US + 250000);
    assert_non_null(ev.root);
    assert_non_null(ev.data);
    assert_string_equal(ev.u.demoted.contact_id, "c1");
    envelope_free(&ev);
    assert_null(ev.root);
    envelope_free(&ev); /* twice is harmless */
    envelope_free(NULL);
}

/* ---- RFC 3339 ------------------------------------------------------------ */

static void
test_time(void **state)
{
    static const struct {
        const char *in;
        int rc;
        int64_t us;
    } t[] = {
        {"1970-01-01T00:00:00Z", 0, 0},
        {"2026-11-29T10:00:00Z", 0, AT_US},
        {"2026-11-29t10:00:00z", 0, AT_US},
        {"2026-11-29T10:00:00+00:00", 0, AT_US},
        {"2026-11-29T10:00:00-00:00", 0, AT_US},
        {"2026-11-29T11:30:00+01:30", 0, AT_US},
        {"2026-11-29T05:00:00-05:00", 0, AT_US},
        {"2026-11-30T09:59:00+23:59", 0, AT_US},
        {"2026-11-29T00:00:00-10:00", 0, AT_US},
        {"2026-11-29T10:00:00.5Z", 0, AT_US + 500000},
        {"2026-11-29T10:00:00.123Z", 0, AT_US + 123000},
        {"2026-11-29T10:00:00.123456Z", 0, AT_US + 123456},
        {"2026-11-29T10:00:00.123456789Z", 0, AT_US + 123456},
        {"2026-11-29T11:00:00.000001+01:00", 0, AT_US + 1},
        {"1969-12-31T23:59:59Z", 0, -1000000},
        {"1969-12-31T23:59:59.5Z", 0, -500000},
        {"0001-01-01T00:00:00Z", 0, INT64_C(-62135596800) * 1000000},
        {"9999-12-31T23:59:59Z", 0, INT64_C(253402300799) * 1000000},
        {"2024-02-29T00:00:00Z", 0, INT64_C(1709164800) * 1000000},
        {"2000-02-29T00:00:00Z", 0, INT64_C(951782400) * 1000000},
        /* leap second: only at 23:59:60 UTC, counted as the next second */
        {"2016-12-31T23:59:60Z", 0, INT64_C(1483228800) * 1000000},
        {"2016-12-31T18:59:60-05:00", 0, INT64_C(1483228800) * 1000000},
        {"2016-12-31T10:00:60Z", -1, 0},
        {"2016-12-31T23:59:60+01:00", -1, 0},
        /* impossible dates and times */
        {"2023-02-29T00:00:00Z", -1, 0},
        {"1900-02-29T00:00:00Z", -1, 0},
        {"2026-04-31T00:00:00Z", -1, 0},
        {"2026-00-10T00:00:00Z", -1, 0},
        {"2026-13-10T00:00:00Z", -1, 0},
        {"2026-11-00T00:00:00Z", -1, 0},
        {"2026-11-32T00:00:00Z", -1, 0},
        {"2026-11-29T24:00:00Z", -1, 0},
        {"2026-11-29T10:60:00Z", -1, 0},
        {"2026-11-29T10:00:61Z", -1, 0},
        {"2026-11-29T10:00:00+24:00", -1, 0},
        {"2026-11-29T10:00:00+01:60", -1, 0},
        /* syntax */
        {"", -1, 0},
        {"2026-11-29", -1, 0},
        {"2026-11-29T10:00:00", -1, 0},
        {"2026-11-29 10:00:00Z", -1, 0},
        {"2026-11-29T10:00Z", -1, 0},
        {"2026-1-29T10:00:00Z", -1, 0},
        {"2026/11/29T10:00:00Z", -1, 0},
        {"2026-11-29T10:00:00.Z", -1, 0},
        {"2026-11-29T10:00:00.1234567890Z", -1, 0},
        {"2026-11-29T10:00:00+0100", -1, 0},
        {"2026-11-29T10:00:00+01", -1, 0},
        {"2026-11-29T10:00:00+01:00x", -1, 0},
        {"2026-11-29T10:00:00ZZ", -1, 0},
        {"2026-11-29T10:00:00 Z", -1, 0},
        {"+2026-11-29T10:00:00Z", -1, 0},
        {"2026-11-29T1a:00:00Z", -1, 0},
        {"1234567890", -1, 0},
    };
    int64_t us;
    size_t i;

    (void)state;
    for (i = 0; i < N(t); i++) {
        us = -42;
        if (envelope_time_parse(t[i].in, &us) != t[i].rc)
            fail_msg("time[%zu] \"%s\": want rc %d", i, t[i].in, t[i].rc);
        if (t[i].rc == 0 && us != t[i].us)
            fail_msg("time[%zu] \"%s\": got %lld, want %lld", i, t[i].in,
                     (long long)us, (long long)t[i].us);
    }
    assert_int_equal(envelope_time_parse(NULL, &us), -1);
}

/* ---- contact.* and user.* -------------------------------------------- */

static void
test_promoted_good(void **state)
{
    struct envelope ev;

    (void)state;
    assert_int_equal(
        parse(mk("contact.promoted",
                 "{\"contact_id\":\"crm:123-a_b.C\",\"organization_id\":"
                 "\"org-9\",\"display_name\":\"J\\u00f6rg M\xc3\xbcller\","
                 "\"email\":\"jane@example.com\",\"phone\":\"+31 6 1234 "
                 "5678\",\"country\":\"nl\",\"locale\":\"nl-BE\"}"),
              &ev),
        0);
    assert_int_equal(ev.type, EV_CONTACT_PROMOTED);
    assert_string_equal(ev.u.promoted.contact_id, "crm:123-a_b.C");
    assert_string_equal(ev.u.promoted.organization_id, "org-9");
    assert_string_equal(ev.u.promoted.display_name,
                        "J\xc3\xb6rg M\xc3\xbcller");
    assert_true(ev.u.promoted.email.present);
    assert_string_equal(ev.u.promoted.email.value, "jane@example.com");
    assert_string_equal(ev.u.promoted.phone.value, "+31 6 1234 5678");
    /* stored as given; callers uppercase */
    assert_string_equal(ev.u.promoted.country.value, "nl");
    assert_string_equal(ev.u.promoted.locale.value, "nl-BE");
    envelope_free(&ev);

    /* email/phone null or "": present, cleared; country/locale absent;
     * email syntax is not this module's business. */
    assert_int_equal(
        parse(mk("contact.promoted",
                 "{\"contact_id\":\"c1\",\"organization_id\":\"o1\","
                 "\"display_name\":\"\",\"email\":null,\"phone\":\"\"}"),
              &ev),
        0);
    assert_true(ev.u.promoted.email.present);
    assert_null(ev.u.promoted.email.value);
    assert_true(ev.u.promoted.phone.present);
    assert_null(ev.u.promoted.phone.value);
    assert_false(ev.u.promoted.country.present);
    assert_false(ev.u.promoted.locale.present);
    assert_string_equal(ev.u.promoted.display_name, "");
    envelope_free(&ev);

    assert_int_equal(
        parse(mk("contact.promoted",
                 "{\"contact_id\":\"c1\",\"organization_id\":\"o1\","
                 "\"display_name\":\"x\",\"email\":\"not an email\","
                 "\"phone\":null,\"country\":null,\"locale\":\"pt_BR\"}"),
              &ev),
        0);
    assert_string_equal(ev.u.promoted.email.value, "not an email");
    assert_true(ev.u.promoted.country.present);
    assert_null(ev.u.promoted.country.value);
    assert_string_equal(ev.u.promoted.locale.value, "pt_BR");
    envelope_free(&ev);
}

#define PROMO(extra)                                                           \
    "{\"contact_id\":\"c1\",\"organization_id\":\"o1\",\"display_name\":"      \
    "\"Jane\",\"email\":\"j@x.io\",\"phone\":\"+3161\"" extra "}"

static void
test_promoted_bad(void **state)
{
    static const struct bad t[] = {
        {"contact.promoted", "{}", "data.contact_id: missing"},
        {"contact.promoted",
         "{\"contact_id\":\"c1\",\"display_name\":\"J\",\"email\":null,"
         "\"phone\":null}",
         "data.organization_id: missing"},
        {"contact.promoted",
         "{\"contact_id\":\"c1\",\"organization_id\":\"o1\",\"email\":null,"
         "\"phone\":null}",
         "data.display_name: missing"},
        {"contact.promoted",
         "{\"contact_id\":\"c1\",\"organization_id\":\"o1\","
         "\"display_name\":\"J\",\"phone\":null}",
         "data.email: missing"},
        {"contact.promoted",
         "{\"contact_id\":\"c1\",\"organization_id\":\"o1\","
         "\"display_name\":\"J\",\"email\":null}",
         "data.phone: missing"},
        {"contact.promoted", "{\"contact_id\":7}",
         "data.contact_id: not a string"},
        {"contact.promoted", "{\"contact_id\":null}",
         "data.contact_id: is null"},
        {"contact.promoted", "{\"contact_id\":\"\"}", "data.contact_id: empty"},
        {"contact.promoted", "{\"contact_id\":\"c 1\"}",
         "data.contact_id: invalid character (allowed: A-Z a-z 0-9 . _ : -)"},
        {"contact.promoted", "{\"contact_id\":\"c/1\"}",
         "data.contact_id: invalid character (allowed: A-Z a-z 0-9 . _ : -)"},
        {"contact.promoted", "{\"contact_id\":\"c\xc3\xa9\"}",
         "data.contact_id: invalid character (allowed: A-Z a-z 0-9 . _ : -)"},
        {"contact.promoted", "{\"contact_id\":\"c\\u0000d\"}",
         "data.contact_id: contains a NUL character"},
        {"contact.promoted",
         "{\"contact_id\":\"c1\",\"organization_id\":\"o 1\"}",
         "data.organization_id: invalid character (allowed: A-Z a-z 0-9 . _ "
         ": -)"},
        {"contact.promoted",
         "{\"contact_id\":\"c1\",\"organization_id\":\"o1\","
         "\"display_name\":null}",
         "data.display_name: is null"},
        {"contact.promoted",
         "{\"contact_id\":\"c1\",\"organization_id\":\"o1\","
         "\"display_name\":1}",
         "data.display_name: not a string"},
        {"contact.promoted",
         "{\"contact_id\":\"c1\",\"organization_id\":\"o1\","
         "\"display_name\":\"J\\nD\"}",
         "data.display_name: contains control characters"},
        {"contact.promoted",
         "{\"contact_id\":\"c1\",\"organization_id\":\"o1\","
         "\"display_name\":\"J\tD\"}", /* raw tab: json-c lets it in */
         "data.display_name: contains control characters"},
        {"contact.promoted",
         "{\"contact_id\":\"c1\",\"organization_id\":\"o1\","
         "\"display_name\":\"J\\u007f\"}",
         "data.display_name: contains control characters"},
        {"contact.promoted",
         "{\"contact_id\":\"c1\",\"organization_id\":\"o1\","
         "\"display_name\":\"J\",\"email\":[]}",
         "data.email: not a string or null"},
        {"contact.promoted",
         "{\"contact_id\":\"c1\",\"organization_id\":\"o1\","
         "\"display_name\":\"J\",\"email\":\"j@x.io\\r\\nBcc: x@y.z\"}",
         "data.email: contains control characters"},
        {"contact.promoted", PROMO(",\"phone\":\"+31\\t6\""),
         "data.phone: contains control characters"},
        {"contact.promoted", PROMO(",\"phone\":31612345678"),
         "data.phone: not a string or null"},
        {"contact.promoted", PROMO(",\"country\":\"NLD\""),
         "data.country: not a 2-letter country code"},
        {"contact.promoted", PROMO(",\"country\":\"N\""),
         "data.country: not a 2-letter country code"},
        {"contact.promoted", PROMO(",\"country\":\"N1\""),
         "data.country: not a 2-letter country code"},
        {"contact.promoted", PROMO(",\"country\":\"\\u00c9S\""),
         "data.country: not a 2-letter country code"},
        {"contact.promoted", PROMO(",\"country\":31"),
         "data.country: not a string or null"},
        {"contact.promoted", PROMO(",\"locale\":\"english\""),
         "data.locale: not a locale (like en, nl-BE, pt_BR)"},
        {"contact.promoted", PROMO(",\"locale\":\"e\""),
         "data.locale: not a locale (like en, nl-BE, pt_BR)"},
        {"contact.promoted", PROMO(",\"locale\":\"en-\""),
         "data.locale: not a locale (like en, nl-BE, pt_BR)"},
        {"contact.promoted", PROMO(",\"locale\":\"en-B\""),
         "data.locale: not a locale (like en, nl-BE, pt_BR)"},
        {"contact.promoted", PROMO(",\"locale\":\"en-BEBEB\""),
         "data.locale: not a locale (like en, nl-BE, pt_BR)"},
        {"contact.promoted", PROMO(",\"locale\":\"en.BE\""),
         "data.locale: not a locale (like en, nl-BE, pt_BR)"},
        {"contact.promoted", PROMO(",\"locale\":\"en-B!\""),
         "data.locale: not a locale (like en, nl-BE, pt_BR)"},
        {"contact.promoted", PROMO(",\"locale\":\"1n\""),
         "data.locale: not a locale (like en, nl-BE, pt_BR)"},
    };

    (void)state;
    run_bad(t, N(t));
}

/* Lengths at and one past each limit, in characters or octets. */
static void
test_promoted_lengths(void **state)
{
    static const struct {
        const char *key, *unit;
        size_t limit;
        const char *want;
    } t[] = {
        {"contact_id", "a", 64,
         "data.contact_id: too long (max 64 characters)"},
        {"organization_id", "b", 64,
         "data.organization_id: too long (max 64 characters)"},
        /* 200 characters of two bytes each are still 200 characters */
        {"display_name", "\xc3\xa9", 200,
         "data.display_name: too long (max 200 characters)"},
        {"display_name", "x", 200,
         "data.display_name: too long (max 200 characters)"},
        {"phone", "1", 64, "data.phone: too long (max 64 characters)"},
        {"email", "e", 254, "data.email: too long (max 254 bytes)"},
    };
    char data[4096];
    struct envelope ev;
    size_t i, ul;
    int over;

    (void)state;
    for (i = 0; i < N(t); i++) {
        ul = strlen(t[i].unit);
        for (over = 0; over <= 1; over++) {
            snprintf(data, sizeof(data),
                     "{\"contact_id\":\"c1\",\"organization_id\":\"o1\","
                     "\"display_name\":\"J\",\"email\":null,\"phone\":null,"
                     "\"%s\":\"%s\"}",
                     t[i].key, rep(t[i].unit, (t[i].limit + over) * ul));
            if (parse(mk("contact.promoted", data), &ev) != -over)
                fail_msg("row %zu over=%d: %s", i, over, err);
            if (over)
                assert_string_equal(err, t[i].want);
            envelope_free(&ev);
        }
    }
    /* email is counted in octets: 128 two-byte characters = 256 > 254 */
    snprintf(data, sizeof(data),
             "{\"contact_id\":\"c1\",\"organization_id\":\"o1\","
             "\"display_name\":\"J\",\"phone\":null,\"email\":\"%s\"}",
             rep("\xc3\xa9", 256));
    assert_int_equal(parse(mk("contact.promoted", data), &ev), -1);
    assert_string_equal(err, "data.email: too long (max 254 bytes)");
}

static void
test_changed_null_vs_absent(void **state)
{
    static const char *const keys[] = {"email", "phone", "country",
                                       "display_name", "locale"};
    struct envelope ev;
    char data[256];
    size_t i;

    (void)state;
    /* Only the id: nothing present, nothing to change. */
    assert_int_equal(
        parse(mk("contact.changed", "{\"contact_id\":\"c1\"}"), &ev), 0);
    assert_int_equal(ev.type, EV_CONTACT_CHANGED);
    assert_string_equal(ev.u.changed.contact_id, "c1");
    assert_false(ev.u.changed.email.present);
    assert_false(ev.u.changed.phone.present);
    assert_false(ev.u.changed.country.present);
    assert_false(ev.u.changed.display_name.present);
    assert_false(ev.u.changed.locale.present);
    envelope_free(&ev);

    /* Each key null, and each key "": present and cleared; others absent. */
    for (i = 0; i < N(keys) * 2; i++) {
        const struct ev_opt *o[] = {
            &ev.u.changed.email, &ev.u.changed.phone, &ev.u.changed.country,
            &ev.u.changed.display_name, &ev.u.changed.locale};
        size_t j;

        snprintf(data, sizeof(data), "{\"contact_id\":\"c1\",\"%s\":%s}",
                 keys[i % N(keys)], i < N(keys) ? "null" : "\"\"");
        if (parse(mk("contact.changed", data), &ev) != 0)
            fail_msg("%s: %s", data, err);
        for (j = 0; j < N(keys); j++) {
            assert_int_equal(o[j]->present, j == i % N(keys));
            assert_null(o[j]->value);
        }
        envelope_free(&ev);
    }

    /* All set. */
    assert_int_equal(
        parse(mk("contact.changed",
                 "{\"contact_id\":\"c1\",\"email\":\"new@example.com\","
                 "\"phone\":\"+32470123456\",\"country\":\"BE\","
                 "\"display_name\":\"Jane D\",\"locale\":\"fr-BE\"}"),
              &ev),
        0);
    assert_string_equal(ev.u.changed.email.value, "new@example.com");
    assert_string_equal(ev.u.changed.phone.value, "+32470123456");
    assert_string_equal(ev.u.changed.country.value, "BE");
    assert_string_equal(ev.u.changed.display_name.value, "Jane D");
    assert_string_equal(ev.u.changed.locale.value, "fr-BE");
    envelope_free(&ev);
}

static void
test_contact_bad(void **state)
{
    static const struct bad t[] = {
        {"contact.changed", "{}", "data.contact_id: missing"},
        {"contact.changed", "{\"contact_id\":null}",
         "data.contact_id: is null"},
        {"contact.changed", "{\"contact_id\":\"c1\",\"email\":false}",
         "data.email: not a string or null"},
        {"contact.changed",
         "{\"contact_id\":\"c1\",\"display_name\":\"a\\u0001\"}",
         "data.display_name: contains control characters"},
        {"contact.changed", "{\"contact_id\":\"c1\",\"country\":\"NLD\"}",
         "data.country: not a 2-letter country code"},
        {"contact.changed", "{\"contact_id\":\"c1\",\"locale\":\"xx-\"}",
         "data.locale: not a locale (like en, nl-BE, pt_BR)"},
        {"contact.changed", "{\"contact_id\":\"c1\",\"phone\":{}}",
         "data.phone: not a string or null"},
        {"contact.demoted", "{}", "data.contact_id: missing"},
        {"contact.demoted", "{\"contact_id\":1}",
         "data.contact_id: not a string"},
        {"user.email_confirmed", "{\"contact_id\":\"c1\"}",
         "data.email: missing"},
        {"user.email_confirmed", "{\"contact_id\":\"c1\",\"email\":null}",
         "data.email: is null"},
        {"user.email_confirmed", "{\"contact_id\":\"c1\",\"email\":\"\"}",
         "data.email: empty"},
        {"user.email_confirmed", "{\"email\":\"j@x.io\"}",
         "data.contact_id: missing"},
        {"user.email_confirmed",
         "{\"contact_id\":\"c1\",\"email\":\"j@x.io\\u0000.evil\"}",
         "data.email: contains a NUL character"},
    };
    struct envelope ev;

    (void)state;
    run_bad(t, N(t));
    assert_int_equal(
        parse(mk("contact.demoted", "{\"contact_id\":\"c-9\"}"), &ev), 0);
    assert_string_equal(ev.u.demoted.contact_id, "c-9");
    envelope_free(&ev);
    assert_int_equal(
        parse(mk("user.email_confirmed", "{\"contact_id\":\"c1\",\"email\":"
                                         "\"Jane@Example.com\"}"),
              &ev),
        0);
    assert_int_equal(ev.type, EV_USER_EMAIL_CONFIRMED);
    assert_string_equal(ev.u.email_confirmed.contact_id, "c1");
    assert_string_equal(ev.u.email_confirmed.email, "Jane@Example.com");
    envelope_free(&ev);
}

/* ---- login.* ---------------------------------------------------------- */

static void
test_login_good(void **state)
{
    char data[256];
    struct envelope ev;

    (void)state;
    assert_int_equal(
        parse(mk("login.started",
                 "{\"login_id\":\"0B7E1C52-9A4D-4E1B-A0C3-5D6E7F8A9B0C\","
                 "\"contact_id\":\"c1\",\"ip\":\"2001:db8::1\","
                 "\"user_agent\":\"Mozilla/5.0 (X11; Linux)\"}"),
              &ev),
        0);
    assert_int_equal(ev.type, EV_LOGIN_STARTED);
    assert_string_equal(ev.u.login_started.login_id, LID);
    assert_string_equal(ev.u.login_started.contact_id, "c1");
    assert_string_equal(ev.u.login_started.ip, "2001:db8::1");
    assert_string_equal(ev.u.login_started.user_agent,
                        "Mozilla/5.0 (X11; Linux)");
    envelope_free(&ev);

    assert_int_equal(
        parse(mk("login.started", "{\"login_id\":\"" LID "\",\"contact_id\":"
                                  "\"c1\",\"ip\":null}"),
              &ev),
        0);
    assert_null(ev.u.login_started.ip);
    assert_null(ev.u.login_started.user_agent);
    envelope_free(&ev);

    assert_int_equal(parse(mk("login.code_requested",
                              "{\"login_id\":\"" LID "\",\"method\":\"sms\"}"),
                           &ev),
                     0);
    assert_int_equal(ev.type, EV_LOGIN_CODE_REQUESTED);
    assert_string_equal(ev.u.code_requested.login_id, LID);
    assert_string_equal(ev.u.code_requested.method, "sms");
    envelope_free(&ev);

    /* The code's shape is policy: "abc" and 64 characters both parse. */
    assert_int_equal(parse(mk("login.code_submitted",
                              "{\"login_id\":\"" LID "\",\"code\":\"abc\"}"),
                           &ev),
                     0);
    assert_int_equal(ev.type, EV_LOGIN_CODE_SUBMITTED);
    assert_string_equal(ev.u.code_submitted.code, "abc");
    envelope_free(&ev);
    snprintf(data, sizeof(data), "{\"login_id\":\"" LID "\",\"code\":\"%s\"}",
             rep("7", 64));
    assert_int_equal(parse(mk("login.code_submitted", data), &ev), 0);
    assert_int_equal(strlen(ev.u.code_submitted.code), 64);
    envelope_free(&ev);
}

static void
test_login_bad(void **state)
{
    static char ua[700], code[200];
    struct bad t[] = {
        {"login.started", "{\"contact_id\":\"c1\"}", "data.login_id: missing"},
        {"login.started", "{\"login_id\":\"x\",\"contact_id\":\"c1\"}",
         "data.login_id: not a UUID"},
        {"login.started", "{\"login_id\":42}", "data.login_id: not a string"},
        {"login.started", "{\"login_id\":\"" LID "\"}",
         "data.contact_id: missing"},
        {"login.started",
         "{\"login_id\":\"" LID "\",\"contact_id\":\"c1\",\"ip\":5}",
         "data.ip: not a string or null"},
        {"login.started",
         "{\"login_id\":\"" LID "\",\"contact_id\":\"c1\","
         "\"ip\":\"1.2.3.4\\n\"}",
         "data.ip: contains control characters"},
        {"login.started",
         "{\"login_id\":\"" LID "\",\"contact_id\":\"c1\",\"user_agent\":"
         "\"x\\u001b[2J\"}",
         "data.user_agent: contains control characters"},
        {"login.started", ua, "data.user_agent: too long (max 512 characters)"},
        {"login.code_requested", "{\"login_id\":\"" LID "\"}",
         "data.method: missing"},
        {"login.code_requested",
         "{\"login_id\":\"" LID "\",\"method\":\"SMS\"}",
         "data.method: must be one of: email, sms"},
        {"login.code_requested",
         "{\"login_id\":\"" LID "\",\"method\":\"voice\"}",
         "data.method: must be one of: email, sms"},
        {"login.code_requested", "{\"login_id\":\"" LID "\",\"method\":1}",
         "data.method: not a string"},
        {"login.code_requested", "{\"method\":\"email\"}",
         "data.login_id: missing"},
        {"login.code_submitted", "{\"login_id\":\"" LID "\"}",
         "data.code: missing"},
        {"login.code_submitted", "{\"login_id\":\"" LID "\",\"code\":\"\"}",
         "data.code: empty"},
        {"login.code_submitted", "{\"login_id\":\"" LID "\",\"code\":123456}",
         "data.code: not a string"},
        {"login.code_submitted", "{\"login_id\":\"" LID "\",\"code\":null}",
         "data.code: is null"},
        {"login.code_submitted",
         "{\"login_id\":\"" LID "\",\"code\":\"123\\u0000456\"}",
         "data.code: contains a NUL character"},
        {"login.code_submitted", code,
         "data.code: too long (max 64 characters)"},
        {"login.code_submitted", "{\"login_id\":\"" LID "-\",\"code\":\"1\"}",
         "data.login_id: not a UUID"},
    };

    (void)state;
    snprintf(ua, sizeof(ua),
             "{\"login_id\":\"" LID "\",\"contact_id\":\"c1\","
             "\"user_agent\":\"%s\"}",
             rep("u", 513));
    snprintf(code, sizeof(code), "{\"login_id\":\"" LID "\",\"code\":\"%s\"}",
             rep("1", 65));
    run_bad(t, N(t));
}

/* ---- dispatch.* -------------------------------------------------------- */

#define DCODE(ch, sealed, exp)                                                 \
    "{\"delivery_id\":\"" DID "\",\"login_id\":\"" LID "\","                   \
    "\"contact_id\":\"c1\",\"channel\":\"" ch "\",\"sealed\":\"" sealed        \
    "\",\"expires_at\":\"" exp "\"}"

static void
test_dispatch(void **state)
{
    static char big[1400];
    struct bad t[] = {
        {"dispatch.code", DCODE("fax", "QUJD", AT),
         "data.channel: must be one of: email, sms"},
        {"dispatch.code", DCODE("sms", "QUJ$", AT), "data.sealed: not base64"},
        {"dispatch.code", DCODE("sms", "QUJDR", AT), "data.sealed: not base64"},
        {"dispatch.code", DCODE("sms", "QU=D", AT), "data.sealed: not base64"},
        {"dispatch.code", DCODE("sms", "", AT), "data.sealed: empty"},
        {"dispatch.code", big, "data.sealed: too long (max 1024 characters)"},
        {"dispatch.code", DCODE("sms", "QUJD", "soon"),
         "data.expires_at: not an RFC 3339 timestamp"},
        {"dispatch.code", DCODE("sms", "QUJD", "2026-11-31T10:00:00Z"),
         "data.expires_at: not an RFC 3339 timestamp"},
        {"dispatch.code", "{\"delivery_id\":\"x\"}",
         "data.delivery_id: not a UUID"},
        {"dispatch.code", "{\"delivery_id\":\"" DID "\"}",
         "data.login_id: missing"},
        {"dispatch.notice",
         "{\"delivery_id\":\"" DID "\",\"contact_id\":\"c1\","
         "\"template\":\"welcome\",\"to\":\"old@example.com\"}",
         "data.template: must be one of: contact_changed"},
        {"dispatch.notice",
         "{\"delivery_id\":\"" DID "\",\"contact_id\":\"c1\","
         "\"template\":\"contact_changed\"}",
         "data.to: missing"},
        {"dispatch.notice",
         "{\"delivery_id\":\"" DID "\",\"contact_id\":\"c1\","
         "\"template\":\"contact_changed\",\"to\":\"a@b.c\\r\\n\"}",
         "data.to: contains control characters"},
        {"dispatch.notice",
         "{\"delivery_id\":\"" DID "\",\"contact_id\":\"c1\","
         "\"template\":\"contact_changed\",\"to\":\"a@b.c\",\"locale\":\"x\"}",
         "data.locale: not a locale (like en, nl-BE, pt_BR)"},
    };
    struct envelope ev;
    int n;

    (void)state;
    n = snprintf(big, sizeof(big),
                 "{\"delivery_id\":\"" DID "\",\"login_id\""
                 ":\"" LID "\",\"contact_id\":\"c1\",\"channel\":\"sms\","
                 "\"sealed\":\"%s\",\"expires_at\":\"" AT "\"}",
                 rep("QUJD", 1028));
    assert_true(n < (int)sizeof(big));
    run_bad(t, N(t));

    assert_int_equal(
        parse(mk("dispatch.code", DCODE("email", "AAECAwQFBgcICQ==",
                                        "2026-11-29T10:05:00.5+00:00")),
              &ev),
        0);
    assert_int_equal(ev.type, EV_DISPATCH_CODE);
    assert_string_equal(ev.u.dispatch_code.delivery_id, DID);
    assert_string_equal(ev.u.dispatch_code.login_id, LID);
    assert_string_equal(ev.u.dispatch_code.contact_id, "c1");
    assert_string_equal(ev.u.dispatch_code.channel, "email");
    assert_string_equal(ev.u.dispatch_code.sealed, "AAECAwQFBgcICQ==");
    assert_string_equal(ev.u.dispatch_code.expires_at,
                        "2026-11-29T10:05:00.5+00:00");
    assert_true(ev.u.dispatch_code.expires_at_us == AT_US + INT64_C(300500000));
    envelope_free(&ev);
    /* exactly 1024 base64 characters */
    snprintf(big, sizeof(big),
             "{\"delivery_id\":\"" DID "\",\"login_id\":\"" LID
             "\",\"contact_id\":\"c1\",\"channel\":\"sms\",\"sealed\":"
             "\"%s\",\"expires_at\":\"" AT "\"}",
             rep("QUJD", 1024));
    assert_int_equal(parse(mk("dispatch.code", big), &ev), 0);
    envelope_free(&ev);

    assert_int_equal(parse(mk("dispatch.notice",
                              "{\"delivery_id\":\"" DID "\",\"contact_id\":"
                              "\"c1\",\"template\":\"contact_changed\","
                              "\"to\":\"old@example.com\",\"locale\":\"nl\","
                              "\"display_name\":\"Jane\"}"),
                           &ev),
                     0);
    assert_int_equal(ev.type, EV_DISPATCH_NOTICE);
    assert_string_equal(ev.u.dispatch_notice.delivery_id, DID);
    assert_string_equal(ev.u.dispatch_notice.template_name, "contact_changed");
    assert_string_equal(ev.u.dispatch_notice.to, "old@example.com");
    assert_string_equal(ev.u.dispatch_notice.locale, "nl");
    assert_string_equal(ev.u.dispatch_notice.display_name, "Jane");
    envelope_free(&ev);
    assert_int_equal(parse(mk("dispatch.notice",
                              "{\"delivery_id\":\"" DID "\",\"contact_id\":"
                              "\"c1\",\"template\":\"contact_changed\","
                              "\"to\":\"old@example.com\",\"display_name\":"
                              "null}"),
                           &ev),
                     0);
    assert_null(ev.u.dispatch_notice.locale);
    assert_null(ev.u.dispatch_notice.display_name);
    envelope_free(&ev);
}

/* ---- names and building ------------------------------------------------ */

static void
test_type_names(void **state)
{
    static const struct {
        const char *name;
        enum ev_type type;
    } t[] = {
        {"contact.promoted", EV_CONTACT_PROMOTED},
        {"contact.changed", EV_CONTACT_CHANGED},
        {"contact.demoted", EV_CONTACT_DEMOTED},
        {"user.email_confirmed", EV_USER_EMAIL_CONFIRMED},
        {"login.started", EV_LOGIN_STARTED},
        {"login.code_requested", EV_LOGIN_CODE_REQUESTED},
        {"login.code_submitted", EV_LOGIN_CODE_SUBMITTED},
        {"dispatch.code", EV_DISPATCH_CODE},
        {"dispatch.notice", EV_DISPATCH_NOTICE},
    };
    size_t i;

    (void)state;
    for (i = 0; i < N(t); i++) {
        assert_int_equal(envelope_type_from_name(t[i].name), t[i].type);
        assert_string_equal(envelope_type_name(t[i].type), t[i].name);
    }
    assert_int_equal(envelope_type_from_name(NULL), EV_UNKNOWN);
    assert_int_equal(envelope_type_from_name(""), EV_UNKNOWN);
    assert_int_equal(envelope_type_from_name("login.*"), EV_UNKNOWN);
    assert_int_equal(envelope_type_from_name("LOGIN.STARTED"), EV_UNKNOWN);
    assert_null(envelope_type_name(EV_UNKNOWN));
    assert_null(envelope_type_name((enum ev_type)99));
}

static void
test_build_roundtrip(void **state)
{
    struct json_object *d;
    struct envelope ev;
    char id[37];
    char *s;
    int64_t now_us;

    (void)state;
    d = json_object_new_object();
    json_object_object_add(d, "login_id", json_object_new_string(LID));
    json_object_object_add(d, "contact_id", json_object_new_string("c1"));
    json_object_object_add(d, "user_agent",
                           json_object_new_string("Agent/1 \"q\" \\ /"));
    s = envelope_build("login.started", NULL, d, id);
    assert_non_null(s);
    assert_int_equal(addr_uuid_check(id), 0);
    assert_int_equal(
        envelope_parse(s, strlen(s), "login.started", &ev, err, sizeof(err)),
        0);
    assert_string_equal(ev.event_id, id);
    assert_int_equal(ev.type, EV_LOGIN_STARTED);
    assert_string_equal(ev.u.login_started.login_id, LID);
    assert_string_equal(ev.u.login_started.user_agent, "Agent/1 \"q\" \\ /");
    /* now, UTC, with milliseconds: 2026-11-29T10:00:00.123Z */
    assert_int_equal(strlen(ev.occurred_at), 24);
    assert_int_equal(ev.occurred_at[19], '.');
    assert_int_equal(ev.occurred_at[23], 'Z');
    now_us = (int64_t)time(NULL) * 1000000;
    assert_true(ev.occurred_at_us > now_us - 5000000 &&
                ev.occurred_at_us < now_us + 5000000);
    assert_int_equal(ev.occurred_at_us % 1000, 0);
    envelope_free(&ev);
    free(s);

    /* A given event id is kept (lowercased); NULL out_event_id is fine. */
    d = json_object_new_object();
    json_object_object_add(d, "contact_id", json_object_new_string("c1"));
    json_object_object_add(d, "email", NULL);
    s = envelope_build("contact.changed",
                       "6F1C2B3A-1D2E-4F5A-8B9C-0D1E2F3A4B5C", d, NULL);
    assert_non_null(s);
    assert_int_equal(parse(s, &ev), 0);
    assert_string_equal(ev.event_id, EID);
    assert_true(ev.u.changed.email.present);
    assert_null(ev.u.changed.email.value);
    assert_false(ev.u.changed.phone.present);
    envelope_free(&ev);
    free(s);

    /* data NULL means {} (which contact.demoted then refuses). */
    s = envelope_build("contact.demoted", EID, NULL, id);
    assert_non_null(s);
    assert_string_equal(id, EID);
    assert_int_equal(parse(s, &ev), -1);
    assert_string_equal(err, "data.contact_id: missing");
    free(s);
}

static void
test_build_refuses(void **state)
{
    struct json_object *d;
    char id[37] = "x";
    char *big;

    (void)state;
    /* Each failure still takes ownership of data (valgrind: no leak). */
    d = json_object_new_object();
    assert_null(envelope_build("Login Nope", NULL, d, id));
    assert_string_equal(id, "");
    assert_null(envelope_build("nodot", NULL, json_object_new_object(), id));
    assert_null(envelope_build("a..b", NULL, json_object_new_object(), id));
    assert_null(
        envelope_build("code.sent\n", NULL, json_object_new_object(), id));
    /* result types that no worker consumes are fine to build */
    big = envelope_build("code.sent", NULL, json_object_new_object(), id);
    assert_non_null(big);
    assert_int_equal(strlen(id), 36);
    free(big);
    assert_null(envelope_build(NULL, NULL, json_object_new_object(), NULL));
    assert_null(envelope_build("login.started", "not-a-uuid",
                               json_object_new_object(), NULL));
    assert_null(
        envelope_build("login.started", NULL, json_object_new_array(), NULL));
    /* Larger than our own consumers accept: refused. */
    big = malloc(ENVELOPE_MAX_BODY + 1);
    assert_non_null(big);
    memset(big, 'x', ENVELOPE_MAX_BODY);
    big[ENVELOPE_MAX_BODY] = '\0';
    d = json_object_new_object();
    json_object_object_add(d, "pad", json_object_new_string(big));
    assert_null(envelope_build("contact.demoted", NULL, d, id));
    free(big);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_rules),
        cmocka_unit_test(test_body_size),
        cmocka_unit_test(test_top_level),
        cmocka_unit_test(test_top_level_good),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_promoted_good),
        cmocka_unit_test(test_promoted_bad),
        cmocka_unit_test(test_promoted_lengths),
        cmocka_unit_test(test_changed_null_vs_absent),
        cmocka_unit_test(test_contact_bad),
        cmocka_unit_test(test_login_good),
        cmocka_unit_test(test_login_bad),
        cmocka_unit_test(test_dispatch),
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_build_roundtrip),
        cmocka_unit_test(test_build_refuses),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
