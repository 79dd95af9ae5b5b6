/* test_mail.c - RFC 5322 / MIME message composition (mfa/mail): headers,
 * encoded words, quoted-printable, line limits, header injection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "mfa/mail.h"

static const char FROM[] = "Customer Portal <no-reply@portal.example>";

static char *
build(const struct mail_msg *m, char *msgid, size_t n)
{
    struct buf b;
    char err[256];

    buf_init(&b, 1 << 20);
    if (mail_build(m, 1795000000, &b, msgid, n, err, sizeof(err)) != 0)
        fail_msg("mail_build: %s", err);
    return buf_steal(&b);
}

/* The header block, unfolded: one header per line, "\n" separated. */
static char *
headers_unfolded(const char *msg)
{
    const char *end = strstr(msg, "\r\n\r\n");
    char *out = calloc(1, (size_t)(end - msg) + 2);
    size_t k = 0;

    for (const char *p = msg; p < end; p++) {
        if (p[0] == '\r' && p[1] == '\n' && (p[2] == ' ' || p[2] == '\t')) {
            p++; /* unfold: drop CRLF, keep the WSP */
            continue;
        }
        if (p[0] == '\r' && p[1] == '\n') {
            out[k++] = '\n';
            p++;
            continue;
        }
        out[k++] = *p;
    }
    out[k++] = '\n';
    return out;
}

/* Value of header name (unfolded), or NULL; count of such headers. */
static char *
header(const char *msg, const char *name, int *count)
{
    char *h = headers_unfolded(msg), *found = NULL;
    size_t n = strlen(name);
    int c = 0;

    for (char *line = h; *line;) {
        char *nl = strchr(line, '\n');

        *nl = '\0';
        if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
            c++;
            if (found == NULL)
                found = strdup(line + n + 2);
        }
        line = nl + 1;
    }
    free(h);
    if (count)
        *count = c;
    return found;
}

/* Decodes a header value made of RFC 2047 B words (and plain text). */
static char *
decode_words(const char *v)
{
    char *out = calloc(1, strlen(v) + 1);
    size_t k = 0;

    while (*v) {
        if (strncmp(v, "=?UTF-8?B?", 10) == 0) {
            const char *end = strstr(v + 10, "?=");
            size_t bin = 0;

            assert_non_null(end);
            assert_int_equal(
                sodium_base642bin((unsigned char *)out + k, strlen(v), v + 10,
                                  (size_t)(end - v - 10), NULL, &bin, NULL,
                                  sodium_base64_VARIANT_ORIGINAL),
                0);
            k += bin;
            v = end + 2;
            /* whitespace between adjacent encoded words is not text */
            if (*v == ' ' && strncmp(v + 1, "=?UTF-8?B?", 10) == 0)
                v++;
        } else {
            out[k++] = *v++;
        }
    }
    out[k] = '\0';
    return out;
}

static int
hexval(char c)
{
    return c >= 'A' ? c - 'A' + 10 : c - '0';
}

