/*
 * tmpl.c - message templates per locale: load, check, pick, render.
 *
 * Callers: mfa-email's init hook loads its templates once (a broken
 * template stops the worker at start-up, naming the file, instead of
 * failing one message at a time later); its handler renders per message.
 * mfa-sms is meant to reuse it for the SMS text.
 *
 * Security notes: template files are operator-controlled, rendered values
 * are not (display names come from the CRM). In parts declared html every
 * value is HTML-escaped; in one-line parts (subjects) control characters
 * in values become spaces so a value can never start a new header line.
 * Rendered output may hold a code: callers keep it in a struct buf, which
 * wipes on free. Locale folder names are checked before they reach a path.
 */
#include "mfa/tmpl.h"
#include "mfa/addr.h"
#include "util/xalloc.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A piece of a template: literal text or a placeholder, both as a span of
 * the file's text. */
struct tmpl_seg {
    int var;
    size_t off, len;
};

struct tmpl_doc {
    char *text;
    struct tmpl_seg *segs;
    size_t nsegs;
};

struct tmpl_loc {
    char name[TMPL_LOCALE_MAX + 1];
    struct tmpl_doc *docs; /* one per declared file */
};

struct tmpl_set {
    const struct tmpl_file *files;
    size_t nfiles;
    struct tmpl_loc *locs;
    size_t nlocs;
    size_t def; /* index of the default locale */
};

