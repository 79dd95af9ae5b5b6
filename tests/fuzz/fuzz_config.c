/*
 * fuzz_config.c - libFuzzer target for the configuration loader: util/cfg
 * (YAML file, table-driven) and the MFA table on top (mfa/settings.h).
 *
 * The input is a config file. It is written to a memfd (no disk, no
 * leftovers) and loaded twice through its /proc/self/fd path: with
 * mfa_config_load(), and with cfg_load() over a small table of our own
 * that has every type and flag (the MFA table has no bool, and no secret
 * the file may set). All MFA_* variables are removed at start-up so the
 * environment cannot mask what the file does.
 *
 * Security notes: the checks are that environment-only keys never come
 * from a file, that a refused load leaves nothing behind, that errors
 * never repeat a secret or a URL's password, and that accepted values keep
 * the documented ranges (a code life over 600 s must never load).
 */
#include "fuzz.h"
#include "mfa/settings.h"
#include "util/cfg.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sodium.h>

extern char **environ;

static int fuzz_fd = -1;
static char fuzz_path[64];
static FILE *fuzz_null;

/* ---- a table with every type and flag -------------------------------- */

struct fz_conf {
    char *name;
    long num;
    bool flag;
    const char *mode;
    struct cfg_intlist ints;
    struct cfg_strlist strs;
    char *secret;
    char *url;
    char *env_only;
    char *nonempty;
    struct cfg_strlist tags;
};

/* The URL b.url's check was last shown, to predict its masked form. */
static char *seen_url;

/* Refuses values starting with "x" (a secret: the error must mask it). */
static const char *
check_secret(const char *v)
{
    return v[0] == 'x' ? "starts with x" : NULL;
}

/* Refuses anything but http(s):// so that the error path, which must
 * mask the password of "scheme://user:pw@host", is reachable. */
static const char *
check_url(const char *v)
{
    free(seen_url);
    seen_url = strdup(v);
    if (seen_url == NULL)
        abort();
    return strncmp(v, "http://", 7) == 0 || strncmp(v, "https://", 8) == 0
               ? NULL
               : "is not an http URL";
}

/*
 * What an error may show of the URL v: the password of
 * "scheme://user:pw@host" (the first ':' before the last '@' of the
 * authority) replaced by ***, then cut to 80 bytes. Written apart from
 * cfg.c's cfg_url_pw(), from cfg.h's promise.
 */
static void
masked_url(const char *v, char *out, size_t n)
{
    const char *auth = strstr(v, "://"), *at = NULL, *colon = NULL;
    char full[2048];

    if (auth != NULL) {
        size_t alen = strcspn(auth + 3, "/?#");

        auth += 3;
        for (size_t i = 0; i < alen; i++)
            if (auth[i] == '@')
                at = auth + i;
        for (const char *p = auth; at != NULL && p < at && !colon; p++)
            if (*p == ':')
                colon = p;
    }
    if (colon != NULL)
        snprintf(full, sizeof(full), "%.*s:***%s", (int)(colon - v), v, at);
    else
        snprintf(full, sizeof(full), "%s", v);
    snprintf(out, n, "%.80s", full);
}

static const char *
check_tag(const char *v)
{
    return strlen(v) > 8 ? "is longer than 8" : NULL;
}

static const char *const modes[] = {"fast", "safe", "off", NULL};

const struct cfg_decl fz_table[] = {
    CFG_DECL_STR(struct fz_conf, "a", "name", name, "n", NULL, 0, "a name"),
    CFG_DECL_INT(struct fz_conf, "a", "num", num, "5", -100, 100, "a norm", 0,
                 "a number"),
    CFG_DECL_BOOL(struct fz_conf, "a", "flag", flag, "no", 0, "a flag"),
    CFG_DECL_ENUM(struct fz_conf, "a", "mode", mode, "safe", modes, 0,
                  "a mode"),
    CFG_DECL_INTLIST(struct fz_conf, "a", "ints", ints, "1,2", 0, 1000, NULL, 0,
                     "numbers"),
    CFG_DECL_STRLIST(struct fz_conf, "a", "strs", strs, "", NULL, 0, "strings"),
    CFG_DECL_STR(struct fz_conf, "b", "secret", secret, "", check_secret,
                 CFG_SECRET, "a secret the file may set"),
    CFG_DECL_STR(struct fz_conf, "b", "url", url, "http://h", check_url,
                 CFG_URL_CREDS, "a URL with credentials"),
    CFG_DECL_STR(struct fz_conf, "b", "env_only", env_only, "", NULL,
                 CFG_SECRET | CFG_ENV_ONLY, "environment only"),
    CFG_DECL_STR(struct fz_conf, "b", "nonempty", nonempty, "x", NULL,
                 CFG_NONEMPTY, "not empty"),
    CFG_DECL_STRLIST(struct fz_conf, "b", "tags", tags, "a,b", check_tag,
                     CFG_NONEMPTY | CFG_SECRET, "secret tags"),
    CFG_DECL_END,
};

