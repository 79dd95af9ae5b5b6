/*
 * settings.h - the Portal MFA configuration (config/mfa.yaml + MFA_*).
 *
 * One struct per section, filled by mfa_config_load() from the declaration
 * table in settings.c through util/cfg. Every key can be overridden by
 * MFA_<SECTION>_<KEY>; keys.master_key and smtp.password come only from the
 * environment. Durations are in seconds unless the name says otherwise.
 */
#ifndef MFA_SETTINGS_H
#define MFA_SETTINGS_H

#include <stddef.h>
#include <stdio.h>

#include "util/cfg.h"

/* The default file, relative to the working directory. */
#define MFA_CONFIG_DEFAULT_PATH "config/mfa.yaml"
/* NIST SP 800-63B's ceiling for a one-time code's life. */
#define MFA_CODE_TTL_MAX 600

/*
 * Enum keys are const char * pointing at one of the declared choices
 * (static storage, compare with strcmp): amqp.queue_type "classic" or
 * "quorum"; smtp.starttls "required", "optional" or "off"; log.level
 * "debug", "info", "warn" or "error" (log_level_parse() takes it).
 */

struct mfa_amqp_config {
    char *url;
    const char *queue_type; /* classic | quorum */
    long prefetch;
    long heartbeat_seconds; /* 0 = no heartbeats */
    long delivery_limit;    /* quorum queues' x-delivery-limit */
    long confirm_timeout_ms;
};

struct mfa_postgres_config {
    char *conninfo;
};

struct mfa_keys_config {
    char *master_key_file;
    char *master_key; /* base64, environment only; wins over the file */
};

struct mfa_codes_config {
    long length; /* digits */
    long ttl_seconds;
    long max_attempts; /* wrong tries before the login locks */
    long max_failures_per_user_per_hour;
    long resend_cooldown_seconds;
    long max_sends_per_login;
    long max_sends_per_user_per_hour;
    long min_remaining_seconds; /* a dispatch with less life left drops */
};

struct mfa_login_config {
    long ttl_seconds;
};

struct mfa_phone_config {
    char *default_region;                   /* "NL" */
    struct cfg_strlist sms_allowed_regions; /* empty = all */
    long max_sms_per_number_per_day;
};

struct mfa_smtp_config {
    char *url;            /* smtp:// or smtps:// */
    const char *starttls; /* required | optional | off */
    char *username;       /* "" = no AUTH */
    char *password;       /* environment only */
    char *from;
    long concurrency;
    long timeout_seconds;
    char *ca_file; /* "" = the system's CAs */
};

struct mfa_sms_config {
    char *twilio_api_base;
    long concurrency;
    long timeout_seconds;
    char *status_callback; /* "" = none */
    char *webotp_domain;   /* "" = no WebOTP line in the SMS */
    char *ca_file;         /* "" = the system's CAs */
};

struct mfa_templates_config {
    char *dir;
    char *default_locale;
    char *portal_name;
};

struct mfa_retry_config {
    struct cfg_intlist delays_seconds; /* one retry tier per delay */
};

struct mfa_log_config {
    const char *level; /* debug | info | warn | error */
};

struct mfa_config {
    struct mfa_amqp_config amqp;
    struct mfa_postgres_config postgres;
    struct mfa_keys_config keys;
    struct mfa_codes_config codes;
    struct mfa_login_config login;
    struct mfa_phone_config phone;
    struct mfa_smtp_config smtp;
    struct mfa_sms_config sms;
    struct mfa_templates_config templates;
    struct mfa_retry_config retry;
    struct mfa_log_config log;
};

/* The declarations, for mfactl (help, dump) and tests. */
extern const struct cfg_decl mfa_config_table[];

/*
 * Load and validate. path NULL: $MFA_CONFIG if set (then it must exist),
 * else config/mfa.yaml if it exists, else defaults and environment only.
 * A given path must exist. 0, or -1 with err naming the key (c is then
 * empty and needs no mfa_config_free).
 */
int mfa_config_load(struct mfa_config *c, const char *path, char *err,
                    size_t errlen) __attribute__((warn_unused_result));
/* Frees strings and lists; secrets are wiped first. */
void mfa_config_free(struct mfa_config *c);
/* "section.key = value" lines, secrets as ***. */
void mfa_config_dump(const struct mfa_config *c, FILE *out);

#endif