/* Quoted-printable decoding to LF line ends. */
static char *
qp_decode(const char *s, size_t len)
{
    char *out = calloc(1, len + 1);
    size_t k = 0;

    for (size_t i = 0; i < len; i++) {
        if (s[i] == '=' && s[i + 1] == '\r' && s[i + 2] == '\n') {
            i += 2;
        } else if (s[i] == '=') {
            out[k++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else if (s[i] == '\r' && s[i + 1] == '\n') {
            out[k++] = '\n';
            i++;
        } else {
            out[k++] = s[i];
        }
    }
    return out;
}

/* Every line ends CRLF, is 7-bit, within limits (76 in bodies). */
static void
check_lines(const char *msg)
{
    const char *sep = strstr(msg, "\r\n\r\n");
    const char *body = sep ? sep + 4 : msg;

    for (const char *p = msg; *p;) {
        const char *e = strstr(p, "\r\n");
        size_t len;

        assert_non_null(e); /* ends with CRLF */
        len = (size_t)(e - p);
        for (const char *q = p; q < e; q++) {
            assert_true((unsigned char)*q < 0x80);
            assert_true(*q != '\r' && *q != '\n' && *q != '\0');
        }
        assert_true(len <= (p >= body ? 76u : 78u));
        p = e + 2;
    }
}

/* The decoded body of the part with the given content type. */
static char *
part(const char *msg, const char *type)
{
    char want[128];
    const char *h, *start, *end;

    snprintf(want, sizeof(want),
             "Content-Type: %s; charset=UTF-8\r\n"
             "Content-Transfer-Encoding: "
             "quoted-printable\r\n\r\n",
             type);
    h = strstr(msg, want);
    if (h == NULL)
        return NULL;
    start = h + strlen(want);
    end = strstr(start, "\r\n--=_mfa_");
    if (end == NULL)
        end = start + strlen(start);
    else
        end += 2; /* the CRLF before the delimiter ends the last line */
    return qp_decode(start, (size_t)(end - start));
}

static void
test_headers_and_parts(void **state)
{
    struct mail_msg m = {FROM,
                         "jane@example.com",
                         "Jane Doe",
                         "Your code",
                         "Hello Jane,\n\n    123456\n",
                         "<p>Hello Jane</p>\n<b>123456</b>\n",
                         "nl"};
    char id[MAIL_MSGID_MAX], id2[MAIL_MSGID_MAX];
    char *msg = build(&m, id, sizeof(id)), *msg2, *v, *txt, *html;
    int n;

    (void)state;
    check_lines(msg);
    v = header(msg, "Date", &n);
    assert_int_equal(n, 1);
    assert_string_equal(v, "Wed, 18 Nov 2026 11:06:40 +0000");
    free(v);
    v = header(msg, "From", &n);
    assert_string_equal(v, "Customer Portal <no-reply@portal.example>");
    free(v);
    v = header(msg, "To", &n);
    assert_string_equal(v, "Jane Doe <jane@example.com>");
    free(v);
    v = header(msg, "Subject", &n);
    assert_string_equal(v, "Your code");
    free(v);
    v = header(msg, "Message-ID", &n);
    assert_int_equal(n, 1);
    assert_string_equal(v, id);
    assert_true(id[0] == '<' && strstr(id, "@portal.example>") != NULL);
    free(v);
    v = header(msg, "MIME-Version", &n);
    assert_string_equal(v, "1.0");
    free(v);
    v = header(msg, "Content-Language", &n);
    assert_string_equal(v, "nl");
    free(v);
    v = header(msg, "Content-Type", &n);
    assert_non_null(strstr(v, "multipart/alternative;"));
    assert_non_null(strstr(v, "boundary=\"=_mfa_"));
    free(v);
    txt = part(msg, "text/plain");
    html = part(msg, "text/html");
    assert_non_null(txt);
    assert_non_null(html);
    assert_string_equal(txt, "Hello Jane,\n\n    123456\n");
    assert_string_equal(html, "<p>Hello Jane</p>\n<b>123456</b>\n");
    assert_non_null(strstr(msg, "--\r\n")); /* closing delimiter */
    /* every message gets its own id */
    msg2 = build(&m, id2, sizeof(id2));
    assert_string_not_equal(id, id2);
    free(msg2);
    free(txt);
    free(html);
    free(msg);
}

static void
test_text_only_and_no_name(void **state)
{
    struct mail_msg m = {"no-reply@portal.example",
                         "jane@example.com",
                         NULL,
                         "Code",
                         "just text",
                         NULL,
                         NULL};
    char *msg = build(&m, NULL, 0), *v;

    (void)state;
    check_lines(msg);
    assert_null(strstr(msg, "multipart"));
    v = header(msg, "To", NULL);
    assert_string_equal(v, "jane@example.com");
    free(v);
    v = header(msg, "From", NULL);
    assert_string_equal(v, "no-reply@portal.example");
    free(v);
    v = part(msg, "text/plain");
    assert_string_equal(v, "just text\n");
    free(v);
    free(msg);
}

static void
test_encoded_words(void **state)
{
    const char *subj = "Uw verificatiecode voor Klantportaal – één keer "
                       "geldig, Bestätigungscode für Kundenportal ÄÖÜ ß";
    const char *name = "Zoë Ångström-Müller";
    struct mail_msg m = {"\"Portal, Inc.\" <no-reply@portal.example>",
                         "zoe@example.com",
                         name,
                         subj,
                         "x",
                         "<p>x</p>",
                         NULL};
    char *msg = build(&m, NULL, 0), *v, *d;

    (void)state;
    check_lines(msg);
    v = header(msg, "Subject", NULL);
    assert_non_null(strstr(v, "=?UTF-8?B?"));
    d = decode_words(v);
    assert_string_equal(d, subj);
    free(d);
    free(v);
    v = header(msg, "To", NULL);
    d = decode_words(v);
    assert_string_equal(d, "Zoë Ångström-Müller <zoe@example.com>");
    free(d);
    free(v);
    v = header(msg, "From", NULL);
    assert_string_equal(v, "\"Portal, Inc.\" <no-reply@portal.example>");
    free(v);
    free(msg);
}

/* A name, subject or address from outside can never add a header. */
static void
test_no_header_injection(void **state)
{
    struct mail_msg m = {FROM,
                         "jane@example.com",
                         "Eve\r\nBcc: attacker@evil.example\r\n",
                         "Code\r\nBcc: attacker@evil.example",
                         "x",
                         NULL,
                         "en\r\nX-Evil: 1"};
    struct buf b;
    char err[256];
    char *msg = build(&m, NULL, 0), *h;
    int n;

    (void)state;
    check_lines(msg);
    h = header(msg, "Bcc", &n);
    assert_int_equal(n, 0);
    assert_null(h);
    h = header(msg, "X-Evil", &n);
    assert_int_equal(n, 0);
    h = header(msg, "Content-Language", &n);
    assert_int_equal(n, 0);
    h = header(msg, "To", &n);
    assert_int_equal(n, 1);
    /* the name is kept as text, quoted, on the To line */
    assert_string_equal(h, "\"Eve  Bcc: attacker@evil.example\" "
                           "<jane@example.com>");
    free(h);
    free(msg);

    /* hostile addresses are refused outright */
    const char *bad[] = {"jane@example.com\r\nBcc: x@evil.example",
                         "jane@example.com>, <x@evil.example",
                         "jane doe@example.com",
                         "<jane@example.com>",
                         "jane@example.com,x@evil.example",
                         "",
                         "jäne@example.com",
                         "no-at-sign"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        m.to = bad[i];
        buf_init(&b, 1 << 16);
        assert_int_not_equal(mail_build(&m, 0, &b, NULL, 0, err, sizeof(err)),
                             0);
        assert_non_null(strstr(err, "recipient"));
        buf_free(&b);
    }
    m.to = "jane@example.com";
    m.from = "Portal <no-reply@portal.example>\r\nBcc: x@evil.example";
    buf_init(&b, 1 << 16);
    assert_int_not_equal(mail_build(&m, 0, &b, NULL, 0, err, sizeof(err)), 0);
    buf_free(&b);
}

static void
test_quoted_printable(void **state)
{
    char long_line[400], *dec;
    const char *cases[] = {
        "a=b and trailing space \nnext\t\n",
        ".leading dot\nFrom the start\n",
        "ünïcödé ✓ text\r\nwith CRLF\r\n",
        long_line,
        "bare\rCR",
    };
    struct buf b;

    (void)state;
    for (int i = 0; i < 399; i++)
        long_line[i] = i % 80 == 79 ? ' ' : (char)('a' + i % 26);
    long_line[399] = '\0';
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *want;

        buf_init(&b, 1 << 16);
        assert_int_equal(mail_qp_encode(&b, cases[i]), 0);
        check_lines(b.data);
        dec = qp_decode(b.data, b.len);
        /* decoded: same text, LF line ends, a final line end added */
        want = calloc(1, strlen(cases[i]) + 2);
        for (const char *p = cases[i]; *p; p++)
            if (!(p[0] == '\r' && p[1] == '\n'))
                strncat(want, p, 1);
        if (want[0] && want[strlen(want) - 1] != '\n')
            strcat(want, "\n");
        assert_string_equal(dec, want);
        free(want);
        free(dec);
        buf_free(&b);
    }
    buf_init(&b, 1 << 16);
    assert_int_equal(mail_qp_encode(&b, "a=b end \n.x\nFrom me\n"), 0);
    assert_string_equal(b.data, "a=3Db end=20\r\n=2Ex\r\n=46rom me\r\n");
    buf_free(&b);
    buf_init(&b, 1 << 16);
    assert_int_equal(mail_qp_encode(&b, "é"), 0);
    assert_string_equal(b.data, "=C3=A9\r\n");
    buf_free(&b);
}

static void
test_split_address(void **state)
{
    char name[128], addr[256];

    (void)state;
    assert_int_equal(
        mail_split_address(FROM, name, sizeof(name), addr, sizeof(addr)), 0);
    assert_string_equal(name, "Customer Portal");
    assert_string_equal(addr, "no-reply@portal.example");
    assert_int_equal(mail_split_address("\"A \\\"B\\\" C\" <a@b.example>", name,
                                        sizeof(name), addr, sizeof(addr)),
                     0);
    assert_string_equal(name, "A \"B\" C");
    assert_int_equal(mail_split_address("  a@b.example ", name, sizeof(name),
                                        addr, sizeof(addr)),
                     0);
    assert_string_equal(name, "");
    assert_string_equal(addr, "a@b.example");
    assert_int_not_equal(mail_split_address("A <a@b.example", name,
                                            sizeof(name), addr, sizeof(addr)),
                         0);
    assert_int_not_equal(mail_split_address("A <a@b.example> x", name,
                                            sizeof(name), addr, sizeof(addr)),
                         0);
    assert_int_not_equal(mail_split_address("A <a@b.example><c@d.example>",
                                            name, sizeof(name), addr,
                                            sizeof(addr)),
                         0);
    assert_int_not_equal(
        mail_split_address("nobody", name, sizeof(name), addr, sizeof(addr)),
        0);
}

static void
test_cap(void **state)
{
    struct mail_msg m = {FROM, "jane@example.com", "J", "S", "body", NULL,
                         NULL};
    struct buf b;
    char err[256];

    (void)state;
    buf_init(&b, 100);
    assert_int_not_equal(mail_build(&m, 0, &b, NULL, 0, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "larger"));
    buf_free(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers_and_parts),
        cmocka_unit_test(test_text_only_and_no_name),
        cmocka_unit_test(test_encoded_words),
        cmocka_unit_test(test_no_header_injection),
        cmocka_unit_test(test_quoted_printable),
        cmocka_unit_test(test_split_address),
        cmocka_unit_test(test_cap),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
