/*
 * cfg.c - table-driven configuration loader (defaults, YAML, environment).
 *
 * Callers: a program's settings module (shared/mfa/settings.c) and tests.
 * The table says everything about a key, so the parsers, the unknown-key
 * error, the environment names and the dump (cfg_dump.c) all come from
 * one place.
 *
 * Security notes: CFG_ENV_ONLY keys are refused in the file so a secret
 * cannot end up in a committed configuration; CFG_SECRET values are never
 * echoed in errors or dumps and are wiped on free. Every value is refused
 * when it holds a control character: values end up in mail headers, URLs
 * and paths, where CR/LF or NUL would let a value smuggle in more. libyaml
 * keeps its own unwiped copies of the file's text, one more reason secrets
 * belong in the environment.
 */
#include "util/cfg.h"
#include "util/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>
#include <yaml.h>

/* Values echoed in errors are cut here: they may be long or hostile. */
#define CFG_SHOW_MAX 80

struct cfg_ctx {
    const struct cfg_decl *table;
    void *target;
    const char *env_prefix;
    char *err;
    size_t errlen;
    const char *path;     /* the file being read */
    yaml_document_t *doc; /* its parsed form, while reading it */
    size_t ndecl;
    /* File lines: [i] set declaration i, [ndecl + i] opened the section
     * whose first declaration is i. Duplicates are errors in YAML. */
    unsigned long *seen;
    char shown[256]; /* cfg_shown()'s masked copy */
};

/* Where a value came from: a file line, a variable, or the default. */
struct cfg_origin {
    unsigned long line; /* in ctx->path; 0 = not from the file */
    const char *env;    /* variable name, or NULL */
    long idx;           /* list element, or -1 */
};

/* A list being built; it replaces the field only once complete. */
union cfg_list {
    struct cfg_intlist i;
    struct cfg_strlist s;
};

#define CFG_IS_LIST(d) ((d)->type == CFG_INTLIST || (d)->type == CFG_STRLIST)

static void *
cfg_field(const struct cfg_decl *d, void *target)
{
    return (char *)target + d->offset;
}

static size_t
cfg_size(enum cfg_type t)
{
    static const size_t size[] = {
        [CFG_STR] = sizeof(char *),
        [CFG_INT] = sizeof(long),
        [CFG_BOOL] = sizeof(bool),
        [CFG_ENUM] = sizeof(const char *),
        [CFG_INTLIST] = sizeof(struct cfg_intlist),
        [CFG_STRLIST] = sizeof(struct cfg_strlist),
    };
    return size[t];
}

/* "<where>: <msg>", where = "file:line: sec.key", "MFA_SEC_KEY" or the
 * default (a bad default is our bug, but it should still say so); with no
 * declaration, just "file:line". */
static int __attribute__((format(printf, 4, 5)))
cfg_fail(struct cfg_ctx *c, const struct cfg_decl *d,
         const struct cfg_origin *o, const char *fmt, ...)
{
    char where[256], sfx[32] = "", msg[512];
    va_list ap;

    if (o->idx >= 0)
        snprintf(sfx, sizeof(sfx), "[%ld]", o->idx);
    if (o->env)
        snprintf(where, sizeof(where), "%s%s", o->env, sfx);
    else if (o->line && !d)
        snprintf(where, sizeof(where), "%s:%lu", c->path, o->line);
    else if (o->line)
        snprintf(where, sizeof(where), "%s:%lu: %s.%s%s", c->path, o->line,
                 d->section, d->key, sfx);
    else
        snprintf(where, sizeof(where), "%s.%s%s (default)", d->section, d->key,
                 sfx);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(c->err, c->errlen, "%s: %s", where, msg);
    return -1;
}

/* A file-level error: "<path>:<line>: <msg>". */
#define CFG_FAIL_AT(c, line, ...)                                              \
    cfg_fail(c, NULL, &(struct cfg_origin){line, NULL, -1}, __VA_ARGS__)

/* What an error may repeat of v: never a secret, nor a URL's password. */
static const char *
cfg_shown(struct cfg_ctx *c, const struct cfg_decl *d, const char *v)
{
    const char *colon, *at;

    if ((d->flags & CFG_SECRET) && *v)
        return "***";
    if (!(d->flags & CFG_URL_CREDS) ||
        (colon = cfg_url_password(v, &at)) == NULL)
        return v;
    snprintf(c->shown, sizeof(c->shown), "%.*s:***%s", (int)(colon - v), v, at);
    return c->shown;
}

