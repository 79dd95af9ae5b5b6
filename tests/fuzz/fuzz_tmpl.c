/*
 * fuzz_tmpl.c - libFuzzer target for message templates (mfa/tmpl.h) and
 * the quoted-printable encoding their output goes through (mail.h).
 *
 * tmpl.h renders only from files loaded by tmpl_load(), so the template
 * is written to a scratch tree made at start-up ($TMPDIR or /tmp, removed
 * at exit): <dir>/en/t.txt, hard-linked as <dir>/nl-BE/t.txt so one write
 * serves both locales.
 *
 * Input: byte 0 picks the declaration (bit 0 html, bit 1 one_line, bits
 * 2-3 the required/allowed placeholder lists, bit 4 raw mode) and the
 * output cap (bits 5-7: 0 = TMPL_OUT_MAX, k = 16 << k). In raw mode the
 * rest is the file as is (NULs, BOM, bad UTF-8 reach the loader) and the
 * values are fixed; otherwise the rest is split at NULs into the template,
 * the values of code, minutes, display_name, portal_name and the wanted
 * locale (a missing part is NULL).
 *
 * A loaded template is rendered and compared byte for byte with a small
 * reference renderer written from tmpl.h's promises (html escaping, one
 * line parts free of control characters, the cap); the result is then
 * quoted-printable encoded, checked line by line and decoded back.
 */
#include "fuzz.h"
#include "mfa/mail.h"
#include "mfa/tmpl.h"
#include "util/buf.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

static char tdir[256], tfile[300], tlink[300], tloc1[280], tloc2[280];

static const char *const req_code_minutes[] = {"code", "minutes", NULL};
static const char *const req_code[] = {"code", NULL};
static const char *const names_pp[] = {"display_name", "portal_name", NULL};
static const char *const names_ppm[] = {"display_name", "portal_name",
                                        "minutes", NULL};

/* bits 2-3 of the flags: (required, allowed) as mail.c declares them,
 * and the bare cases. */
static const char *const *const decl_required[] = {req_code_minutes, NULL, NULL,
                                                   req_code};
static const char *const *const decl_allowed[] = {names_pp, names_ppm, NULL,
                                                  NULL};

static const char *const var_names[] = {"code", "minutes", "display_name",
                                        "portal_name"};
#define NVARS 4

static void
fuzz_cleanup(void)
{
    unlink(tlink);
    unlink(tfile);
    rmdir(tloc2);
    rmdir(tloc1);
    rmdir(tdir);
}

/* ---- a reference renderer --------------------------------------------- */

static void
ref_put(struct buf *out, const char *s, size_t n)
{
    FUZZ_CHECK(buf_append(out, s, n) == 0);
}

static void
ref_value(struct buf *out, const char *v, int html, int one_line)
{
    for (; *v != '\0'; v++) {
        unsigned char c = (unsigned char)*v;

        if (one_line && (c < 0x20 || c == 0x7f))
            ref_put(out, " ", 1);
        else if (html && c == '&')
            ref_put(out, "&amp;", 5);
        else if (html && c == '<')
            ref_put(out, "&lt;", 4);
        else if (html && c == '>')
            ref_put(out, "&gt;", 4);
        else if (html && c == '"')
            ref_put(out, "&quot;", 6);
        else if (html && c == '\'')
            ref_put(out, "&#39;", 5);
        else
            ref_put(out, v, 1);
    }
}

/* text is a template tmpl_load() accepted, as the file held it. */
static void
ref_render(const char *text, int html, int one_line,
           const struct tmpl_var *vars, struct buf *out)
{
    char *t = strdup(strncmp(text, "\xEF\xBB\xBF", 3) == 0 ? text + 3 : text);
    const char *p;
    size_t n;

    FUZZ_CHECK(t != NULL);
    n = strlen(t);
    while (one_line && n > 0 && (t[n - 1] == '\n' || t[n - 1] == '\r'))
        t[--n] = '\0';
    for (p = t; *p != '\0';) {
        const char *open = strstr(p, "{{"), *close, *a, *b, *v = "";

        if (open == NULL) {
            ref_put(out, p, strlen(p));
            break;
        }
        ref_put(out, p, (size_t)(open - p));
        close = strstr(open + 2, "}}");
        FUZZ_CHECK(close != NULL);
        for (a = open + 2; a < close && *a == ' '; a++)
            ;
        for (b = close; b > a && b[-1] == ' '; b--)
            ;
        for (size_t i = 0; i < NVARS; i++)
            if (strlen(vars[i].name) == (size_t)(b - a) &&
                memcmp(vars[i].name, a, (size_t)(b - a)) == 0)
                v = vars[i].value ? vars[i].value : "";
        ref_value(out, v, html, one_line);
        p = close + 2;
    }
    free(t);
}

