/*
 * test_producer.c - unit tests for the producer's pure half
 * (producer/event.c): building and validating events, the type table
 * behind `mfa-publish --help`, URL redaction.
 *
 * The Makefile links unit tests with build/libmfa.a only, so the module
 * is included here whole; that also lets the tests walk its static type
 * table and hold --help to what the workers' validator really does: every
 * example validates, every field listed as required is required, every
 * other field may be left out.
 */
#include "producer/event.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sodium.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

static int
setup(void **state)
{
    (void)state;
    return sodium_init() < 0 ? -1 : 0;
}

/* The example of type t with field `drop` removed (NULL: as is). */
static char *
example_without(const struct prod_type *t, const char *drop)
{
    struct json_object *o = json_tokener_parse(t->example);
    char *s;

    assert_non_null(o);
    if (drop != NULL)
        json_object_object_del(o, drop);
    s = strdup(json_object_to_json_string(o));
    json_object_put(o);
    return s;
}

static void
test_examples_validate_and_round_trip(void **state)
{
    (void)state;
    for (size_t i = 0; i < PROD_NTYPES; i++) {
        const struct prod_type *t = &prod_types[i];
        char id[MFA_PRODUCER_ID_LEN], err[256] = "";
        struct envelope ev;
        struct json_object *want;
        char *body = NULL;

        if (mfa_producer_build(t->name, t->example, NULL, &body, id, err,
                               sizeof(err)) != MFA_PRODUCER_OK)
            fail_msg("%s: example refused: %s", t->name, err);
        /* What the workers will read: same type, id, data. */
        assert_int_equal(
            envelope_parse(body, strlen(body), t->name, &ev, err, sizeof(err)),
            0);
        assert_string_equal(ev.type_name, t->name);
        assert_string_equal(ev.event_id, id);
        want = json_tokener_parse(t->example);
        if (!json_object_equal(want, ev.data))
            fail_msg("%s: data changed on the way", t->name);
        json_object_put(want);
        envelope_free(&ev);
        free(body);
    }
}

static void
test_help_required_fields_are_required(void **state)
{
    (void)state;
    for (size_t i = 0; i < PROD_NTYPES; i++) {
        const struct prod_type *t = &prod_types[i];

        for (const struct prod_field *f = t->fields; f->name; f++) {
            char err[256] = "", want[64];
            char *data = example_without(t, f->name), *body = NULL;
            int st = mfa_producer_build(t->name, data, NULL, &body, NULL, err,
                                        sizeof(err));

            if (f->required) {
                if (st != MFA_PRODUCER_INVALID)
                    fail_msg("%s: %s listed as required but not needed",
                             t->name, f->name);
                snprintf(want, sizeof(want), "data.%s", f->name);
                if (strstr(err, want) == NULL)
                    fail_msg("%s without %s: error \"%s\" does not name "
                             "it",
                             t->name, f->name, err);
                assert_null(body);
            } else if (st != MFA_PRODUCER_OK) {
                fail_msg("%s: %s listed as optional but refused: %s", t->name,
                         f->name, err);
            }
            free(body);
            free(data);
        }
    }
}

static void
test_every_type_has_help_and_reply_flag(void **state)
{
    const char *const *names = mfa_producer_types();
    size_t n = 0;
    FILE *f;

    (void)state;
    for (; names[n] != NULL; n++) {
        char *text = NULL;
        size_t len = 0;

        f = open_memstream(&text, &len);
        assert_int_equal(mfa_producer_type_help(names[n], f), 0);
        fclose(f);
        assert_non_null(strstr(text, names[n]));
        assert_non_null(strstr(text, "e.g. --data"));
        free(text);
        assert_int_equal(mfa_producer_type_replies(names[n]),
                         strncmp(names[n], "login.", 6) == 0);
    }
    assert_int_equal(n, 7);
    assert_int_equal(mfa_producer_type_help("dispatch.code", stdout), -1);
    assert_int_equal(mfa_producer_type_replies("nope"), 0);
}