/* No byte below 0x20 or DEL: cfg.c refuses them in every value. */
static void
check_value(const char *s)
{
    FUZZ_CHECK(s != NULL);
    for (; *s != '\0'; s++)
        FUZZ_CHECK((unsigned char)*s >= 0x20 && *s != 0x7f);
}

static void
check_err(const char *err)
{
    FUZZ_CHECK(err[0] != '\0');
    FUZZ_CHECK(strlen(err) < 512);
}

/* Every declared field of target is zero (padding is not ours). */
static void
check_zeroed(const struct cfg_decl *table, const void *target)
{
    static const size_t size[] = {
        [CFG_STR] = sizeof(char *),
        [CFG_INT] = sizeof(long),
        [CFG_BOOL] = sizeof(bool),
        [CFG_ENUM] = sizeof(const char *),
        [CFG_INTLIST] = sizeof(struct cfg_intlist),
        [CFG_STRLIST] = sizeof(struct cfg_strlist),
    };

    for (const struct cfg_decl *d = table; d->section != NULL; d++)
        for (size_t i = 0; i < size[d->type]; i++)
            FUZZ_CHECK(((const unsigned char *)target)[d->offset + i] == 0);
}

/* Our own table: ranges, choices, flags; errors keep secrets. */
static void
fuzz_own_table(void)
{
    struct fz_conf c;
    char err[512] = "";

    /* cfg.h: "the target may be uninitialised". */
    memset(&c, 0x5a, sizeof(c));
    free(seen_url);
    seen_url = NULL;
    if (cfg_load(fz_table, &c, fuzz_path, 1, NULL, err, sizeof(err)) != 0) {
        const char *k;

        check_err(err);
        check_zeroed(fz_table, &c);
        /* After "<path>:<line>: " comes the key the error is about; a
         * value quoted in an error about a secret is "***". */
        k = err;
        if (strncmp(k, fuzz_path, strlen(fuzz_path)) == 0) {
            k += strlen(fuzz_path);
            k += *k == ':' ? 1 + strspn(k + 1, "0123456789") : 0;
            k += strncmp(k, ": ", 2) == 0 ? 2 : 0;
        }
        if (strncmp(k, "b.secret: \"", 11) == 0)
            FUZZ_CHECK(strncmp(k, "b.secret: \"***\" ", 16) == 0);
        if (strncmp(k, "b.tags[", 7) == 0) {
            k += 7 + strspn(k + 7, "0123456789");
            if (strncmp(k, "]: \"", 4) == 0)
                FUZZ_CHECK(strncmp(k, "]: \"***\" ", 9) == 0);
        }
        /* A URL is shown with its password masked, exactly. */
        if (strncmp(k, "b.url: \"", 8) == 0 && seen_url != NULL) {
            char want[128];

            masked_url(seen_url, want, sizeof(want));
            FUZZ_CHECK(strncmp(k + 8, want, strlen(want)) == 0);
            FUZZ_CHECK(k[8 + strlen(want)] == '"');
        }
        free(seen_url);
        seen_url = NULL;
        return;
    }
    check_value(c.name);
    FUZZ_CHECK(c.num >= -100 && c.num <= 100);
    FUZZ_CHECK(c.mode == modes[0] || c.mode == modes[1] || c.mode == modes[2]);
    for (size_t i = 0; i < c.ints.n; i++)
        FUZZ_CHECK(c.ints.v[i] >= 0 && c.ints.v[i] <= 1000);
    for (size_t i = 0; i < c.strs.n; i++) {
        check_value(c.strs.v[i]);
        FUZZ_CHECK(c.strs.v[i][0] != '\0');
    }
    check_value(c.secret);
    FUZZ_CHECK(c.secret[0] != 'x');
    check_value(c.url);
    /* Environment-only: a file can never set it (and no env is read). */
    FUZZ_CHECK(c.env_only != NULL && c.env_only[0] == '\0');
    FUZZ_CHECK(c.nonempty != NULL && c.nonempty[0] != '\0');
    FUZZ_CHECK(c.tags.n > 0);
    for (size_t i = 0; i < c.tags.n; i++)
        FUZZ_CHECK(strlen(c.tags.v[i]) <= 8);
    cfg_dump(fz_table, &c, fuzz_null);
    cfg_free(fz_table, &c);
    check_zeroed(fz_table, &c);
    cfg_free(fz_table, &c); /* twice is promised safe */
    free(seen_url);
    seen_url = NULL;
}