/* ---- quoted-printable ---------------------------------------------------- */

static int
hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/*
 * mail_qp_encode(text): CRLF lines of at most 76 octets, printable ASCII,
 * no trailing blank, no line starting with "." or "From " (relays and
 * mbox), and it decodes back to text with every line ended by "\n".
 */
static void
check_qp(const char *text)
{
    struct buf qp, dec, want;
    const char *p, *line;

    buf_init(&qp, 16 * TMPL_OUT_MAX);
    buf_init(&dec, 4 * TMPL_OUT_MAX);
    buf_init(&want, 4 * TMPL_OUT_MAX);
    FUZZ_CHECK(mail_qp_encode(&qp, text) == 0);

    for (p = text; *p != '\0';) {
        size_t end = strcspn(p, "\n"), len = end;

        if (len > 0 && p[len - 1] == '\r')
            len--;
        ref_put(&want, p, len);
        ref_put(&want, "\n", 1);
        p += end;
        if (*p == '\n')
            p++;
    }

    for (line = qp.data ? qp.data : ""; *line != '\0';) {
        const char *crlf = strstr(line, "\r\n");
        size_t len;
        int soft;

        FUZZ_CHECK(crlf != NULL); /* every line ends with CRLF */
        len = (size_t)(crlf - line);
        FUZZ_CHECK(len <= 76);
        FUZZ_CHECK(line[0] != '.');
        FUZZ_CHECK(strncmp(line, "From ", 5) != 0);
        FUZZ_CHECK(len == 0 || (line[len - 1] != ' ' && line[len - 1] != '\t'));
        soft = len > 0 && line[len - 1] == '=';
        for (size_t i = 0; i < len - (size_t)soft; i++) {
            char c = line[i];

            FUZZ_CHECK((c >= 33 && c <= 126) || c == ' ' || c == '\t');
            if (c == '=') {
                int hi, lo;

                FUZZ_CHECK(i + 2 < len - (size_t)soft);
                hi = hexval(line[i + 1]);
                lo = hexval(line[i + 2]);
                FUZZ_CHECK(hi >= 0 && lo >= 0);
                c = (char)(hi * 16 + lo);
                i += 2;
            }
            ref_put(&dec, &c, 1);
        }
        if (!soft)
            ref_put(&dec, "\n", 1);
        line = crlf + 2;
    }
    FUZZ_CHECK(dec.len == want.len);
    FUZZ_CHECK(dec.len == 0 || memcmp(dec.data, want.data, dec.len) == 0);
    buf_free(&qp);
    buf_free(&dec);
    buf_free(&want);
}

/* ---- the target ------------------------------------------------------------
 */

static size_t
count_byte(const char *s, size_t n, char c)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++)
        k += s[i] == c;
    return k;
}

