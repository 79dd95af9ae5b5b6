/*
 * test_cfg.c - the table-driven loader (util/cfg) and the Portal MFA
 * configuration (mfa/settings): file styles, every kind of bad value, the
 * environment layer, defaults, secrets and the shipped config/mfa.yaml.
 * Run from the repository root (config/mfa.yaml is opened relative to it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mfa/settings.h"
#include "util/cfg.h"

extern char **environ;

static char tmp_path[64];

/* Writes text to a fresh /tmp file named in tmp_path. */
static void
tmp_write(const char *text)
{
    int fd;

    snprintf(tmp_path, sizeof(tmp_path), "/tmp/test_cfg_XXXXXX");
    fd = mkstemp(tmp_path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

/* mfa_config_load on text; the file is gone afterwards, its name stays. */
static int
load_text(const char *text, struct mfa_config *c, char *err, size_t errlen)
{
    int rc;

    tmp_write(text);
    err[0] = '\0';
    rc = mfa_config_load(c, tmp_path, err, errlen);
    unlink(tmp_path);
    return rc;
}

/* Loading text must fail with exactly "<tmp file>:<rest>". */
static void
expect_file_error(const char *text, const char *rest)
{
    struct mfa_config c;
    char err[512], want[512];

    assert_int_equal(load_text(text, &c, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:%s", tmp_path, rest);
    assert_string_equal(err, want);
}

/* Loading text must fail with an error containing needle. */
static void
expect_error_with(const char *text, const char *needle)
{
    struct mfa_config c;
    char err[512];

    assert_int_equal(load_text(text, &c, err, sizeof(err)), -1);
    if (strstr(err, needle) == NULL)
        fail_msg("error \"%s\" lacks \"%s\"", err, needle);
}

static char *
dump(const struct mfa_config *c)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    assert_non_null(f);
    mfa_config_dump(c, f);
    fclose(f);
    return text;
}

/* Each test starts without MFA_* overrides (a developer's shell may have
 * some), but with an unrelated MFA_TEST_ variable that must be ignored. */
static int
clean_env(void **state)
{
    char name[256];
    int again = 1;

    (void)state;
    while (again) {
        again = 0;
        for (char **e = environ; *e; e++) {
            size_t n = strcspn(*e, "=");

            if (strncmp(*e, "MFA_", 4) == 0 && n < sizeof(name)) {
                snprintf(name, sizeof(name), "%.*s", (int)n, *e);
                unsetenv(name); /* environ changed: scan again */
                again = 1;
                break;
            }
        }
    }
    setenv("MFA_TEST_UNRELATED", "whatever", 1);
    return 0;
}

/* ---- files that load --------------------------------------------------- */

static void
test_defaults_without_file(void **state)
{
    struct mfa_config c;
    char err[512];

    (void)state;
    assert_int_equal(cfg_load(mfa_config_table, &c, "/nonexistent/mfa.yaml", 0,
                              "MFA_", err, sizeof(err)),
                     0);
    assert_string_equal(c.amqp.url, "amqp://guest:guest@127.0.0.1:5672/%2f");
    assert_string_equal(c.amqp.queue_type, "classic");
    assert_int_equal(c.amqp.prefetch, 100);
    assert_int_equal(c.codes.length, 6);
    assert_int_equal(c.codes.ttl_seconds, 300);
    assert_int_equal(c.login.ttl_seconds, 900);
    assert_string_equal(c.phone.default_region, "NL");
    assert_int_equal(c.phone.sms_allowed_regions.n, 0);
    assert_string_equal(c.smtp.starttls, "required");
    assert_string_equal(c.smtp.password, "");
    assert_string_equal(c.log.level, "info");
    assert_int_equal(c.retry.delays_seconds.n, 4);
    assert_int_equal(c.retry.delays_seconds.v[0], 5);
    assert_int_equal(c.retry.delays_seconds.v[3], 600);
    mfa_config_free(&c);

    /* A file with nothing set is the defaults too. */
    assert_int_equal(load_text("# nothing set\n", &c, err, sizeof(err)), 0);
    assert_int_equal(c.codes.max_attempts, 5);
    mfa_config_free(&c);
}

static void
test_repo_config_loads_with_defaults(void **state)
{
    struct mfa_config file, def;
    char err[512], *a, *b;

    (void)state;
    if (mfa_config_load(&file, "config/mfa.yaml", err, sizeof(err)) != 0)
        fail_msg("config/mfa.yaml: %s", err);
    assert_int_equal(
        cfg_load(mfa_config_table, &def, NULL, 0, NULL, err, sizeof(err)), 0);
    /* The example documents the defaults: both dump the same. */
    a = dump(&file);
    b = dump(&def);
    assert_string_equal(a, b);
    free(a);
    free(b);
    mfa_config_free(&file);
    mfa_config_free(&def);
}

static void
test_block_style(void **state)
{
    struct mfa_config c;
    char err[512];

    (void)state;
    assert_int_equal(load_text("# a comment\n"
                               "amqp:\n"
                               "  url: amqps://mq.example/%2f   # trailing\n"
                               "  queue_type: quorum\n"
                               "  prefetch: \"250\"\n"
                               "phone:\n"
                               "  sms_allowed_regions:\n"
                               "    - NL\n"
                               "    - BE\n"
                               "retry:\n"
                               "  delays_seconds:\n"
                               "    - 1\n"
                               "    - 1\n"
                               "keys:\n"
                               "  # every key commented out\n"
                               "smtp:\n"
                               "  ca_file:\n",
                               &c, err, sizeof(err)),
                     0);
    assert_string_equal(c.amqp.url, "amqps://mq.example/%2f");
    assert_string_equal(c.amqp.queue_type, "quorum");
    assert_int_equal(c.amqp.prefetch, 250);
    assert_int_equal(c.phone.sms_allowed_regions.n, 2);
    assert_string_equal(c.phone.sms_allowed_regions.v[1], "BE");
    /* Not strictly increasing is fine: each delay only has to be > 0. */
    assert_int_equal(c.retry.delays_seconds.n, 2);
    assert_string_equal(c.keys.master_key_file, "var/master.key");
    assert_string_equal(c.smtp.ca_file, "");
    mfa_config_free(&c);
}

static void
test_flow_style(void **state)
{
    struct mfa_config c;
    char err[512];

    (void)state;
    assert_int_equal(
        load_text("amqp: {url: \"amqp://u:p@h:5672/%2f\", prefetch: 100}\n"
                  "codes: {length: 8, ttl_seconds: 600}  # NIST maximum\n"
                  "phone: {default_region: BE, sms_allowed_regions: []}\n"
                  "retry: {delays_seconds: [10, 20]}\n"
                  "log: {level: debug}\n",
                  &c, err, sizeof(err)),
        0);
    assert_string_equal(c.amqp.url, "amqp://u:p@h:5672/%2f");
    assert_int_equal(c.codes.length, 8);
    assert_int_equal(c.codes.ttl_seconds, 600);
    assert_string_equal(c.phone.default_region, "BE");
    assert_int_equal(c.retry.delays_seconds.n, 2);
    assert_int_equal(c.retry.delays_seconds.v[1], 20);
    assert_string_equal(c.log.level, "debug");
    mfa_config_free(&c);
}

/* ---- files that do not ------------------------------------------------- */

static void
test_unknown_key_and_section(void **state)
{
    (void)state;
    expect_file_error("amqp:\n  prefetch: 10\n  urll: amqp://h\n",
                      "3: unknown key \"amqp.urll\"");
    expect_file_error("amqp: {url: \"amqp://h\"}\namqpp:\n  url: x\n",
                      "2: unknown section \"amqpp\"");
    expect_file_error("smtp: {url: \"smtp://h\", concurency: 8}\n",
                      "1: unknown key \"smtp.concurency\"");
}

static void
test_out_of_range(void **state)
{
    (void)state;
    expect_file_error("codes:\n  length: 5\n",
                      "2: codes.length: 5 is below the minimum 6");
    expect_file_error("amqp:\n  prefetch: 10001\n",
                      "2: amqp.prefetch: 10001 is above the maximum 10000");
    expect_error_with("amqp:\n  prefetch: 99999999999999999999999\n",
                      "amqp.prefetch: 99999999999999999999999 is out of "
                      "range");
}

static void
test_ttl_above_nist_ceiling(void **state)
{
    (void)state;
    expect_file_error("codes:\n  length: 6\n  ttl_seconds: 601\n",
                      "3: codes.ttl_seconds: 601 is above the maximum 600 "
                      "(NIST SP 800-63B: an out-of-band code may be valid "
                      "for at most 10 minutes)");
    expect_error_with("codes: {ttl_seconds: 900}\n", "NIST SP 800-63B");
}

static void
test_not_an_integer(void **state)
{
    (void)state;
    expect_file_error("codes:\n  length: abc\n",
                      "2: codes.length: \"abc\" is not an integer");
    expect_error_with("codes: {length: 6.5}\n", "\"6.5\" is not an integer");
    expect_error_with("codes: {length: 0x8}\n", "\"0x8\" is not an integer");
    expect_error_with("codes: {length: \" 8\"}\n", "is not an integer");
    expect_error_with("codes: {length: +8}\n", "is not an integer");
    expect_error_with("codes: {length: }\n", "codes.length: has no value");
}

static void
test_bad_enum(void **state)
{
    (void)state;
    expect_file_error("amqp:\n  queue_type: fast\n",
                      "2: amqp.queue_type: \"fast\" is not one of classic, "
                      "quorum");
    expect_error_with("smtp: {starttls: yes}\n",
                      "\"yes\" is not one of required, optional, off");
}

static void
test_bad_list_element(void **state)
{
    (void)state;
    expect_file_error("retry:\n  delays_seconds: [5, 0, 30]\n",
                      "2: retry.delays_seconds[1]: 0 is below the minimum 1");
    expect_file_error("retry:\n  delays_seconds:\n    - 5\n    - soon\n",
                      "4: retry.delays_seconds[1]: \"soon\" is not an "
                      "integer");
    expect_error_with("retry: {delays_seconds: []}\n",
                      "retry.delays_seconds: must not be empty");
    expect_error_with("phone: {sms_allowed_regions: [NL, nl]}\n",
                      "phone.sms_allowed_regions[1]: \"nl\" is not a region "
                      "code");
    expect_error_with("retry: {delays_seconds: [[1], 2]}\n",
                      "retry.delays_seconds[0]: expected a single value, "
                      "found a list");
}

static void
test_wrong_shape(void **state)
{
    (void)state;
    expect_file_error("amqp:\n  prefetch: [1, 2]\n",
                      "2: amqp.prefetch: expected a single value, found a "
                      "list");
    expect_file_error("retry:\n  delays_seconds: 5\n",
                      "2: retry.delays_seconds: expected a list such as "
                      "[a, b], found a single value");
    expect_file_error("amqp: classic\n",
                      "1: section \"amqp\" must be a "
                      "mapping of keys, found a single value");
    expect_file_error("- amqp\n", "1: expected a mapping of sections at the "
                                  "top level, found a list");
}

static void
test_duplicates(void **state)
{
    (void)state;
    expect_file_error("amqp:\n  prefetch: 1\n  prefetch: 2\n",
                      "3: duplicate key \"amqp.prefetch\" (first set on line "
                      "2)");
    expect_file_error("amqp: {prefetch: 1}\nlog: {level: info}\n"
                      "amqp: {url: \"amqp://h\"}\n",
                      "3: duplicate section \"amqp\" (first on line 1)");
}

static void
test_secret_in_file(void **state)
{
    (void)state;
    expect_file_error("smtp:\n  username: mailer\n  password: hunter2\n",
                      "3: smtp.password may only come from the environment "
                      "(MFA_SMTP_PASSWORD)");
    expect_file_error("keys: {master_key: AAAA}\n",
                      "1: keys.master_key may only come from the environment "
                      "(MFA_KEYS_MASTER_KEY)");
}

static void
test_malformed_yaml(void **state)
{
    (void)state;
    expect_error_with("amqp:\n  prefetch: 1\n url: x\n",
                      ":3: malformed YAML: ");
    expect_error_with("amqp: {prefetch: 1\nlog: {level: info}\n",
                      ": malformed YAML: ");
    expect_error_with("amqp:\n\tprefetch: 1\n", ":2: malformed YAML: ");
    expect_error_with("amqp: {prefetch: 1}\n---\nlog: {level: info}\n",
                      ":2: only one YAML document is allowed");
}

static void
test_bad_strings(void **state)
{
    (void)state;
    /* CR/LF would let a value add mail headers. */
    expect_error_with("smtp: {from: \"a@b\\r\\nBcc: x@y\"}\n",
                      "smtp.from: contains a control character (byte 3)");
    expect_error_with("smtp: {url: \"http://h\"}\n",
                      "smtp.url: \"http://h\" is not an smtp:// or smtps:// "
                      "URL");
    expect_error_with("phone: {default_region: nl}\n",
                      "phone.default_region: \"nl\" is not a region code");
    expect_error_with("templates: {default_locale: ../etc}\n",
                      "templates.default_locale: \"../etc\" is not a locale");
    expect_error_with("templates: {dir: \"\"}\n",
                      "templates.dir: must not be empty");
}

static void
test_cross_field(void **state)
{
    (void)state;
    expect_error_with("codes: {ttl_seconds: 60, min_remaining_seconds: 60}\n",
                      "codes.min_remaining_seconds: 60 is not below "
                      "codes.ttl_seconds (60)");
    expect_error_with("login: {ttl_seconds: 120}\n",
                      "login.ttl_seconds: 120 is below codes.ttl_seconds");
    expect_error_with("smtp: {username: mailer}\n",
                      "smtp.username: set, but MFA_SMTP_PASSWORD is not");
    setenv("MFA_SMTP_PASSWORD", "hunter2", 1);
    expect_error_with("smtp: {username: mailer, starttls: optional}\n",
                      "smtp.starttls: \"optional\" could send the SMTP "
                      "password in clear");
    expect_error_with("smtp: {username: \"\"}\n",
                      "smtp.username: empty, but MFA_SMTP_PASSWORD is set");
    unsetenv("MFA_SMTP_PASSWORD");
}

static void
test_missing_required_file(void **state)
{
    struct mfa_config c;
    char err[512];

    (void)state;
    assert_int_equal(
        mfa_config_load(&c, "/nonexistent/mfa.yaml", err, sizeof(err)), -1);
    assert_string_equal(err, "/nonexistent/mfa.yaml: cannot open: No such "
                             "file or directory");
    setenv("MFA_CONFIG", "/nonexistent/env.yaml", 1);
    assert_int_equal(mfa_config_load(&c, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "/nonexistent/env.yaml: cannot open"));
    unsetenv("MFA_CONFIG");
}

/* ---- the environment --------------------------------------------------- */

static void
test_env_overrides(void **state)
{
    struct mfa_config c;
    char err[512];

    (void)state;
    setenv("MFA_AMQP_PREFETCH", "7", 1);
    setenv("MFA_RETRY_DELAYS_SECONDS", "1,2", 1);
    setenv("MFA_PHONE_SMS_ALLOWED_REGIONS", " NL , BE ", 1);
    setenv("MFA_SMS_TWILIO_API_BASE", "http://127.0.0.1:4010", 1);
    setenv("MFA_KEYS_MASTER_KEY", "c2VjcmV0", 1);
    /* The environment wins over the file. */
    assert_int_equal(load_text("amqp: {prefetch: 50, heartbeat_seconds: 5}\n",
                               &c, err, sizeof(err)),
                     0);
    assert_int_equal(c.amqp.prefetch, 7);
    assert_int_equal(c.amqp.heartbeat_seconds, 5);
    assert_int_equal(c.retry.delays_seconds.n, 2);
    assert_int_equal(c.retry.delays_seconds.v[0], 1);
    assert_int_equal(c.retry.delays_seconds.v[1], 2);
    assert_int_equal(c.phone.sms_allowed_regions.n, 2);
    assert_string_equal(c.phone.sms_allowed_regions.v[0], "NL");
    assert_string_equal(c.phone.sms_allowed_regions.v[1], "BE");
    assert_string_equal(c.sms.twilio_api_base, "http://127.0.0.1:4010");
    assert_string_equal(c.keys.master_key, "c2VjcmV0");
    mfa_config_free(&c);

    /* MFA_CONFIG names the file when no path is given. */
    tmp_write("codes: {length: 9}\n");
    setenv("MFA_CONFIG", tmp_path, 1);
    assert_int_equal(mfa_config_load(&c, NULL, err, sizeof(err)), 0);
    unlink(tmp_path);
    assert_int_equal(c.codes.length, 9);
    mfa_config_free(&c);
    unsetenv("MFA_CONFIG");
}

static void
test_env_errors(void **state)
{
    struct mfa_config c;
    char err[512];

    (void)state;
    setenv("MFA_CODES_LENGTH", "abc", 1);
    assert_int_equal(mfa_config_load(&c, NULL, err, sizeof(err)), -1);
    assert_string_equal(err, "MFA_CODES_LENGTH: \"abc\" is not an integer");
    setenv("MFA_CODES_LENGTH", "6", 1);

    setenv("MFA_CODES_TTL_SECONDS", "900", 1);
    assert_int_equal(mfa_config_load(&c, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "MFA_CODES_TTL_SECONDS: 900 is above the "
                                "maximum 600 (NIST SP 800-63B"));
    unsetenv("MFA_CODES_TTL_SECONDS");

    setenv("MFA_RETRY_DELAYS_SECONDS", "1,,2", 1);
    assert_int_equal(mfa_config_load(&c, NULL, err, sizeof(err)), -1);
    assert_string_equal(err, "MFA_RETRY_DELAYS_SECONDS[1]: is empty (a stray "
                             "comma?)");
    setenv("MFA_RETRY_DELAYS_SECONDS", "5,-1", 1);
    assert_int_equal(mfa_config_load(&c, NULL, err, sizeof(err)), -1);
    assert_string_equal(err, "MFA_RETRY_DELAYS_SECONDS[1]: -1 is below the "
                             "minimum 1");
    setenv("MFA_RETRY_DELAYS_SECONDS", "", 1);
    assert_int_equal(mfa_config_load(&c, NULL, err, sizeof(err)), -1);
    assert_string_equal(err, "MFA_RETRY_DELAYS_SECONDS: must not be empty");
    unsetenv("MFA_RETRY_DELAYS_SECONDS");

    /* A secret is never echoed back, even when it is wrong... */
    setenv("MFA_SMTP_PASSWORD", "hunter2\n", 1);
    assert_int_equal(mfa_config_load(&c, NULL, err, sizeof(err)), -1);
    assert_string_equal(err, "MFA_SMTP_PASSWORD: contains a control "
                             "character (byte 7)");
    unsetenv("MFA_SMTP_PASSWORD");
    /* ...nor a URL's password. */
    setenv("MFA_AMQP_URL", "http://user:pw123@mq.example/", 1);
    assert_int_equal(mfa_config_load(&c, NULL, err, sizeof(err)), -1);
    assert_string_equal(err, "MFA_AMQP_URL: \"http://user:***@mq.example/\" "
                             "does not start with amqp:// or amqps://");
    unsetenv("MFA_AMQP_URL");
}

static void
test_dump_masks_secrets(void **state)
{
    struct mfa_config c;
    char err[512], *text;

    (void)state;
    setenv("MFA_SMTP_USERNAME", "mailer", 1);
    setenv("MFA_SMTP_PASSWORD", "hunter2", 1);
    setenv("MFA_KEYS_MASTER_KEY", "c2VjcmV0", 1);
    assert_int_equal(mfa_config_load(&c, NULL, err, sizeof(err)), 0);
    text = dump(&c);
    assert_null(strstr(text, "hunter2"));
    assert_null(strstr(text, "c2VjcmV0"));
    assert_null(strstr(text, "guest:guest"));
    assert_non_null(strstr(text, "smtp.password = ***\n"));
    assert_non_null(strstr(text, "keys.master_key = ***\n"));
    assert_non_null(strstr(text, "amqp.url = \"amqp://guest:***@127.0.0.1:"
                                 "5672/%2f\"\n"));
    assert_non_null(strstr(text, "retry.delays_seconds = [5, 30, 120, 600]"));
    assert_non_null(strstr(text, "phone.sms_allowed_regions = []\n"));
    free(text);
    mfa_config_free(&c);
}

/* ---- the generic loader on its own table -------------------------------- */

struct demo {
    bool flag;
    long n;
    char *name;
    const char *mode;
    struct cfg_strlist tags;
};

static const char *const demo_modes[] = {"a", "b", NULL};

static const struct cfg_decl demo_table[] = {
    CFG_DECL_BOOL(struct demo, "main", "flag", flag, "off", 0, "a switch"),
    CFG_DECL_INT(struct demo, "main", "n", n, "-3", -10, 10, NULL, 0, "n"),
    CFG_DECL_STR(struct demo, "main", "name", name, "x", NULL, 0, "a name"),
    CFG_DECL_ENUM(struct demo, "main", "mode", mode, "b", demo_modes, 0, "m"),
    CFG_DECL_STRLIST(struct demo, "more", "tags", tags, "p, q", NULL, 0, "t"),
    CFG_DECL_END,
};

static void
test_generic_bool_and_prefix(void **state)
{
    static const char *const bools[] = {"true",  "Yes", "ON",  "1",
                                        "false", "no",  "Off", "0"};
    struct demo d;
    char err[512];

    (void)state;
    assert_int_equal(
        cfg_load(demo_table, &d, NULL, 0, "DEMO_", err, sizeof(err)), 0);
    assert_false(d.flag);
    assert_int_equal(d.n, -3);
    assert_string_equal(d.mode, "b");
    assert_int_equal(d.tags.n, 2);
    assert_string_equal(d.tags.v[1], "q");
    cfg_free(demo_table, &d);
    cfg_free(demo_table, &d); /* twice is harmless */

    for (size_t i = 0; i < 8; i++) {
        setenv("DEMO_MAIN_FLAG", bools[i], 1);
        assert_int_equal(
            cfg_load(demo_table, &d, NULL, 0, "DEMO_", err, sizeof(err)), 0);
        assert_int_equal(d.flag, i < 4);
        cfg_free(demo_table, &d);
    }
    setenv("DEMO_MAIN_FLAG", "maybe", 1);
    assert_int_equal(
        cfg_load(demo_table, &d, NULL, 0, "DEMO_", err, sizeof(err)), -1);
    assert_string_equal(err, "DEMO_MAIN_FLAG: \"maybe\" is not a boolean "
                             "(true/false, yes/no, on/off, 1/0)");
    /* NULL prefix: the environment is not consulted at all. */
    assert_int_equal(cfg_load(demo_table, &d, NULL, 0, NULL, err, sizeof(err)),
                     0);
    cfg_free(demo_table, &d);
    unsetenv("DEMO_MAIN_FLAG");

    tmp_write("main:\n  flag: perhaps\n");
    assert_int_equal(
        cfg_load(demo_table, &d, tmp_path, 1, NULL, err, sizeof(err)), -1);
    unlink(tmp_path);
    assert_non_null(strstr(err, ":2: main.flag: \"perhaps\" is not a "
                                "boolean"));
    /* A failed load leaves nothing allocated and the fields empty. */
    assert_null(d.name);
    assert_null(d.tags.v);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults_without_file, clean_env),
        cmocka_unit_test_setup(test_repo_config_loads_with_defaults, clean_env),
        cmocka_unit_test_setup(test_block_style, clean_env),
        cmocka_unit_test_setup(test_flow_style, clean_env),
        cmocka_unit_test_setup(test_unknown_key_and_section, clean_env),
        cmocka_unit_test_setup(test_out_of_range, clean_env),
        cmocka_unit_test_setup(test_ttl_above_nist_ceiling, clean_env),
        cmocka_unit_test_setup(test_not_an_integer, clean_env),
        cmocka_unit_test_setup(test_bad_enum, clean_env),
        cmocka_unit_test_setup(test_bad_list_element, clean_env),
        cmocka_unit_test_setup(test_wrong_shape, clean_env),
        cmocka_unit_test_setup(test_duplicates, clean_env),
        cmocka_unit_test_setup(test_secret_in_file, clean_env),
        cmocka_unit_test_setup(test_malformed_yaml, clean_env),
        cmocka_unit_test_setup(test_bad_strings, clean_env),
        cmocka_unit_test_setup(test_cross_field, clean_env),
        cmocka_unit_test_setup(test_missing_required_file, clean_env),
        cmocka_unit_test_setup(test_env_overrides, clean_env),
        cmocka_unit_test_setup(test_env_errors, clean_env),
        cmocka_unit_test_setup(test_dump_masks_secrets, clean_env),
        cmocka_unit_test_setup(test_generic_bool_and_prefix, clean_env),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