static void
cfg_free_str(const struct cfg_decl *d, char *s)
{
    if (s && (d->flags & CFG_SECRET))
        sodium_memzero(s, strlen(s));
    free(s);
}

/* Frees what the field owns and zeroes it. */
static void
cfg_free_field(const struct cfg_decl *d, void *f)
{
    struct cfg_strlist *sl = f;

    if (d->type == CFG_STR)
        cfg_free_str(d, *(char **)f);
    else if (d->type == CFG_INTLIST)
        free(((struct cfg_intlist *)f)->v);
    for (size_t i = 0; d->type == CFG_STRLIST && i < sl->n; i++)
        cfg_free_str(d, sl->v[i]);
    if (d->type == CFG_STRLIST)
        free(sl->v);
    memset(f, 0, cfg_size(d->type));
}

static int
cfg_parse_int(struct cfg_ctx *c, const struct cfg_decl *d,
              const struct cfg_origin *o, const char *s, long *out)
{
    const char *p = s[0] == '-' ? s + 1 : s;
    char why[160] = "";
    char *end;
    long v;

    /* Base 10 digits only: strtol alone would take " 5", "+5" and 0x10. */
    if (!isdigit((unsigned char)p[0]))
        goto bad;
    errno = 0;
    v = strtol(s, &end, 10);
    if (*end != '\0')
        goto bad;
    if (errno == ERANGE)
        return cfg_fail(c, d, o, "%.*s is out of range", CFG_SHOW_MAX,
                        cfg_shown(c, d, s));
    if (d->why)
        snprintf(why, sizeof(why), " (%s)", d->why);
    if (v < d->min)
        return cfg_fail(c, d, o, "%ld is below the minimum %ld%s", v, d->min,
                        why);
    if (v > d->max)
        return cfg_fail(c, d, o, "%ld is above the maximum %ld%s", v, d->max,
                        why);
    *out = v;
    return 0;
bad:
    return cfg_fail(c, d, o, "\"%.*s\" is not an integer", CFG_SHOW_MAX,
                    cfg_shown(c, d, s));
}

/* len, not strlen: a YAML "\0" would otherwise cut the value short. */
static int
cfg_check_value(struct cfg_ctx *c, const struct cfg_decl *d,
                const struct cfg_origin *o, const char *s, size_t len)
{
    const char *why;

    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch < 0x20 || ch == 0x7f)
            return cfg_fail(c, d, o,
                            "contains a control character "
                            "(byte %zu)",
                            i);
    }
    if (d->check && (why = d->check(s)) != NULL)
        return cfg_fail(c, d, o, "\"%.*s\" %s", CFG_SHOW_MAX,
                        cfg_shown(c, d, s), why);
    return 0;
}

static int
cfg_set_scalar(struct cfg_ctx *c, const struct cfg_decl *d,
               const struct cfg_origin *o, const char *s, size_t len)
{
    static const char *const bools[] = {"true",  "yes", "on",  "1",
                                        "false", "no",  "off", "0"};
    void *f = cfg_field(d, c->target);
    char list[256] = "";
    size_t used = 0;

    if (cfg_check_value(c, d, o, s, len) != 0)
        return -1;
    switch (d->type) {
    case CFG_STR:
        if ((d->flags & CFG_NONEMPTY) && len == 0)
            return cfg_fail(c, d, o, "must not be empty");
        cfg_free_str(d, *(char **)f);
        *(char **)f = xstrndup(s, len);
        return 0;
    case CFG_INT: return cfg_parse_int(c, d, o, s, (long *)f);
    case CFG_BOOL:
        for (size_t i = 0; i < 8; i++) {
            if (strcasecmp(s, bools[i]) == 0) {
                *(bool *)f = i < 4;
                return 0;
            }
        }
        return cfg_fail(c, d, o,
                        "\"%.*s\" is not a boolean (true/false, "
                        "yes/no, on/off, 1/0)",
                        CFG_SHOW_MAX, cfg_shown(c, d, s));
    case CFG_ENUM:
        for (int i = 0; d->choices[i]; i++) {
            if (strcmp(s, d->choices[i]) == 0) {
                *(const char **)f = d->choices[i];
                return 0;
            }
            if (used < sizeof(list))
                used += (size_t)snprintf(list + used, sizeof(list) - used,
                                         "%s%s", i ? ", " : "", d->choices[i]);
        }
        return cfg_fail(c, d, o, "\"%.*s\" is not one of %s", CFG_SHOW_MAX,
                        cfg_shown(c, d, s), list);
    default: return cfg_fail(c, d, o, "expected a list, not a single value");
    }
}

