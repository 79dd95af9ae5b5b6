/*
 * settings.c - the Portal MFA configuration table and its validation.
 *
 * Callers: every worker (through runtime/worker.c), mfactl and tests. The
 * table below is the single list of keys: util/cfg derives the YAML keys,
 * the MFA_* variables, the unknown-key errors and the dump from it, and
 * config/mfa.yaml documents the same keys in the same order.
 *
 * Security notes: keys.master_key and smtp.password are CFG_ENV_ONLY (never
 * in a committed file) and CFG_SECRET (masked, wiped). Checks here keep
 * values that later reach paths, headers or URLs to the expected shapes;
 * a code lifetime over NIST SP 800-63B's 10 minutes refuses to start, and
 * an SMTP password that could travel in clear is refused too.
 */
#include "mfa/settings.h"

#include <stdlib.h>
#include <string.h>

#define MFA_ENV_PREFIX "MFA_"

/* ---- value shapes ---------------------------------------------------- */

static int
has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* libphonenumber only knows regions as two capitals ("nl" fails). */
static const char *
check_region(const char *v)
{
    if (strlen(v) != 2 || v[0] < 'A' || v[0] > 'Z' || v[1] < 'A' || v[1] > 'Z')
        return "is not a region code of two capital letters, such as NL";
    return NULL;
}

static const char *
check_amqp_url(const char *v)
{
    if (!has_prefix(v, "amqp://") && !has_prefix(v, "amqps://"))
        return "does not start with amqp:// or amqps://";
    return NULL;
}

static const char *
check_smtp_url(const char *v)
{
    if ((!has_prefix(v, "smtp://") || v[7] == '\0') &&
        (!has_prefix(v, "smtps://") || v[8] == '\0'))
        return "is not an smtp:// or smtps:// URL with a host";
    return NULL;
}

/* http:// stays allowed so tests and compose can point at a local mock. */
static const char *
check_http_url(const char *v)
{
    if (!has_prefix(v, "https://") && !has_prefix(v, "http://"))
        return "does not start with https:// or http://";
    return NULL;
}

static const char *
check_opt_http_url(const char *v)
{
    return *v ? check_http_url(v) : NULL;
}

