/*
 * mail.c - compose an RFC 5322 / MIME message for SMTP submission.
 *
 * Callers: mfa-email (code and notice messages); tests/unit/test_mail.c.
 * libcurl sends what we write byte for byte (it only dot-stuffs), so the
 * message must be complete and correct here: CRLF everywhere, header
 * lines folded, body lines at most 76 octets (quoted-printable), UTF-8
 * declared and encoded.
 *
 * Security notes: display names, addresses and subjects may come from the
 * CRM or a database row someone else wrote. Nothing from them reaches a
 * header unquoted: control characters (CR, LF, ...) in names and subjects
 * become spaces and the text is then quoted or RFC 2047-encoded;
 * addresses must be a plain ASCII addr-spec or the message is refused.
 * Bodies are quoted-printable, so no body line can look like a boundary
 * or a lone "." to a careless relay. The output holds the code: callers
 * keep it in a struct buf (wiped on free).
 */
#include "mfa/mail.h"
#include "mfa/addr.h"
#include "mfa/tmpl.h"
#include "util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/* RFC 5322 2.1.1: SHOULD stay within 78 octets per header line. */
#define MAIL_FOLD 78
/* RFC 2047 2: an encoded word is at most 75 octets; "=?UTF-8?B?" and "?="
 * leave 63 for base64, i.e. 15 groups of 3 bytes. */
#define MAIL_EW_RAW 45
/* RFC 2045 6.7 (5): encoded lines at most 76 octets. */
#define MAIL_QP_LINE 76

/* RFC 5322 atext, and a space: a display name of these goes out as is. */
#define ATEXT_SP                                                               \
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"           \
    "!#$%&'*+-/=?^_`{|}~ "

static const char *const code_required[] = {"code", "minutes", NULL};
static const char *const code_allowed[] = {"display_name", "portal_name", NULL};
/* A subject is shown in notifications and lists: never the code there. */
static const char *const subject_allowed[] = {"display_name", "portal_name",
                                              "minutes", NULL};
static const char *const notice_allowed[] = {"display_name", "portal_name",
                                             NULL};

const struct tmpl_file mail_template_files[] = {
    {"code.subject.txt", 0, 1, NULL, subject_allowed},
    {"code.txt", 0, 0, code_required, code_allowed},
    {"code.html", 1, 0, code_required, code_allowed},
    {"contact_changed.subject.txt", 0, 1, NULL, notice_allowed},
    {"contact_changed.txt", 0, 0, NULL, notice_allowed},
    {"contact_changed.html", 1, 0, NULL, notice_allowed},
};
const size_t mail_template_nfiles =
    sizeof(mail_template_files) / sizeof(mail_template_files[0]);

/* A header being written, with its current column for folding. */
struct hdr {
    struct buf *out;
    size_t col;
    int tokens; /* written on this header so far */
    int err;
};

static void
hdr_put(struct hdr *h, const char *s, size_t n)
{
    if (!h->err && buf_append(h->out, s, n) != 0)
        h->err = 1;
    h->col += n;
}

static void
hdr_start(struct hdr *h, const char *name)
{
    h->col = 0;
    h->tokens = 0;
    hdr_put(h, name, strlen(name));
    hdr_put(h, ":", 1);
}

/* One token, preceded by a space that may become a fold (never before
 * the first token: some readers keep that space in the value). */
static void
hdr_token(struct hdr *h, const char *s, size_t n)
{
    if (h->tokens++ > 0 && h->col + 1 + n > MAIL_FOLD) {
        hdr_put(h, "\r\n", 2);
        h->col = 0;
    }
    hdr_put(h, " ", 1);
    hdr_put(h, s, n);
}

static void
hdr_end(struct hdr *h)
{
    hdr_put(h, "\r\n", 2);
}

/* Length of the UTF-8 sequence starting with byte c (1 for junk). */
static size_t
mail_u8len(unsigned char c)
{
    if (c >= 0xF0)
        return 4;
    if (c >= 0xE0)
        return 3;
    if (c >= 0xC0)
        return 2;
    return 1;
}

/* RFC 2047 "B" words for s, split on character boundaries. Adjacent
 * encoded words are joined without a space when decoded. */