static int
cfg_list_add(struct cfg_ctx *c, const struct cfg_decl *d,
             const struct cfg_origin *o, union cfg_list *l, const char *s,
             size_t len)
{
    long v;

    if (len == 0 && d->type == CFG_STRLIST)
        return cfg_fail(c, d, o, "is empty");
    if (cfg_check_value(c, d, o, s, len) != 0)
        return -1;
    if (d->type == CFG_INTLIST) {
        if (cfg_parse_int(c, d, o, s, &v) != 0)
            return -1;
        l->i.v = xrealloc(l->i.v, (l->i.n + 1) * sizeof(*l->i.v));
        l->i.v[l->i.n++] = v;
    } else {
        l->s.v = xrealloc(l->s.v, (l->s.n + 1) * sizeof(*l->s.v));
        l->s.v[l->s.n++] = xstrndup(s, len);
    }
    return 0;
}

/* Moves l into the field; the caller still frees l (left empty if moved). */
static int
cfg_list_commit(struct cfg_ctx *c, const struct cfg_decl *d,
                const struct cfg_origin *o, union cfg_list *l)
{
    void *f = cfg_field(d, c->target);

    if ((d->flags & CFG_NONEMPTY) &&
        (d->type == CFG_INTLIST ? l->i.n : l->s.n) == 0)
        return cfg_fail(c, d, o, "must not be empty");
    cfg_free_field(d, f);
    memcpy(f, l, cfg_size(d->type));
    memset(l, 0, sizeof(*l));
    return 0;
}

/* "5, 30,120": lists as the environment and the defaults write them. */
static int
cfg_set_csv(struct cfg_ctx *c, const struct cfg_decl *d,
            const struct cfg_origin *o, const char *s)
{
    struct cfg_origin eo = *o;
    union cfg_list lb = {0};
    size_t slen = strlen(s), len;
    char *copy = xstrdup(s), *rest = copy, *item;
    int rc = -1;

    /* Blank is the empty list, so MFA_X= can clear a list. */
    if (s[strspn(s, " \t")] == '\0')
        rest = NULL;
    for (eo.idx = 0; (item = strsep(&rest, ",")) != NULL; eo.idx++) {
        item += strspn(item, " \t");
        for (len = strlen(item); len && isblank((unsigned char)item[len - 1]);)
            item[--len] = '\0';
        if (len == 0) {
            cfg_fail(c, d, &eo, "is empty (a stray comma?)");
            goto out;
        }
        if (cfg_list_add(c, d, &eo, &lb, item, len) != 0)
            goto out;
    }
    rc = cfg_list_commit(c, d, o, &lb);
out:
    cfg_free_field(d, &lb);
    if (d->flags & CFG_SECRET)
        sodium_memzero(copy, slen);
    free(copy);
    return rc;
}

static int
cfg_set_text(struct cfg_ctx *c, const struct cfg_decl *d,
             const struct cfg_origin *o, const char *s)
{
    if (CFG_IS_LIST(d))
        return cfg_set_csv(c, d, o, s);
    return cfg_set_scalar(c, d, o, s, strlen(s));
}

void
cfg_env_name(const struct cfg_decl *d, const char *env_prefix, char *buf,
             size_t buflen)
{
    snprintf(buf, buflen, "%s%s_%s", env_prefix ? env_prefix : "", d->section,
             d->key);
    for (char *p = buf; *p; p++)
        *p =
            isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p) : '_';
}

/* ---- the YAML file ------------------------------------------------------ */

static unsigned long
cfg_line(const yaml_node_t *n)
{
    return (unsigned long)n->start_mark.line + 1;
}

/* YAML's null: an empty plain value, ~ or null. */
static int
cfg_is_null(const yaml_node_t *n)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};

    if (n->type != YAML_SCALAR_NODE ||
        n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
        if (strcmp((const char *)n->data.scalar.value, nulls[i]) == 0)
            return 1;
    return 0;
}

static const char *
cfg_kind(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE     ? "a single value"
           : n->type == YAML_SEQUENCE_NODE ? "a list"
                                           : "a mapping";
}