/* The MFA table: the settings.h promises for a loaded configuration. */
static void
fuzz_mfa_table(void)
{
    struct mfa_config c;
    char err[512] = "";

    if (mfa_config_load(&c, fuzz_path, err, sizeof(err)) != 0) {
        check_err(err);
        check_zeroed(mfa_config_table, &c); /* "c is then empty" */
        return;
    }
    /* NIST SP 800-63B: never a code that lives over 10 minutes. */
    FUZZ_CHECK(c.codes.ttl_seconds >= 30 &&
               c.codes.ttl_seconds <= MFA_CODE_TTL_MAX);
    FUZZ_CHECK(c.codes.length >= 6 && c.codes.length <= 10);
    FUZZ_CHECK(c.codes.min_remaining_seconds < c.codes.ttl_seconds);
    FUZZ_CHECK(c.login.ttl_seconds >= c.codes.ttl_seconds);
    FUZZ_CHECK(c.codes.max_attempts >= 1);
    /* Secrets only ever come from the environment, which is empty. */
    FUZZ_CHECK(c.keys.master_key[0] == '\0');
    FUZZ_CHECK(c.smtp.password[0] == '\0');
    FUZZ_CHECK(c.smtp.username[0] == '\0');
    FUZZ_CHECK(c.retry.delays_seconds.n > 0);
    for (size_t i = 0; i < c.retry.delays_seconds.n; i++)
        FUZZ_CHECK(c.retry.delays_seconds.v[i] >= 1);
    FUZZ_CHECK(strlen(c.phone.default_region) == 2);
    for (size_t i = 0; i < c.phone.sms_allowed_regions.n; i++)
        FUZZ_CHECK(strlen(c.phone.sms_allowed_regions.v[i]) == 2);
    FUZZ_CHECK(strncmp(c.amqp.url, "amqp://", 7) == 0 ||
               strncmp(c.amqp.url, "amqps://", 8) == 0);
    FUZZ_CHECK(strchr(c.smtp.from, '@') != NULL);
    FUZZ_CHECK(c.templates.default_locale[0] != '\0' &&
               strchr(c.templates.default_locale, '/') == NULL);
    check_value(c.amqp.url);
    check_value(c.postgres.conninfo);
    check_value(c.smtp.url);
    check_value(c.smtp.from);
    check_value(c.sms.twilio_api_base);
    check_value(c.templates.dir);
    check_value(c.templates.portal_name);
    mfa_config_dump(&c, fuzz_null);
    mfa_config_free(&c);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char name[256];

    (void)argc;
    (void)argv;
    if (sodium_init() < 0)
        abort();
    /* Drop every MFA_* variable (MFA_CONFIG included): the file alone
     * decides. Restart the scan after each removal: environ changes. */
    for (int again = 1; again;) {
        again = 0;
        for (char **e = environ; *e != NULL; e++) {
            if (strncmp(*e, "MFA_", 4) == 0) {
                snprintf(name, sizeof(name), "%.*s", (int)strcspn(*e, "="), *e);
                unsetenv(name);
                again = 1;
                break;
            }
        }
    }
    fuzz_fd = memfd_create("fuzz-config.yaml", MFD_CLOEXEC);
    if (fuzz_fd < 0)
        abort();
    snprintf(fuzz_path, sizeof(fuzz_path), "/proc/self/fd/%d", fuzz_fd);
    fuzz_null = fopen("/dev/null", "w");
    if (fuzz_null == NULL)
        abort();
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (ftruncate(fuzz_fd, 0) != 0 ||
        (size > 0 && pwrite(fuzz_fd, data, size, 0) != (ssize_t)size))
        abort();
    fuzz_mfa_table();
    fuzz_own_table();
    return 0;
}
