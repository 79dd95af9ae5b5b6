/*
 * cfg.h - table-driven configuration: defaults, a YAML file, environment.
 *
 * A program describes its configuration as a static table of declarations
 * (Postfix CONFIG_*_TABLE, redis static_configs[]): where each value lives
 * in a target struct, its type, default, range and flags. cfg_load() fills
 * the struct in three layers, later ones winning:
 *
 *   1. the declared defaults;
 *   2. a YAML file: a mapping of sections to mappings of keys to a scalar
 *      or a sequence of scalars (block or flow style);
 *   3. environment variables <PREFIX><SECTION>_<KEY> in capitals, lists as
 *      comma-separated values (MFA_RETRY_DELAYS_SECONDS=1,2).
 *
 * Unknown sections and keys in the file, duplicates, bad values and
 * CFG_ENV_ONLY keys in the file are errors naming the file, line and key.
 * Environment variables that match no declaration are ignored.
 *
 * This module knows nothing of MFA; the table lives with its program
 * (shared/mfa/settings.c).
 */
#ifndef UTIL_CFG_H
#define UTIL_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum cfg_type {
    CFG_STR,     /* char *, malloc'd, never NULL after a load */
    CFG_INT,     /* long, within [min, max] */
    CFG_BOOL,    /* bool: true/false, yes/no, on/off, 1/0 */
    CFG_ENUM,    /* const char *: points at the matching choices[] entry */
    CFG_INTLIST, /* struct cfg_intlist, each element within [min, max] */
    CFG_STRLIST, /* struct cfg_strlist */
};

struct cfg_intlist {
    long *v;
    size_t n;
};

struct cfg_strlist {
    char **v;
    size_t n;
};

/* Never printed by cfg_dump() nor echoed in errors; wiped by cfg_free(). */
#define CFG_SECRET 0x01u
/* Refused in the file: only the environment may set it. */
#define CFG_ENV_ONLY 0x02u
/* A string must not be empty, a list must have an element. */
#define CFG_NONEMPTY 0x04u
/* A URL: its password (user:***@host) is masked in dumps and errors. */
#define CFG_URL_CREDS 0x08u

/*
 * A string check: NULL when v is acceptable, else a phrase completing
 * "<key>: \"<v>\" ..." such as "is not two capital letters".
 */
typedef const char *(*cfg_check_fn)(const char *v);

struct cfg_decl {
    const char *section; /* NULL ends the table */
    const char *key;
    enum cfg_type type;
    size_t offset;   /* offsetof(target struct, field) */
    const char *def; /* as the environment would give it; "" = empty */
    long min, max;   /* CFG_INT and CFG_INTLIST elements */
    const char *const *choices; /* CFG_ENUM: NULL-terminated */
    cfg_check_fn check;         /* CFG_STR and CFG_STRLIST elements */
    const char *why;            /* appended to range errors, e.g. a norm */
    unsigned flags;
    const char *help; /* one line, for humans */
};

/*
 * Declaration helpers. T is the target struct type, f the field (nested
 * designators work: codes.ttl_seconds). The dead comparison makes a field
 * of the wrong C type a compile error under -Werror.
 */
#define CFG_OFF_(T, f, ptype)                                                  \
    (offsetof(T, f) + 0 * sizeof(&((T *)0)->f == (ptype)0))
#define CFG_D_(T, sec_, key_, type_, f, ptype, def_, flags_, help_)            \
    .section = sec_, .key = key_, .type = type_,                               \
    .offset = CFG_OFF_(T, f, ptype), .def = def_, .flags = flags_,             \
    .help = help_

#define CFG_DECL_STR(T, sec, key, f, def, check_, flags, help)                 \
    {                                                                          \
        CFG_D_(T, sec, key, CFG_STR, f, char **, def, flags, help),            \
            .check = check_                                                    \
    }
#define CFG_DECL_INT(T, sec, key, f, def, min_, max_, why_, flags, help)       \
    {                                                                          \
        CFG_D_(T, sec, key, CFG_INT, f, long *, def, flags, help),             \
            .min = min_, .max = max_, .why = why_                              \
    }
#define CFG_DECL_BOOL(T, sec, key, f, def, flags, help)                        \
    {                                                                          \
        CFG_D_(T, sec, key, CFG_BOOL, f, bool *, def, flags, help)             \
    }
#define CFG_DECL_ENUM(T, sec, key, f, def, choices_, flags, help)              \
    {                                                                          \
        CFG_D_(T, sec, key, CFG_ENUM, f, const char **, def, flags, help),     \
            .choices = choices_                                                \
    }
#define CFG_DECL_INTLIST(T, sec, key, f, def, min_, max_, why_, flags, help)   \
    {                                                                          \
        CFG_D_(T, sec, key, CFG_INTLIST, f, struct cfg_intlist *, def, flags,  \
               help),                                                          \
            .min = min_, .max = max_, .why = why_                              \
    }
#define CFG_DECL_STRLIST(T, sec, key, f, def, check_, flags, help)             \
    {                                                                          \
        CFG_D_(T, sec, key, CFG_STRLIST, f, struct cfg_strlist *, def, flags,  \
               help),                                                          \
            .check = check_                                                    \
    }
#define CFG_DECL_END                                                           \
    {                                                                          \
        .section = NULL                                                        \
    }

/*
 * Fill target from table: defaults, then the YAML file at path (NULL = no
 * file; a missing file is an error only when path_required), then the
 * environment (env_prefix such as "MFA_"; NULL = ignore the environment).
 * Returns 0, or -1 with err set to one sentence ("config/mfa.yaml:12:
 * codes.ttl_seconds: 900 is above the maximum 600"); on error the declared
 * fields are already freed and zeroed. Call cfg_free() after a success.
 */
int cfg_load(const struct cfg_decl *table, void *target, const char *path,
             int path_required, const char *env_prefix, char *err,
             size_t errlen) __attribute__((warn_unused_result));

/* Frees strings and lists (secrets wiped first) and zeroes the fields.
 * Safe on a target that cfg_load() left zeroed, and twice. */
void cfg_free(const struct cfg_decl *table, void *target);

/* "section.key = value" per declaration; secrets as ***, a URL's
 * password as user:***@host (cfg_dump.c). */
void cfg_dump(const struct cfg_decl *table, const void *target, FILE *out);

/* In "scheme://user:pw@host/...", the ':' before pw, with *at set to the
 * '@' that ends it; NULL when v holds no password (for masking). */
const char *cfg_url_password(const char *v, const char **at);

/* The environment variable for d, e.g. "MFA_SMTP_PASSWORD", into buf. */
void cfg_env_name(const struct cfg_decl *d, const char *env_prefix, char *buf,
                  size_t buflen);

#endif