static int
tmpl_locale_ok(const char *name)
{
    size_t n = strlen(name);

    return n > 0 && n <= TMPL_LOCALE_MAX &&
           strspn(name, "abcdefghijklmnopqrstuvwxyz"
                        "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == n;
}

static int
tmpl_in_list(const char *const *list, const char *name, size_t len)
{
    for (size_t i = 0; list != NULL && list[i] != NULL; i++)
        if (strlen(list[i]) == len && memcmp(list[i], name, len) == 0)
            return 1;
    return 0;
}

static int
tmpl_line_of(const char *text, size_t off)
{
    int line = 1;

    for (size_t i = 0; i < off; i++)
        line += text[i] == '\n';
    return line;
}

static void
tmpl_add_seg(struct tmpl_doc *d, int var, size_t off, size_t len)
{
    if (len == 0)
        return;
    d->segs = xrealloc(d->segs, (d->nsegs + 1) * sizeof(*d->segs));
    d->segs[d->nsegs].var = var;
    d->segs[d->nsegs].off = off;
    d->segs[d->nsegs].len = len;
    d->nsegs++;
}

/* Splits d->text into segments and checks the placeholders against the
 * declaration. 0, or -1 with a reason in err (the caller adds the path). */
static int
tmpl_parse(struct tmpl_doc *d, const struct tmpl_file *f, char *err,
           size_t errlen)
{
    const char *t = d->text;
    size_t pos = 0, n = strlen(t);

    while (pos < n) {
        const char *open = strstr(t + pos, "{{");
        const char *close;
        size_t a, b;

        if (open == NULL) {
            tmpl_add_seg(d, 0, pos, n - pos);
            break;
        }
        tmpl_add_seg(d, 0, pos, (size_t)(open - t) - pos);
        close = strstr(open + 2, "}}");
        if (close == NULL) {
            snprintf(err, errlen, "line %d: \"{{\" without \"}}\"",
                     tmpl_line_of(t, (size_t)(open - t)));
            return -1;
        }
        /* "{{ code }}" is forgiven; the name itself is strict. */
        a = (size_t)(open - t) + 2;
        b = (size_t)(close - t);
        while (a < b && t[a] == ' ')
            a++;
        while (b > a && t[b - 1] == ' ')
            b--;
        if (a == b ||
            strspn(t + a, "abcdefghijklmnopqrstuvwxyz0123456789_") < b - a) {
            snprintf(err, errlen, "line %d: bad placeholder \"%.*s\"",
                     tmpl_line_of(t, (size_t)(open - t)),
                     (int)(close - open + 2 > 40 ? 40 : close - open + 2),
                     open);
            return -1;
        }
        if (!tmpl_in_list(f->required, t + a, b - a) &&
            !tmpl_in_list(f->allowed, t + a, b - a)) {
            snprintf(err, errlen, "line %d: unknown placeholder {{%.*s}}",
                     tmpl_line_of(t, (size_t)(open - t)), (int)(b - a), t + a);
            return -1;
        }
        tmpl_add_seg(d, 1, a, b - a);
        pos = (size_t)(close - t) + 2;
    }
    for (size_t i = 0; f->required != NULL && f->required[i] != NULL; i++) {
        int found = 0;

        for (size_t k = 0; k < d->nsegs && !found; k++)
            found =
                d->segs[k].var && d->segs[k].len == strlen(f->required[i]) &&
                memcmp(t + d->segs[k].off, f->required[i], d->segs[k].len) == 0;
        if (!found) {
            snprintf(err, errlen, "missing placeholder {{%s}}", f->required[i]);
            return -1;
        }
    }
    return 0;
}

/* Reads one template file into d. 0, or -1 with err naming the path. */
static int
tmpl_read(const char *path, const struct tmpl_file *f, struct tmpl_doc *d,
          char *err, size_t errlen)
{
    char why[160] = "";
    struct buf b;
    char chunk[4096];
    size_t n;
    FILE *fp;
    int rc = -1;

    buf_init(&b, TMPL_FILE_MAX);
    fp = fopen(path, "rb");
    if (fp == NULL) {
        snprintf(why, sizeof(why), "%s",
                 errno == ENOENT ? "missing" : strerror(errno));
        goto out;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
        if (buf_append(&b, chunk, n) != 0) {
            snprintf(why, sizeof(why), "larger than %d bytes", TMPL_FILE_MAX);
            goto out;
        }
    }
    if (ferror(fp)) {
        snprintf(why, sizeof(why), "read error");
        goto out;
    }
    if (b.len == 0 || addr_utf8_check(b.data, b.len) != 0 ||
        memchr(b.data, '\0', b.len) != NULL) {
        snprintf(why, sizeof(why), "%s",
                 b.len == 0 ? "empty" : "not UTF-8 text");
        goto out;
    }
    /* A BOM is an editor's habit, not content. */
    d->text =
        xstrdup(strncmp(b.data, "\xEF\xBB\xBF", 3) == 0 ? b.data + 3 : b.data);
    if (f->one_line) {
        size_t len = strlen(d->text);

        while (len > 0 &&
               (d->text[len - 1] == '\n' || d->text[len - 1] == '\r'))
            d->text[--len] = '\0';
        if (len == 0 || strpbrk(d->text, "\r\n") != NULL ||
            addr_has_control(d->text)) {
            snprintf(why, sizeof(why),
                     "must be one line of text without control characters");
            goto out;
        }
    }
    if (tmpl_parse(d, f, why, sizeof(why)) != 0)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        snprintf(err, errlen, "template %s: %s", path, why);
    if (fp != NULL)
        fclose(fp);
    buf_free(&b);
    return rc;
}

static int
tmpl_loc_cmp(const void *a, const void *b)
{
    return strcmp(((const struct tmpl_loc *)a)->name,
                  ((const struct tmpl_loc *)b)->name);
}

/* The locale folders under dir, sorted. 0, or -1 with err. */
static int
tmpl_scan(struct tmpl_set *s, const char *dir, char *err, size_t errlen)
{
    DIR *dp = opendir(dir);
    struct dirent *de;

    if (dp == NULL) {
        snprintf(err, errlen, "templates folder %s: %s", dir, strerror(errno));
        return -1;
    }
    while ((de = readdir(dp)) != NULL) {
        char path[4096];
        struct stat st;

        /* Anything that is not a locale-shaped folder (README, .git,
         * editor backups) is not ours to judge. */
        if (!tmpl_locale_ok(de->d_name))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        s->locs = xrealloc(s->locs, (s->nlocs + 1) * sizeof(*s->locs));
        memset(&s->locs[s->nlocs], 0, sizeof(s->locs[0]));
        /* tmpl_locale_ok() bounds the length; %.*s says so to gcc. */
        snprintf(s->locs[s->nlocs].name, sizeof(s->locs[0].name), "%.*s",
                 (int)sizeof(s->locs[0].name) - 1, de->d_name);
        s->nlocs++;
    }
    closedir(dp);
    if (s->nlocs > 0)
        qsort(s->locs, s->nlocs, sizeof(*s->locs), tmpl_loc_cmp);
    return 0;
}

struct tmpl_set *
tmpl_load(const char *dir, const char *default_locale,
          const struct tmpl_file *files, size_t nfiles, char *err,
          size_t errlen)
{
    struct tmpl_set *s = xcalloc(1, sizeof(*s));
    int found = 0;

    s->files = files;
    s->nfiles = nfiles;
    if (tmpl_scan(s, dir, err, errlen) != 0)
        goto fail;
    for (size_t i = 0; i < s->nlocs; i++) {
        if (strcmp(s->locs[i].name, default_locale) == 0) {
            s->def = i;
            found = 1;
        }
    }
    if (!found) {
        snprintf(err, errlen,
                 "templates folder %s/%s (templates.default_locale) is "
                 "missing",
                 dir, default_locale);
        goto fail;
    }
    for (size_t i = 0; i < s->nlocs; i++) {
        s->locs[i].docs = xcalloc(nfiles, sizeof(struct tmpl_doc));
        for (size_t k = 0; k < nfiles; k++) {
            char path[4096];

            snprintf(path, sizeof(path), "%s/%s/%s", dir, s->locs[i].name,
                     files[k].file);
            if (tmpl_read(path, &files[k], &s->locs[i].docs[k], err, errlen) !=
                0)
                goto fail;
        }
    }
    return s;
fail:
    tmpl_free(s);
    return NULL;
}

void
tmpl_free(struct tmpl_set *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nlocs; i++) {
        for (size_t k = 0; s->locs[i].docs != NULL && k < s->nfiles; k++) {
            free(s->locs[i].docs[k].text);
            free(s->locs[i].docs[k].segs);
        }
        free(s->locs[i].docs);
    }
    free(s->locs);
    free(s);
}