/* The domain goes into the SMS text ("@example.com #123456"): a bare name. */
static const char *
check_opt_domain(const char *v)
{
    if (*v &&
        (strspn(v, "abcdefghijklmnopqrstuvwxyz"
                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != strlen(v) ||
         v[0] == '.' || v[0] == '-'))
        return "is not a bare domain name such as portal.example";
    return NULL;
}

/* A locale names a folder under templates.dir: no "/" or "..". */
static const char *
check_locale(const char *v)
{
    if (*v == '\0' || strlen(v) > 35 ||
        strspn(v, "abcdefghijklmnopqrstuvwxyz"
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != strlen(v))
        return "is not a locale name such as en or pt-BR";
    return NULL;
}

static const char *
check_from(const char *v)
{
    if (strchr(v, '@') == NULL)
        return "has no email address";
    return NULL;
}

/* ---- the table --------------------------------------------------------- */

static const char *const queue_types[] = {"classic", "quorum", NULL};
static const char *const starttls_modes[] = {"required", "optional", "off",
                                             NULL};
static const char *const log_levels[] = {"debug", "info", "warn", "error",
                                         NULL};

#define NIST_WHY                                                               \
    "NIST SP 800-63B: an out-of-band code may be valid for at most 10 "        \
    "minutes"

/* Section and key are spelled once: the name is the field's name. */
#define STR(s, k, def, check, flags, help)                                     \
    CFG_DECL_STR(struct mfa_config, #s, #k, s.k, def, check, flags, help)
#define INT(s, k, def, min, max, help)                                         \
    CFG_DECL_INT(struct mfa_config, #s, #k, s.k, def, min, max, NULL, 0, help)
#define ENUM(s, k, def, choices, help)                                         \
    CFG_DECL_ENUM(struct mfa_config, #s, #k, s.k, def, choices, 0, help)

const struct cfg_decl mfa_config_table[] = {
    STR(amqp, url, "amqp://guest:guest@127.0.0.1:5672/%2f", check_amqp_url,
        CFG_URL_CREDS, "RabbitMQ URL (amqp:// or amqps://)"),
    ENUM(amqp, queue_type, "classic", queue_types,
         "classic, or quorum for a RabbitMQ cluster"),
    INT(amqp, prefetch, "100", 1, 10000, "unacked messages per consumer"),
    INT(amqp, heartbeat_seconds, "30", 0, 600, "AMQP heartbeat; 0 = off"),
    INT(amqp, delivery_limit, "20", 1, 1000,
        "runs of one message before dead-lettering (x-delivery-limit)"),
    INT(amqp, confirm_timeout_ms, "5000", 100, 300000,
        "wait for a publisher confirm before publishing again"),

    STR(postgres, conninfo, "host=127.0.0.1 port=5432 dbname=mfa", NULL,
        CFG_NONEMPTY, "libpq connection string (password: PGPASSWORD)"),

    STR(keys, master_key_file, "var/master.key", NULL, 0,
        "file with the 32-byte master key (raw or base64)"),
    STR(keys, master_key, "", NULL, CFG_SECRET | CFG_ENV_ONLY,
        "master key, base64; wins over the file"),

    INT(codes, length, "6", 6, 10, "digits in a code"),
    CFG_DECL_INT(struct mfa_config, "codes", "ttl_seconds", codes.ttl_seconds,
                 "300", 30, MFA_CODE_TTL_MAX, NIST_WHY, 0,
                 "how long a code is valid"),
    INT(codes, max_attempts, "5", 1, 20, "wrong tries that lock a login"),
    INT(codes, max_failures_per_user_per_hour, "10", 1, 1000,
        "wrong tries per user per hour, across all logins"),
    INT(codes, resend_cooldown_seconds, "30", 0, 3600,
        "wait between two sends for a login"),
    INT(codes, max_sends_per_login, "5", 1, 100, "sends per login"),
    INT(codes, max_sends_per_user_per_hour, "10", 1, 1000,
        "sends per user per hour"),
    INT(codes, min_remaining_seconds, "60", 0, 600,
        "a dispatch with less life left is dropped, not sent"),

    INT(login, ttl_seconds, "900", 60, 86400, "life of a login challenge"),

    STR(phone, default_region, "NL", check_region, 0,
        "region for numbers without a country code"),
    CFG_DECL_STRLIST(struct mfa_config, "phone", "sms_allowed_regions",
                     phone.sms_allowed_regions, "", check_region, 0,
                     "regions SMS may go to; empty = all"),
    INT(phone, max_sms_per_number_per_day, "10", 1, 1000,
        "SMS per destination number per day"),

    STR(smtp, url, "smtp://127.0.0.1:1025", check_smtp_url, CFG_URL_CREDS,
        "SMTP server, smtp:// or smtps:// (implicit TLS)"),
    ENUM(smtp, starttls, "required", starttls_modes,
         "STARTTLS on smtp://: required, optional or off"),
    STR(smtp, username, "", NULL, 0, "SMTP AUTH user; empty = no AUTH"),
    STR(smtp, password, "", NULL, CFG_SECRET | CFG_ENV_ONLY,
        "SMTP AUTH password"),
    STR(smtp, from, "Customer Portal <no-reply@portal.example>", check_from, 0,
        "From: header of every message"),
    INT(smtp, concurrency, "32", 1, 256, "SMTP sessions in flight"),
    INT(smtp, timeout_seconds, "30", 1, 600, "per message"),
    STR(smtp, ca_file, "", NULL, 0, "CA bundle; empty = the system's"),

    STR(sms, twilio_api_base, "https://api.twilio.com", check_http_url, 0,
        "Twilio API base URL (a mock in tests)"),
    INT(sms, concurrency, "128", 1, 1024, "Twilio requests in flight"),
    INT(sms, timeout_seconds, "15", 1, 120, "per request"),
    STR(sms, status_callback, "", check_opt_http_url, 0,
        "Twilio StatusCallback URL; empty = none"),
    STR(sms, webotp_domain, "", check_opt_domain, 0,
        "domain for the WebOTP line; empty = none"),
    STR(sms, ca_file, "", NULL, 0, "CA bundle; empty = the system's"),

    STR(templates, dir, "config/templates", NULL, CFG_NONEMPTY,
        "folder of <locale>/<template> files"),
    STR(templates, default_locale, "en", check_locale, 0,
        "locale when the user's has no templates"),
    STR(templates, portal_name, "Customer Portal", NULL, CFG_NONEMPTY,
        "the portal's name in messages"),

    CFG_DECL_INTLIST(struct mfa_config, "retry", "delays_seconds",
                     retry.delays_seconds, "5,30,120,600", 1, 86400, NULL,
                     CFG_NONEMPTY, "delay of each retry tier"),

    ENUM(log, level, "info", log_levels, "debug, info, warn or error"),
    CFG_DECL_END,
};

#undef STR
#undef INT
#undef ENUM

/* ---- cross-field checks ---------------------------------------------- */

static int
settings_check(const struct mfa_config *c, char *err, size_t errlen)
{
    const struct mfa_smtp_config *s = &c->smtp;

    if (c->codes.min_remaining_seconds >= c->codes.ttl_seconds) {
        snprintf(err, errlen,
                 "codes.min_remaining_seconds: %ld is not below "
                 "codes.ttl_seconds (%ld), so every code would be dropped "
                 "before it is sent",
                 c->codes.min_remaining_seconds, c->codes.ttl_seconds);
        return -1;
    }
    if (c->login.ttl_seconds < c->codes.ttl_seconds) {
        snprintf(err, errlen,
                 "login.ttl_seconds: %ld is below "
                 "codes.ttl_seconds (%ld); a code would outlive its login",
                 c->login.ttl_seconds, c->codes.ttl_seconds);
        return -1;
    }
    if (c->keys.master_key_file[0] == '\0' && c->keys.master_key[0] == '\0') {
        snprintf(err, errlen,
                 "keys.master_key_file: empty and " MFA_ENV_PREFIX
                 "KEYS_MASTER_KEY is not set: no master key");
        return -1;
    }
    if (s->username[0] == '\0' && s->password[0] != '\0') {
        snprintf(err, errlen,
                 "smtp.username: empty, but " MFA_ENV_PREFIX
                 "SMTP_PASSWORD is set");
        return -1;
    }
    if (s->username[0] != '\0' && s->password[0] == '\0') {
        snprintf(err, errlen,
                 "smtp.username: set, but " MFA_ENV_PREFIX
                 "SMTP_PASSWORD is not");
        return -1;
    }
    /* AUTH over a connection that may stay plain would leak the password. */
    if (s->username[0] != '\0' && has_prefix(s->url, "smtp://") &&
        strcmp(s->starttls, "required") != 0) {
        snprintf(err, errlen,
                 "smtp.starttls: \"%s\" could send the SMTP "
                 "password in clear; use required or an smtps:// URL",
                 s->starttls);
        return -1;
    }
    return 0;
}

/* ---- public ------------------------------------------------------------ */

int
mfa_config_load(struct mfa_config *c, const char *path, char *err,
                size_t errlen)
{
    const char *env = getenv("MFA_CONFIG");
    int required = 1;

    /* A path someone named must exist; only the implicit default may not. */
    if (path == NULL && env && *env) {
        path = env;
    } else if (path == NULL) {
        path = MFA_CONFIG_DEFAULT_PATH;
        required = 0;
    }
    memset(c, 0, sizeof(*c));
    if (cfg_load(mfa_config_table, c, path, required, MFA_ENV_PREFIX, err,
                 errlen) != 0)
        return -1;
    if (settings_check(c, err, errlen) != 0) {
        mfa_config_free(c);
        return -1;
    }
    return 0;
}

void
mfa_config_free(struct mfa_config *c)
{
    cfg_free(mfa_config_table, c);
}

void
mfa_config_dump(const struct mfa_config *c, FILE *out)
{
    cfg_dump(mfa_config_table, c, out);
}
