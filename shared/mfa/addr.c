/*
 * addr.c - email syntax and masking, UUIDs, strict UTF-8, control bytes.
 *
 * Callers: envelope.c and envelope_build.c (UUIDs, UTF-8, control
 * characters in event fields), mfa-contact-sync (decides whether a CRM
 * email is usable), mfa-codes (masked hints in replies), every log line
 * that mentions an address.
 *
 * Security notes: all input here is untrusted. Nothing allocates, nothing
 * reads past the terminating NUL or the given length, and a reason string
 * never echoes the input back (it may end up in a log or a dead-letter
 * header). The UTF-8 check is strict because lax decoders let overlong
 * forms smuggle '/', '@' or NUL past byte-level checks.
 */
#include "mfa/addr.h"
#include "util/log.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

/* snprintf into reason, tolerating reason == NULL (caller wants 0/-1). */
static int
addr_fail(char *reason, size_t n, const char *why)
{
    if (reason != NULL && n > 0)
        snprintf(reason, n, "%s", why);
    return -1;
}

/*
 * Length of the UTF-8 sequence at s (which has len bytes left), or 0 when
 * it is not strict UTF-8. Ranges follow RFC 3629's table, which excludes
 * overlongs and surrogates by construction.
 */
static size_t
addr_utf8_seq(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xbf;
    size_t need, i;

    if (c < 0x80)
        return 1;
    if (c < 0xc2) /* continuation byte, or overlong C0/C1 lead */
        return 0;
    if (c < 0xe0) {
        need = 2;
    } else if (c < 0xf0) {
        need = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong below U+0800 */
        else if (c == 0xed)
            hi = 0x9f; /* U+D800..U+DFFF surrogates */
    } else if (c < 0xf5) {
        need = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong below U+10000 */
        else if (c == 0xf4)
            hi = 0x8f; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (len < need)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (i = 2; i < need; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return need;
}

int
addr_utf8_check(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, k;

    while (i < len) {
        k = addr_utf8_seq(p + i, len - i);
        if (k == 0)
            return -1;
        i += k;
    }
    return 0;
}

int
addr_has_control(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    for (; *p != '\0'; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 1;
    return 0;
}

static int
addr_is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9');
}

/* RFC 5322 atext, plus any non-ASCII byte (RFC 6531 SMTPUTF8). */
static int
addr_is_atext(unsigned char c)
{
    return addr_is_alnum(c) || c >= 0x80 ||
           strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/*
 * Dot-separated parts: no leading, trailing or doubled dot. Shared by the
 * local part (dot-atom) and the domain, with different words for each.
 */
static int
addr_check_dots(const char *s, size_t len, const char *what, char *reason,
                size_t n)
{
    char why[64];

    if (s[0] == '.' || s[len - 1] == '.') {
        snprintf(why, sizeof(why), "%s starts or ends with a dot", what);
        return addr_fail(reason, n, why);
    }
    if (memmem(s, len, "..", 2) != NULL) {
        snprintf(why, sizeof(why), "%s has two dots in a row", what);
        return addr_fail(reason, n, why);
    }
    return 0;
}

static int
addr_check_local(const char *s, size_t len, char *reason, size_t n)
{
    size_t i;

    if (len == 0)
        return addr_fail(reason, n, "empty local part");
    if (len > ADDR_LOCAL_MAX)
        return addr_fail(reason, n, "local part too long");
    if (addr_check_dots(s, len, "local part", reason, n) != 0)
        return -1;
    for (i = 0; i < len; i++)
        if (s[i] != '.' && !addr_is_atext((unsigned char)s[i]))
            return addr_fail(reason, n, "local part has an invalid character");
    return 0;
}

/*
 * Host names (RFC 1035/1123 labels), with bytes >= 0x80 let through so an
 * IDN in UTF-8 is accepted as well as its xn-- form. A numeric top-level
 * label is refused: "user@10.0.0.1" is an IP address, not a mail domain.
 */
static int
addr_check_domain(const char *s, size_t len, char *reason, size_t n)
{
    size_t i, start = 0, last_start = 0;
    int all_digits = 1;

    if (len == 0)
        return addr_fail(reason, n, "empty domain");
    if (memchr(s, '.', len) == NULL)
        return addr_fail(reason, n, "domain has no dot");
    if (addr_check_dots(s, len, "domain", reason, n) != 0)
        return -1;
    for (i = 0; i <= len; i++) {
        unsigned char c = i < len ? (unsigned char)s[i] : '.';

        if (c == '.') {
            if (i - start > ADDR_LABEL_MAX)
                return addr_fail(reason, n, "domain label too long");
            if (s[start] == '-' || s[i - 1] == '-')
                return addr_fail(reason, n,
                                 "domain label starts or ends with a hyphen");
            last_start = start;
            start = i + 1;
        } else if (!addr_is_alnum(c) && c != '-' && c < 0x80) {
            return addr_fail(reason, n, "domain has an invalid character");
        }
    }
    for (i = last_start; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            all_digits = 0;
    if (all_digits)
        return addr_fail(reason, n, "top-level domain is numeric");
    return 0;
}

int
addr_email_check(const char *s, char *reason, size_t n)
{
    const char *at;
    size_t len, i;

    if (s == NULL || s[0] == '\0')
        return addr_fail(reason, n, "empty");
    /* Bound the scan itself: never walk far into an unterminated buffer
     * more than needed to know it is too long. */
    len = strnlen(s, ADDR_EMAIL_MAX + 1);
    if (len > ADDR_EMAIL_MAX)
        return addr_fail(reason, n, "too long");
    if (addr_utf8_check(s, len) != 0)
        return addr_fail(reason, n, "not valid UTF-8");
    for (i = 0; i < len; i++)
        if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
            return addr_fail(reason, n,
                             "contains spaces or control characters");
    at = strchr(s, '@');
    if (at == NULL)
        return addr_fail(reason, n, "no @");
    if (strchr(at + 1, '@') != NULL)
        return addr_fail(reason, n, "more than one @");
    if (addr_check_local(s, (size_t)(at - s), reason, n) != 0)
        return -1;
    if (addr_check_domain(at + 1, len - (size_t)(at - s) - 1, reason, n) != 0)
        return -1;
    if (reason != NULL && n > 0)
        reason[0] = '\0';
    return 0;
}

void
addr_email_mask(const char *email, char *out, size_t n)
{
    const char *at;
    size_t first;
    int w;

    if (out == NULL || n == 0)
        return;
    /* The fallback is also what a too-small out gets: better no hint than
     * a truncated one that might cut the mask off and leak the rest. */
    snprintf(out, n, "***");
    if (email == NULL)
        return;
    at = strchr(email, '@');
    if (at == NULL || at == email || at[1] == '\0' ||
        strchr(at + 1, '@') != NULL)
        return;
    /* Keep a whole UTF-8 character so the hint stays valid UTF-8. */
    first = addr_utf8_seq((const unsigned char *)email, (size_t)(at - email));
    if (first == 0 || addr_has_control(email))
        return;
    w = snprintf(NULL, 0, "%.*s***%s", (int)first, email, at);
    if (w < 0 || (size_t)w >= n)
        return;
    snprintf(out, n, "%.*s***%s", (int)first, email, at);
}

static unsigned char
addr_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

int
addr_email_equal_ci(const char *a, const char *b)
{
    const unsigned char *p = (const unsigned char *)a;
    const unsigned char *q = (const unsigned char *)b;

    if (p == NULL || q == NULL)
        return 0;
    /* ASCII only on purpose: locale-dependent folding (tolower, strcasecmp
     * under a UTF-8 locale) would make equality depend on the process. */
    for (; *p != '\0' && *q != '\0'; p++, q++)
        if (addr_lower(*p) != addr_lower(*q))
            return 0;
    return *p == *q;
}

static int
addr_is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
           (c >= 'A' && c <= 'F');
}

int
addr_uuid_check(const char *s)
{
    size_t i;

    if (s == NULL)
        return -1;
    for (i = 0; i < ADDR_UUID_LEN; i++) {
        unsigned char c = (unsigned char)s[i];

        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return -1;
        } else if (!addr_is_hex(c)) {
            return -1; /* also stops at an early NUL */
        }
    }
    return s[ADDR_UUID_LEN] == '\0' ? 0 : -1;
}

void
addr_uuid_lower(char *s)
{
    for (; *s != '\0'; s++)
        *s = (char)addr_lower((unsigned char)*s);
}

void
addr_uuid_new(char out[ADDR_UUID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char r[16];
    size_t i, o = 0;

    /* Idempotent; fails only if the system has no usable random source,
     * which every worker would already have hit in crypto_setup(). */
    if (sodium_init() < 0)
        fatal("libsodium failed to initialise");
    randombytes_buf(r, sizeof(r));
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40); /* version 4 */
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    for (i = 0; i < sizeof(r); i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[r[i] >> 4];
        out[o++] = hex[r[i] & 0x0f];
    }
    out[o] = '\0';
}