static void
hdr_encoded(struct hdr *h, const char *s)
{
    size_t n = strlen(s), pos = 0;

    while (pos < n) {
        char word[80], b64[sodium_base64_ENCODED_LEN(
                           MAIL_EW_RAW, sodium_base64_VARIANT_ORIGINAL)];
        /* Room on this line for " =?UTF-8?B?...?=": a word that fits,
         * or after a fold a full one; never less than one character. */
        long room = (long)MAIL_FOLD - (long)h->col - 1 - 12;
        size_t take = 0, max;

        if (h->tokens > 0 && room < 16)
            room = MAIL_FOLD - 1 - 12;
        max = room / 4 * 3 > MAIL_EW_RAW ? MAIL_EW_RAW
              : room / 4 * 3 < 4         ? 4
                                         : (size_t)(room / 4 * 3);
        while (pos + take < n) {
            size_t l = mail_u8len((unsigned char)s[pos + take]);

            if (take + l > max)
                break;
            take += l;
        }
        if (take == 0) /* cannot happen: l <= 4 < 45 */
            take = 1;
        if (pos + take > n)
            take = n - pos;
        sodium_bin2base64(b64, sizeof(b64), (const unsigned char *)s + pos,
                          take, sodium_base64_VARIANT_ORIGINAL);
        snprintf(word, sizeof(word), "=?UTF-8?B?%s?=", b64);
        hdr_token(h, word, strlen(word));
        pos += take;
    }
}

/* Copy with control characters as spaces and outer spaces trimmed. */
static char *
mail_clean(const char *s)
{
    char *c = xstrdup(s ? s : "");
    size_t n, a = 0;

    for (char *p = c; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    n = strlen(c);
    while (n > 0 && c[n - 1] == ' ')
        c[--n] = '\0';
    while (c[a] == ' ')
        a++;
    memmove(c, c + a, n - a + 1);
    return c;
}

static int
mail_is_ascii_printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return 0;
    return 1;
}

/* Space-separated tokens of plain ASCII text, for folding. */
static void
hdr_words(struct hdr *h, const char *s)
{
    while (*s) {
        size_t n;

        while (*s == ' ')
            s++;
        n = strcspn(s, " ");
        if (n > 0)
            hdr_token(h, s, n);
        s += n;
    }
}

/* A display name as a phrase: atoms, a quoted string, or encoded words. */
static void
hdr_phrase(struct hdr *h, const char *name)
{
    if (strspn(name, ATEXT_SP) == strlen(name) && strstr(name, "=?") == NULL) {
        hdr_words(h, name);
    } else if (mail_is_ascii_printable(name) && strlen(name) <= 60 &&
               strstr(name, "=?") == NULL) {
        struct buf q;

        buf_init(&q, 2 * 60 + 3);
        if (buf_puts(&q, "\"") != 0)
            h->err = 1;
        for (const char *p = name; *p; p++)
            if ((*p == '"' || *p == '\\') ? buf_printf(&q, "\\%c", *p) != 0
                                          : buf_append(&q, p, 1) != 0)
                h->err = 1;
        if (buf_puts(&q, "\"") != 0)
            h->err = 1;
        if (!h->err)
            hdr_token(h, q.data, q.len);
        buf_free(&q);
    } else {
        hdr_encoded(h, name);
    }
}

/* "From:"/"To:" with an optional display name. */
static void
hdr_mailbox(struct hdr *h, const char *field, const char *name,
            const char *addr)
{
    char *clean = mail_clean(name);

    hdr_start(h, field);
    if (*clean) {
        char angle[ADDR_EMAIL_MAX + 3];

        hdr_phrase(h, clean);
        snprintf(angle, sizeof(angle), "<%s>", addr);
        hdr_token(h, angle, strlen(angle));
    } else {
        hdr_token(h, addr, strlen(addr));
    }
    hdr_end(h);
    free(clean);
}

int
mail_address_check(const char *addr)
{
    size_t n = addr ? strlen(addr) : 0;

    if (n == 0 || n > ADDR_EMAIL_MAX)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)addr[i];

        if (c <= 0x20 || c >= 0x7f || strchr("()<>[]:;,\\\"", c) != NULL)
            return -1;
    }
    return addr_email_check(addr, NULL, 0) == 0 ? 0 : -1;
}

