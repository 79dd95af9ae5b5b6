/*
 * cfg_dump.c - printing a loaded configuration, and finding the password
 * in a URL so that neither a dump nor an error shows it.
 *
 * Callers: the settings module's mfa_config_dump() (shared/mfa/settings.c,
 * checked by tests/unit/test_cfg.c), and cfg.c, whose error messages
 * mask a URL's password with cfg_url_password().
 *
 * Security notes: CFG_SECRET values print as *** and a CFG_URL_CREDS
 * URL's password as user:***@host; nothing else of a secret is written.
 */
#include "util/cfg.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

const char *
cfg_url_password(const char *v, const char **at)
{
    const char *auth = strstr(v, "://");

    *at = NULL;
    if (auth == NULL)
        return NULL;
    auth += 3;
    for (const char *p = auth; p < auth + strcspn(auth, "/?#"); p++)
        if (*p == '@')
            *at = p;
    return *at ? memchr(auth, ':', (size_t)(*at - auth)) : NULL;
}

/* Quoted; a secret as ***, a URL's password as *** (user:***@host). */
static void
cfg_dump_str(const struct cfg_decl *d, const char *s, FILE *out)
{
    const char *colon = NULL, *at;

    if ((d->flags & CFG_SECRET) && *s)
        fputs("***", out);
    else if ((d->flags & CFG_URL_CREDS) && (colon = cfg_url_password(s, &at)))
        fprintf(out, "\"%.*s:***%s\"", (int)(colon - s), s, at);
    else
        fprintf(out, "\"%s\"", s);
}

void
cfg_dump(const struct cfg_decl *table, const void *target, FILE *out)
{
    for (const struct cfg_decl *d = table; d->section; d++) {
        const void *f = (const char *)target + d->offset;
        const struct cfg_intlist *il = f;
        const struct cfg_strlist *sl = f;

        fprintf(out, "%s.%s = ", d->section, d->key);
        switch (d->type) {
        case CFG_STR:
            cfg_dump_str(d, *(char *const *)f ? *(char *const *)f : "", out);
            break;
        case CFG_INT: fprintf(out, "%ld", *(const long *)f); break;
        case CFG_BOOL: fputs(*(const bool *)f ? "true" : "false", out); break;
        case CFG_ENUM: fputs(*(const char *const *)f, out); break;
        case CFG_INTLIST:
            for (size_t i = 0; i < il->n; i++)
                fprintf(out, "%s%ld", i ? ", " : "[", il->v[i]);
            fputs(il->n ? "]" : "[]", out);
            break;
        case CFG_STRLIST:
            for (size_t i = 0; i < sl->n; i++) {
                fputs(i ? ", " : "[", out);
                cfg_dump_str(d, sl->v[i], out);
            }
            fputs(sl->n ? "]" : "[]", out);
            break;
        }
        fputc('\n', out);
    }
}