static void
test_refusals_name_the_problem(void **state)
{
    static const struct {
        const char *type, *data, *event_id, *want;
    } t[] = {
        {"login.started", "{\"contact_id\":\"c1\"}", NULL,
         "data.login_id: missing"},
        {"login.started", "{\"login_id\":\"nope\",\"contact_id\":\"c1\"}", NULL,
         "data.login_id: not a UUID"},
        {"login.code_requested",
         "{\"login_id\":\"0b7e6f6c-2d1a-4f0e-9c57-3c1f1a2b4d5e\","
         "\"method\":\"pigeon\"}",
         NULL, "data.method: must be one of"},
        {"contact.demoted", "{\"contact_id\":\"c1\"", NULL,
         "data: not valid JSON (ends too early)"},
        {"contact.demoted", "{\"contact_id\":\"c1\"} x", NULL,
         "data: not valid JSON (unexpected character at byte 20)"},
        {"contact.demoted", "[1,2]", NULL, "must be a JSON object"},
        {"contact.demoted", "\"c1\"", NULL, "not a string"},
        {"contact.demoted", "{\"contact_id\":\"\xc0\xaf\"}", NULL,
         "data: not valid UTF-8"},
        {"contact.demoted", "{'contact_id':'c1'}", NULL,
         "data: not valid JSON"},
        {"contact.demoted", "{\"contact_id\":\"c1\"}", "123", "event_id"},
        {"contact.nope", "{}", NULL, "unknown event type \"contact.nope\""},
        {"dispatch.code", "{}", NULL, "unknown event type"},
        {"bad\ntype", "{}", NULL, "type: unknown event type (one of"},
        {NULL, "{}", NULL, "unknown event type"},
    };

    (void)state;
    for (size_t i = 0; i < N(t); i++) {
        char err[512] = "", id[MFA_PRODUCER_ID_LEN] = "x";
        char *body = (char *)"sentinel";

        if (mfa_producer_build(t[i].type, t[i].data, t[i].event_id, &body, id,
                               err, sizeof(err)) != MFA_PRODUCER_INVALID)
            fail_msg("case %zu: accepted", i);
        assert_null(body);
        assert_string_equal(id, "");
        if (strstr(err, t[i].want) == NULL)
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, t[i].want);
        /* Messages never echo the data: a code could be in it. */
        assert_null(strstr(err, "c1\""));
    }
}

static void
test_event_id_given_or_made(void **state)
{
    char id[MFA_PRODUCER_ID_LEN], id2[MFA_PRODUCER_ID_LEN], err[256];
    char *body = NULL, *body2 = NULL;

    (void)state;
    assert_int_equal(mfa_producer_build("contact.demoted",
                                        "{\"contact_id\":\"c1\"}",
                                        "6F1C2A0E-8B5D-4C3E-9F7A-1B2C3D4E5F60",
                                        &body, id, err, sizeof(err)),
                     MFA_PRODUCER_OK);
    assert_string_equal(id, "6f1c2a0e-8b5d-4c3e-9f7a-1b2c3d4e5f60");
    assert_non_null(strstr(body, "\"event_id\":\"6f1c2a0e-8b5d-4c3e-"));
    /* No data at all is {}: refused only for the missing fields. */
    assert_int_equal(mfa_producer_build("contact.demoted", NULL, NULL, &body2,
                                        id2, err, sizeof(err)),
                     MFA_PRODUCER_INVALID);
    assert_non_null(strstr(err, "data.contact_id: missing"));
    assert_int_equal(mfa_producer_build("contact.demoted",
                                        "{\"contact_id\":\"c1\"}", NULL, &body2,
                                        id2, err, sizeof(err)),
                     MFA_PRODUCER_OK);
    assert_int_equal(addr_uuid_check(id2), 0);
    assert_string_not_equal(id, id2);
    free(body);
    free(body2);
}

static void
test_oversized_data_refused_before_parsing(void **state)
{
    size_t n = ENVELOPE_MAX_BODY + 10;
    char *big = malloc(n + 1), err[256], *body = NULL;

    (void)state;
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = '\0';
    assert_int_equal(mfa_producer_build("contact.demoted", big, NULL, &body,
                                        NULL, err, sizeof(err)),
                     MFA_PRODUCER_INVALID);
    assert_non_null(strstr(err, "data: too large"));
    free(big);
}

static void
test_url_redact(void **state)
{
    static const struct {
        const char *in, *want;
    } t[] = {
        {"amqp://guest:guest@127.0.0.1:5672/%2f",
         "amqp://guest:***@127.0.0.1:5672/%2f"},
        {"amqps://u:p@ss@host/vh", "amqps://u:***@host/vh"},
        {"amqp://host:5672/x", "amqp://host:5672/x"},
        {"amqp://user@host/", "amqp://user@host/"},
        {"amqp://host/a:b@c", "amqp://host/a:b@c"},
    };
    char out[128], tiny[12];

    (void)state;
    for (size_t i = 0; i < N(t); i++) {
        mfa_producer_url_redact(t[i].in, out, sizeof(out));
        if (strcmp(out, t[i].want) != 0)
            fail_msg("redact %zu: got %s", i, out);
    }
    /* Truncation never leaks the part after the cut either. */
    mfa_producer_url_redact("amqp://u:secret@h/", tiny, sizeof(tiny));
    assert_null(strstr(tiny, "secret"));
    mfa_producer_url_redact(NULL, out, sizeof(out));
    assert_string_equal(out, "(none)");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_examples_validate_and_round_trip),
        cmocka_unit_test(test_help_required_fields_are_required),
        cmocka_unit_test(test_every_type_has_help_and_reply_flag),
        cmocka_unit_test(test_refusals_name_the_problem),
        cmocka_unit_test(test_event_id_given_or_made),
        cmocka_unit_test(test_oversized_data_refused_before_parsing),
        cmocka_unit_test(test_url_redact),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