int
mail_split_address(const char *value, char *name, size_t namelen, char *addr,
                   size_t addrlen)
{
    const char *lt = strchr(value, '<');
    char *nm = NULL, *ad = NULL;
    int rc = -1;

    if (lt != NULL) {
        const char *gt = strchr(lt, '>');
        size_t k = 0;

        if (gt == NULL || strchr(gt + 1, '<') != NULL ||
            gt[1 + strspn(gt + 1, " ")] != '\0')
            goto out;
        char *raw = xstrndup(value, (size_t)(lt - value));

        ad = xstrndup(lt + 1, (size_t)(gt - lt - 1));
        nm = mail_clean(raw);
        free(raw);
        /* "\"Name, Inc.\"" -> Name, Inc. */
        if (nm[0] == '"' && strlen(nm) >= 2 && nm[strlen(nm) - 1] == '"') {
            for (size_t i = 1; nm[i + 1] != '\0'; i++) {
                if (nm[i] == '\\' && nm[i + 2] != '\0')
                    i++;
                nm[k++] = nm[i];
            }
            nm[k] = '\0';
        }
    } else {
        ad = mail_clean(value);
        nm = xstrdup("");
    }
    if (mail_address_check(ad) != 0)
        goto out;
    if ((name && strlen(nm) >= namelen) || (addr && strlen(ad) >= addrlen))
        goto out;
    if (name)
        memcpy(name, nm, strlen(nm) + 1);
    if (addr)
        memcpy(addr, ad, strlen(ad) + 1);
    rc = 0;
out:
    free(nm);
    free(ad);
    return rc;
}

/* 1 when s[i] must be encoded at the start of an encoded line: a "." or
 * "From " there would not survive careless relays and mbox. */
static int
qp_guard(const unsigned char *s, size_t i, size_t len)
{
    return s[i] == '.' ||
           (s[i] == 'F' && len - i >= 5 && memcmp(s + i, "From ", 5) == 0);
}

/* One input line (without its line end) to one or more encoded lines,
 * each built in line[] and appended whole. */
static int
qp_line(struct buf *out, const unsigned char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    /* At most 75 octets and "=\r\n", or 76 and "\r\n". */
    char line[MAIL_QP_LINE + 3];
    size_t col = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c;
        int last, lit;
        size_t w;

        /* The common case, in short: an octet that stays as it is, inside
         * an encoded line (not its first, nor the input line's last, and
         * room left); the rules below give the same for it. */
        while (col > 0 && col < MAIL_QP_LINE - 1 && i + 1 < len &&
               ((s[i] >= 33 && s[i] <= 126 && s[i] != '=') || s[i] == ' ' ||
                s[i] == '\t'))
            line[col++] = (char)s[i++];
        c = s[i];
        last = i + 1 == len;
        lit = (c >= 33 && c <= 126 && c != '=') ||
              ((c == ' ' || c == '\t') && !last);
        if (col == 0 && qp_guard(s, i, len))
            lit = 0;
        w = lit ? 1 : 3;
        /* Room for w octets, and for the "=" of a soft break unless this
         * is the line's last octet. */
        if (col + w > (last ? MAIL_QP_LINE : MAIL_QP_LINE - 1)) {
            memcpy(line + col, "=\r\n", 3);
            if (buf_append(out, line, col + 3) != 0)
                return -1;
            col = 0;
            /* The new line starts here: the same rule as above (a soft
             * break before "From " was found by tests/fuzz). */
            if (qp_guard(s, i, len))
                lit = 0, w = 3;
        }
        if (lit) {
            line[col] = (char)c;
        } else {
            line[col] = '=';
            line[col + 1] = hex[c >> 4];
            line[col + 2] = hex[c & 0xF];
        }
        col += w;
    }
    memcpy(line + col, "\r\n", 2);
    return buf_append(out, line, col + 2);
}

int
mail_qp_encode(struct buf *out, const char *text)
{
    const unsigned char *p = (const unsigned char *)text;

    while (*p) {
        size_t end = strcspn((const char *)p, "\n"), len = end;

        if (len > 0 && p[len - 1] == '\r')
            len--;
        if (qp_line(out, p, len) != 0)
            return -1;
        p += end;
        if (*p == '\n')
            p++;
    }
    return 0;
}

static void
mail_date(time_t now, char *out, size_t n)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed",
                                       "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr",
                                         "May", "Jun", "Jul", "Aug",
                                         "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;

    /* By hand: strftime's %a/%b follow the locale, RFC 5322 does not. */
    gmtime_r(&now, &tm);
    snprintf(out, n, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday],
             tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
             tm.tm_min, tm.tm_sec);
}