size_t
tmpl_locale_count(const struct tmpl_set *s)
{
    return s->nlocs;
}

const char *
tmpl_locale_name(const struct tmpl_set *s, size_t i)
{
    return i < s->nlocs ? s->locs[i].name : NULL;
}

/* "nl_BE" and "NL-be" compare equal to "nl-BE"; len bytes of want. */
static int
tmpl_locale_eq(const char *name, const char *want, size_t len)
{
    size_t i;

    if (strlen(name) != len)
        return 0;
    for (i = 0; i < len; i++) {
        int a = tolower((unsigned char)name[i]);
        int b = tolower((unsigned char)want[i]);

        if (a == '_')
            a = '-';
        if (b == '_')
            b = '-';
        if (a != b)
            return 0;
    }
    return 1;
}

const char *
tmpl_locale(const struct tmpl_set *s, const char *want)
{
    size_t len, lang;

    if (want == NULL || *want == '\0')
        return s->locs[s->def].name;
    len = strlen(want);
    lang = strcspn(want, "-_");
    for (size_t i = 0; i < s->nlocs; i++)
        if (tmpl_locale_eq(s->locs[i].name, want, len))
            return s->locs[i].name;
    for (size_t i = 0; i < s->nlocs; i++)
        if (tmpl_locale_eq(s->locs[i].name, want, lang))
            return s->locs[i].name;
    return s->locs[s->def].name;
}

/* The entity for an HTML special character, or NULL. */
static const char *
tmpl_entity(char c)
{
    switch (c) {
    case '&': return "&amp;";
    case '<': return "&lt;";
    case '>': return "&gt;";
    case '"': return "&quot;";
    case '\'': return "&#39;";
    default: return NULL;
    }
}

int
tmpl_html_escape(struct buf *out, const char *s)
{
    /* Runs of plain text are copied whole, entities one by one. */
    while (*s) {
        size_t n = strcspn(s, "&<>\"'");

        if (n > 0 && buf_append(out, s, n) != 0)
            return -1;
        s += n;
        if (*s && buf_puts(out, tmpl_entity(*s++)) != 0)
            return -1;
    }
    return 0;
}

/* A value in a one-line part: control characters become spaces, and in
 * a part that is html too the rest is escaped (tests/fuzz found html
 * winning over one_line, letting CR/LF through). */
static int
tmpl_put_line(struct buf *out, const char *v, int html)
{
    while (*v) {
        size_t n = 0;
        const char *e;

        /* A run that needs no change. */
        while (v[n] && (unsigned char)v[n] >= 0x20 && v[n] != 0x7f &&
               (!html || tmpl_entity(v[n]) == NULL))
            n++;
        if (n > 0 && buf_append(out, v, n) != 0)
            return -1;
        v += n;
        if (*v == '\0')
            break;
        e = html ? tmpl_entity(*v) : NULL;
        if (e ? buf_puts(out, e) != 0 : buf_append(out, " ", 1) != 0)
            return -1;
        v++;
    }
    return 0;
}

int
tmpl_render(const struct tmpl_set *s, const char *locale, const char *file,
            const struct tmpl_var *vars, size_t nvars, struct buf *out,
            char *err, size_t errlen)
{
    const struct tmpl_loc *loc = NULL;
    const struct tmpl_doc *d;
    const struct tmpl_file *f = NULL;
    size_t k;

    for (size_t i = 0; i < s->nlocs && loc == NULL; i++)
        if (strcmp(s->locs[i].name, locale) == 0)
            loc = &s->locs[i];
    for (k = 0; k < s->nfiles; k++)
        if (strcmp(s->files[k].file, file) == 0) {
            f = &s->files[k];
            break;
        }
    if (loc == NULL || f == NULL) {
        snprintf(err, errlen, "no template %s/%s", locale, file);
        return -1;
    }
    d = &loc->docs[k];
    for (size_t i = 0; i < d->nsegs; i++) {
        const struct tmpl_seg *g = &d->segs[i];
        const char *v = "";
        int rc;

        if (!g->var) {
            rc = buf_append(out, d->text + g->off, g->len);
        } else {
            for (size_t j = 0; j < nvars; j++)
                if (strlen(vars[j].name) == g->len &&
                    memcmp(vars[j].name, d->text + g->off, g->len) == 0) {
                    v = vars[j].value ? vars[j].value : "";
                    break;
                }
            rc = f->one_line ? tmpl_put_line(out, v, f->html)
                 : f->html   ? tmpl_html_escape(out, v)
                             : buf_puts(out, v);
        }
        if (rc != 0) {
            snprintf(err, errlen, "template %s/%s: rendered text too long",
                     locale, file);
            return -1;
        }
    }
    return 0;
}