static int
cfg_yaml_value(struct cfg_ctx *c, const struct cfg_decl *d, yaml_node_t *v)
{
    struct cfg_origin o = {cfg_line(v), NULL, -1}, eo = o;
    union cfg_list lb = {0};
    int rc = -1;

    if (!CFG_IS_LIST(d)) {
        if (v->type != YAML_SCALAR_NODE)
            return cfg_fail(c, d, &o, "expected a single value, found %s",
                            cfg_kind(v));
        if (cfg_is_null(v) && d->type != CFG_STR)
            return cfg_fail(c, d, &o, "has no value");
        if (cfg_is_null(v)) /* "key:" alone is the empty string */
            return cfg_set_scalar(c, d, &o, "", 0);
        return cfg_set_scalar(c, d, &o, (const char *)v->data.scalar.value,
                              v->data.scalar.length);
    }
    if (cfg_is_null(v))
        return cfg_list_commit(c, d, &o, &lb);
    if (v->type != YAML_SEQUENCE_NODE)
        return cfg_fail(c, d, &o, "expected a list such as [a, b], found %s",
                        cfg_kind(v));
    for (yaml_node_item_t *it = v->data.sequence.items.start;
         it < v->data.sequence.items.top; it++) {
        yaml_node_t *e = yaml_document_get_node(c->doc, *it);

        eo.line = cfg_line(e);
        eo.idx = (long)(it - v->data.sequence.items.start);
        if (e->type != YAML_SCALAR_NODE) {
            cfg_fail(c, d, &eo, "expected a single value, found %s",
                     cfg_kind(e));
            goto out;
        }
        if (cfg_list_add(c, d, &eo, &lb, (const char *)e->data.scalar.value,
                         e->data.scalar.length) != 0)
            goto out;
    }
    rc = cfg_list_commit(c, d, &o, &lb);
out:
    cfg_free_field(d, &lb);
    return rc;
}

static int
cfg_yaml_section(struct cfg_ctx *c, const char *sec, yaml_node_t *m)
{
    char env[128];

    if (cfg_is_null(m)) /* every key of the section commented out */
        return 0;
    if (m->type != YAML_MAPPING_NODE)
        return CFG_FAIL_AT(c, cfg_line(m),
                           "section \"%s\" must be a mapping "
                           "of keys, found %s",
                           sec, cfg_kind(m));
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start;
         p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        const struct cfg_decl *d = c->table;
        const char *key;
        size_t i;

        if (k->type != YAML_SCALAR_NODE)
            return CFG_FAIL_AT(c, cfg_line(k),
                               "a key in section \"%s\" is %s, "
                               "not a name",
                               sec, cfg_kind(k));
        key = (const char *)k->data.scalar.value;
        while (d->section &&
               (strcmp(d->section, sec) != 0 || strcmp(d->key, key) != 0))
            d++;
        if (!d->section)
            return CFG_FAIL_AT(c, cfg_line(k), "unknown key \"%s.%.*s\"", sec,
                               CFG_SHOW_MAX, key);
        i = (size_t)(d - c->table);
        if (c->seen[i])
            return CFG_FAIL_AT(c, cfg_line(k),
                               "duplicate key \"%s.%s\" (first "
                               "set on line %lu)",
                               sec, key, c->seen[i]);
        c->seen[i] = cfg_line(k);
        if (d->flags & CFG_ENV_ONLY) {
            cfg_env_name(d, c->env_prefix, env, sizeof(env));
            return CFG_FAIL_AT(c, cfg_line(k),
                               "%s.%s may only come from the "
                               "environment (%s)",
                               sec, key, env);
        }
        if (cfg_yaml_value(c, d, yaml_document_get_node(c->doc, p->value)))
            return -1;
    }
    return 0;
}

static int
cfg_yaml_root(struct cfg_ctx *c, yaml_node_t *root)
{
    if (root == NULL || cfg_is_null(root)) /* an empty file */
        return 0;
    if (root->type != YAML_MAPPING_NODE)
        return CFG_FAIL_AT(c, cfg_line(root),
                           "expected a mapping of sections "
                           "at the top level, found %s",
                           cfg_kind(root));
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
         p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        const struct cfg_decl *d = c->table;
        unsigned long *seen;
        const char *sec;

        if (k->type != YAML_SCALAR_NODE)
            return CFG_FAIL_AT(c, cfg_line(k),
                               "a section name is %s, not a "
                               "name",
                               cfg_kind(k));
        sec = (const char *)k->data.scalar.value;
        while (d->section && strcmp(d->section, sec) != 0)
            d++;
        if (!d->section)
            return CFG_FAIL_AT(c, cfg_line(k), "unknown section \"%.*s\"",
                               CFG_SHOW_MAX, sec);
        seen = &c->seen[c->ndecl + (size_t)(d - c->table)];
        if (*seen)
            return CFG_FAIL_AT(c, cfg_line(k),
                               "duplicate section \"%s\" "
                               "(first on line %lu)",
                               sec, *seen);
        *seen = cfg_line(k);
        if (cfg_yaml_section(c, sec, yaml_document_get_node(c->doc, p->value)))
            return -1;
    }
    return 0;
}