static void
mail_random_hex(char *out, size_t nbytes)
{
    unsigned char r[32];

    randombytes_buf(r, nbytes);
    sodium_bin2hex(out, nbytes * 2 + 1, r, nbytes);
}

static int
mail_part(struct buf *out, const char *boundary, const char *type,
          const char *body)
{
    if (boundary && buf_printf(out, "--%s\r\n", boundary) != 0)
        return -1;
    if (buf_printf(out,
                   "Content-Type: %s; charset=UTF-8\r\n"
                   "Content-Transfer-Encoding: quoted-printable\r\n\r\n",
                   type) != 0)
        return -1;
    return mail_qp_encode(out, body);
}

int
mail_build(const struct mail_msg *m, time_t now, struct buf *out, char *msgid,
           size_t msgidlen, char *err, size_t errlen)
{
    char from_name[256], from_addr[ADDR_EMAIL_MAX + 1], date[64];
    char id[MAIL_MSGID_MAX], boundary[80], rnd[65];
    struct hdr h = {out, 0, 0, 0};
    char *subject = NULL;

    if (mail_split_address(m->from, from_name, sizeof(from_name), from_addr,
                           sizeof(from_addr)) != 0) {
        snprintf(err, errlen, "sender address refused (smtp.from)");
        goto fail;
    }
    if (mail_address_check(m->to) != 0) {
        snprintf(err, errlen, "recipient address refused");
        goto fail;
    }
    if (addr_utf8_check(m->subject, strlen(m->subject)) != 0 ||
        addr_utf8_check(m->text, strlen(m->text)) != 0 ||
        (m->html && addr_utf8_check(m->html, strlen(m->html)) != 0) ||
        (m->to_name && addr_utf8_check(m->to_name, strlen(m->to_name)) != 0)) {
        snprintf(err, errlen, "message text is not UTF-8");
        goto fail;
    }
    mail_random_hex(rnd, 16);
    snprintf(id, sizeof(id), "<%llx.%s@%s>", (unsigned long long)now, rnd,
             strrchr(from_addr, '@') + 1);
    mail_random_hex(rnd, 12);
    snprintf(boundary, sizeof(boundary), "=_mfa_%s", rnd);
    mail_date(now, date, sizeof(date));

    hdr_start(&h, "Date");
    hdr_token(&h, date, strlen(date));
    hdr_end(&h);
    hdr_mailbox(&h, "From", from_name, from_addr);
    hdr_mailbox(&h, "To", m->to_name, m->to);
    subject = mail_clean(m->subject);
    hdr_start(&h, "Subject");
    if (mail_is_ascii_printable(subject) && strstr(subject, "=?") == NULL &&
        strlen(subject) < 900)
        hdr_words(&h, subject);
    else
        hdr_encoded(&h, subject);
    hdr_end(&h);
    hdr_start(&h, "Message-ID");
    hdr_token(&h, id, strlen(id));
    hdr_end(&h);
    hdr_start(&h, "MIME-Version");
    hdr_token(&h, "1.0", 3);
    hdr_end(&h);
    /* RFC 3834: no vacation replies to a machine. */
    hdr_start(&h, "Auto-Submitted");
    hdr_token(&h, "auto-generated", 14);
    hdr_end(&h);
    if (m->language && *m->language && strlen(m->language) <= 35 &&
        strspn(m->language, "abcdefghijklmnopqrstuvwxyz"
                            "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") ==
            strlen(m->language)) {
        hdr_start(&h, "Content-Language");
        hdr_token(&h, m->language, strlen(m->language));
        hdr_end(&h);
    }
    if (h.err)
        goto full;
    if (m->html) {
        if (buf_printf(out,
                       "Content-Type: multipart/alternative;\r\n"
                       " boundary=\"%s\"\r\n\r\n",
                       boundary) != 0 ||
            mail_part(out, boundary, "text/plain", m->text) != 0 ||
            mail_part(out, boundary, "text/html", m->html) != 0 ||
            buf_printf(out, "--%s--\r\n", boundary) != 0)
            goto full;
    } else if (mail_part(out, NULL, "text/plain", m->text) != 0) {
        goto full;
    }
    if (msgid)
        snprintf(msgid, msgidlen, "%s", id);
    free(subject);
    return 0;
full:
    snprintf(err, errlen, "message larger than %zu bytes", out->max);
fail:
    free(subject);
    return -1;
}
