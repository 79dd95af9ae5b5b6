/*
 * tmpl.h - localized message templates: load and check once, render many.
 *
 * Layout: <dir>/<locale>/<file>, one folder per locale (en/, nl/, de/...).
 * The caller declares the files it needs (struct tmpl_file); tmpl_load()
 * reads every locale folder under dir, and a missing file, a missing
 * required placeholder, an unknown placeholder, bad UTF-8 or a stray
 * "{{" is a start-up error naming the file. Placeholders are {{name}}
 * with name in [a-z0-9_]. Values are inserted as given in plain parts,
 * and HTML-escaped in parts declared html.
 *
 * Used by mfa-email (subject, text, HTML per template) and meant for
 * mfa-sms too (one text part).
 */
#ifndef MFA_TMPL_H
#define MFA_TMPL_H

#include <stddef.h>

#include "util/buf.h"

/* Bytes of one template file, and of one rendered part. */
#define TMPL_FILE_MAX (64 * 1024)
#define TMPL_OUT_MAX (256 * 1024)
#define TMPL_LOCALE_MAX 35

/* One file every locale must have. */
struct tmpl_file {
    const char *file;            /* "code.txt" */
    int html;                    /* escape values for HTML */
    int one_line;                /* a subject: a single line, no CR/LF */
    const char *const *required; /* NULL-terminated; must each appear */
    const char *const *allowed;  /* NULL-terminated; anything else is an
                                    error (required ones are allowed) */
};

struct tmpl_var {
    const char *name;  /* without braces */
    const char *value; /* UTF-8; NULL renders as "" */
};

struct tmpl_set;

/*
 * Loads dir/<locale>/<file> for every locale folder and every declared
 * file. default_locale must be one of the folders. Returns the set, or
 * NULL with err naming the file (or folder) and the problem.
 */
struct tmpl_set *tmpl_load(const char *dir, const char *default_locale,
                           const struct tmpl_file *files, size_t nfiles,
                           char *err, size_t errlen)
    __attribute__((warn_unused_result));
void tmpl_free(struct tmpl_set *s);

/* Number of locales loaded and the name of the i-th (sorted). */
size_t tmpl_locale_count(const struct tmpl_set *s);
const char *tmpl_locale_name(const struct tmpl_set *s, size_t i);

/*
 * The locale folder to use for a user's locale: an exact match ("nl-BE",
 * ignoring case and with - and _ alike), else its language ("nl"), else
 * the default locale. want may be NULL or "". Never NULL.
 */
const char *tmpl_locale(const struct tmpl_set *s, const char *want);

/*
 * Appends file (one of the declared ones) of locale (a name returned by
 * tmpl_locale) to out, the placeholders replaced by vars. Variables not
 * in vars render as "". 0, or -1 with err (unknown locale or file, or out
 * full).
 */
int tmpl_render(const struct tmpl_set *s, const char *locale, const char *file,
                const struct tmpl_var *vars, size_t nvars, struct buf *out,
                char *err, size_t errlen) __attribute__((warn_unused_result));

/* HTML-escapes s (& < > " ') onto out. 0 or -1 when out is full. */
int tmpl_html_escape(struct buf *out, const char *s)
    __attribute__((warn_unused_result));

#endif