static int
cfg_yaml_error(struct cfg_ctx *c, const yaml_parser_t *pa)
{
    return CFG_FAIL_AT(c, (unsigned long)pa->problem_mark.line + 1,
                       "malformed YAML: %s%s%s",
                       pa->problem ? pa->problem : "cannot parse",
                       pa->context ? " " : "", pa->context ? pa->context : "");
}

static int
cfg_load_file(struct cfg_ctx *c, int required)
{
    yaml_parser_t pa;
    yaml_document_t doc, more;
    int have_doc = 0, rc = -1;
    FILE *fp = fopen(c->path, "rb");

    if (fp == NULL) {
        if (errno == ENOENT && !required)
            return 0;
        snprintf(c->err, c->errlen, "%s: cannot open: %s", c->path,
                 strerror(errno));
        return -1;
    }
    if (!yaml_parser_initialize(&pa))
        abort(); /* only fails on OOM, which xalloc treats the same */
    yaml_parser_set_input_file(&pa, fp);
    if (!yaml_parser_load(&pa, &doc)) {
        if (pa.error == YAML_READER_ERROR && ferror(fp)) /* a directory... */
            snprintf(c->err, c->errlen, "%s: cannot read: %s", c->path,
                     strerror(errno));
        else
            cfg_yaml_error(c, &pa);
        goto out;
    }
    have_doc = 1;
    c->doc = &doc;
    c->seen = xcalloc(2 * c->ndecl + 1, sizeof(*c->seen));
    if (cfg_yaml_root(c, yaml_document_get_root_node(&doc)) != 0)
        goto out;
    /* A second "---" document would otherwise be silently ignored. */
    if (!yaml_parser_load(&pa, &more)) {
        cfg_yaml_error(c, &pa);
        goto out;
    }
    if (yaml_document_get_root_node(&more) != NULL)
        CFG_FAIL_AT(c, (unsigned long)more.start_mark.line + 1,
                    "only one YAML document is allowed");
    else
        rc = 0;
    yaml_document_delete(&more);
out:
    free(c->seen);
    c->seen = NULL;
    c->doc = NULL;
    if (have_doc)
        yaml_document_delete(&doc);
    yaml_parser_delete(&pa);
    fclose(fp);
    return rc;
}

/* ---- public ------------------------------------------------------------- */

int
cfg_load(const struct cfg_decl *table, void *target, const char *path,
         int path_required, const char *env_prefix, char *err, size_t errlen)
{
    struct cfg_ctx c = {.table = table,
                        .target = target,
                        .env_prefix = env_prefix,
                        .err = err,
                        .errlen = errlen,
                        .path = path};
    struct cfg_origin def = {0, NULL, -1};
    const struct cfg_decl *d;
    char env[128];

    /* The target may be uninitialised: start from known-empty fields. */
    for (d = table; d->section; d++, c.ndecl++)
        memset(cfg_field(d, target), 0, cfg_size(d->type));
    for (d = table; d->section; d++)
        if (cfg_set_text(&c, d, &def, d->def ? d->def : "") != 0)
            goto fail;
    if (path && cfg_load_file(&c, path_required) != 0)
        goto fail;
    for (d = table; env_prefix && d->section; d++) {
        struct cfg_origin o = {0, env, -1};
        const char *v;

        cfg_env_name(d, env_prefix, env, sizeof(env));
        if ((v = getenv(env)) != NULL && cfg_set_text(&c, d, &o, v) != 0)
            goto fail;
    }
    return 0;
fail:
    cfg_free(table, target);
    return -1;
}

void
cfg_free(const struct cfg_decl *table, void *target)
{
    for (const struct cfg_decl *d = table; d->section; d++)
        cfg_free_field(d, cfg_field(d, target));
}