static void
write_template(const uint8_t *p, size_t n)
{
    int fd = open(tfile, O_WRONLY | O_TRUNC | O_CLOEXEC);

    if (fd < 0 || (n > 0 && write(fd, p, n) != (ssize_t)n) || close(fd) != 0)
        abort();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *tmp = getenv("TMPDIR");
    int fd;

    (void)argc;
    (void)argv;
    if (sodium_init() < 0)
        abort();
    snprintf(tdir, sizeof(tdir), "%s/mfa-fuzz-tmpl.XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(tdir) == NULL)
        abort();
    snprintf(tloc1, sizeof(tloc1), "%s/en", tdir);
    snprintf(tloc2, sizeof(tloc2), "%s/nl-BE", tdir);
    snprintf(tfile, sizeof(tfile), "%s/t.txt", tloc1);
    snprintf(tlink, sizeof(tlink), "%s/t.txt", tloc2);
    if (mkdir(tloc1, 0700) != 0 || mkdir(tloc2, 0700) != 0)
        abort();
    fd = open(tfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || close(fd) != 0 || link(tfile, tlink) != 0)
        abort();
    atexit(fuzz_cleanup);
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tmpl_var vars[NVARS];
    struct tmpl_file file = {"t.txt", 0, 0, NULL, NULL};
    const char *parts[6] = {NULL}, *loc, *text;
    char *copy = NULL, *fixed = NULL, err[512] = "";
    struct tmpl_set *s = NULL;
    struct buf out, ref;
    size_t cap, text_len;
    int flags, rc, values_utf8 = 1;

    if (size < 1)
        return 0;
    flags = data[0];
    file.html = flags & 1;
    file.one_line = (flags >> 1) & 1;
    file.required = decl_required[(flags >> 2) & 3];
    file.allowed = decl_allowed[(flags >> 2) & 3];
    cap = (flags >> 5) ? (size_t)16 << (flags >> 5) : TMPL_OUT_MAX;

    if (flags & 0x10) {
        /* Raw: the loader's own checks meet the bytes. */
        static const char *const fixed_values[] = {
            "123456", "5", "Jane <b>&</b> \"O'Hara\"\r\nBcc: x", "Portal"};

        write_template(data + 1, size - 1);
        fixed = fuzz_cstr(data + 1, size - 1);
        text = fixed;
        text_len = size - 1;
        for (size_t i = 0; i < NVARS; i++)
            parts[1 + i] = fixed_values[i];
        parts[5] = "nl_be";
    } else {
        size_t k = 0, start = 1;

        copy = fuzz_cstr(data, size);
        for (size_t i = 1; i <= size && k < 6; i++) {
            if (i == size || copy[i] == '\0') {
                parts[k++] = copy + start;
                start = i + 1;
            }
        }
        text = parts[0];
        text_len = strlen(text);
        write_template((const uint8_t *)text, text_len);
    }
    for (size_t i = 0; i < NVARS; i++) {
        vars[i].name = var_names[i];
        vars[i].value = parts[1 + i];
        if (parts[1 + i] != NULL &&
            !fuzz_utf8_ok((const unsigned char *)parts[1 + i],
                          strlen(parts[1 + i])))
            values_utf8 = 0;
    }

    s = tmpl_load(tdir, "en", &file, 1, err, sizeof(err));
    if (s == NULL) {
        FUZZ_CHECK(err[0] != '\0');
        FUZZ_CHECK(strlen(err) < sizeof(err));
        goto out;
    }
    /* What loaded is UTF-8 text without NULs. */
    FUZZ_CHECK(strlen(text) == text_len);
    FUZZ_CHECK(fuzz_utf8_ok((const unsigned char *)text, text_len));
    FUZZ_CHECK(tmpl_locale_count(s) == 2);
    FUZZ_CHECK(strcmp(tmpl_locale_name(s, 0), "en") == 0);
    FUZZ_CHECK(strcmp(tmpl_locale_name(s, 1), "nl-BE") == 0);
    FUZZ_CHECK(tmpl_locale_name(s, 2) == NULL);
    loc = tmpl_locale(s, parts[5]);
    FUZZ_CHECK(loc != NULL);
    FUZZ_CHECK(strcmp(loc, "en") == 0 || strcmp(loc, "nl-BE") == 0);

    buf_init(&out, cap);
    buf_init(&ref, 8 * TMPL_OUT_MAX);
    rc = tmpl_render(s, loc, "t.txt", vars, NVARS, &out, err, sizeof(err));
    ref_render(text, file.html, file.one_line, vars, &ref);
    FUZZ_CHECK((rc == 0) == (ref.len <= cap));
    if (rc == 0) {
        const char *o = out.data ? out.data : "";

        FUZZ_CHECK(out.len == ref.len);
        FUZZ_CHECK(out.len == 0 || memcmp(out.data, ref.data, out.len) == 0);
        /* Spelled out, the promises the comparison covers: */
        if (file.html) /* values cannot open a tag */
            FUZZ_CHECK(count_byte(o, out.len, '<') ==
                       count_byte(text, text_len, '<'));
        if (file.one_line) /* values cannot start a header line */
            for (size_t i = 0; i < out.len; i++)
                FUZZ_CHECK((unsigned char)o[i] >= 0x20 && o[i] != 0x7f);
        if (values_utf8)
            FUZZ_CHECK(fuzz_utf8_ok((const unsigned char *)o, out.len));
        check_qp(o);
    } else {
        FUZZ_CHECK(err[0] != '\0');
    }
    /* Unknown file or locale: an error, never a crash. */
    FUZZ_CHECK(tmpl_render(s, loc, "nope.txt", vars, NVARS, &out, err,
                           sizeof(err)) == -1);
    FUZZ_CHECK(tmpl_render(s, "xx", "t.txt", vars, NVARS, &out, err,
                           sizeof(err)) == -1);
    buf_free(&out);
    buf_free(&ref);
out:
    tmpl_free(s);
    free(copy);
    free(fixed);
    return 0;
}
