/*
 * scrub.c - masks email addresses and phone numbers inside free text
 * (see scrub.h).
 *
 * Callers: mfactl user show; any code showing a provider's message.
 * Security notes: the scan is deliberately generous about what belongs to
 * an address (every RFC 5322 atext character, UTF-8 bytes), so that no
 * part of a local part is left beside its mask; the output is printable
 * ASCII only and capped by the caller's buffer, and whatever does not fit
 * is dropped rather than copied raw.
 */
#include "mfa/scrub.h"
#include "mfa/addr.h"
#include "mfa/phone.h"

#include <stdio.h>
#include <string.h>

#define SCRUB_NUMBER_MAX 16 /* "+" and 15 digits (E.164) */

static int
scrub_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A character of a local part: RFC 5322 atext and '.', or UTF-8. */
static int
scrub_local_char(char c)
{
    unsigned char u = (unsigned char)c;

    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || scrub_digit(c) ||
           u >= 0x80 ||
           (c != '\0' && strchr(".!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* A character of a domain: letters, digits, '.', '-', or UTF-8 (IDN). */
static int
scrub_domain_char(char c)
{
    unsigned char u = (unsigned char)c;

    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || scrub_digit(c) ||
           u >= 0x80 || c == '.' || c == '-';
}

/* Appends what fits; 0, or -1 once out is full. */
static int
scrub_put(char *out, size_t n, size_t *used, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (*used + 1 >= n)
            return -1;
        out[(*used)++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    return 0;
}

/* Masks the token s[0..len) with fn and appends the mask. */
static int
scrub_mask(char *out, size_t n, size_t *used, const char *s, size_t len,
           void (*fn)(const char *, char *, size_t))
{
    char tok[ADDR_EMAIL_MAX + 1], mask[ADDR_EMAIL_MAX + 8];

    if (len >= sizeof(tok))
        return scrub_put(out, n, used, "***", 3);
    memcpy(tok, s, len);
    tok[len] = '\0';
    fn(tok, mask, sizeof(mask));
    return scrub_put(out, n, used, mask, strlen(mask));
}

void
scrub_text(const char *s, char *out, size_t n)
{
    size_t i = 0, j, len, used = 0;
    int full = 0;

    if (n == 0)
        return;
    len = s != NULL ? strlen(s) : 0;
    while (i < len && !full) {
        if (s[i] == '+' && scrub_digit(s[i + 1])) {
            for (j = i + 1; j < len && scrub_digit(s[j]); j++)
                ;
            /* Longer runs are not numbers, but are masked all the same. */
            full = j - i <= SCRUB_NUMBER_MAX
                       ? scrub_mask(out, n, &used, s + i, j - i, phone_mask)
                       : scrub_put(out, n, &used, "***", 3);
            i = j;
            continue;
        }
        for (j = i; j < len && scrub_local_char(s[j]); j++)
            ;
        if (j > i && j < len && s[j] == '@') {
            for (j++; j < len && scrub_domain_char(s[j]); j++)
                ;
            full = scrub_mask(out, n, &used, s + i, j - i, addr_email_mask);
            i = j;
            continue;
        }
        /* No address here: copy up to the next '+' (a number may start
         * there), at least one byte. */
        if (j == i)
            j = i + 1;
        else
            for (j = i + 1; j < len && s[j] != '+' && scrub_local_char(s[j]);
                 j++)
                ;
        full = scrub_put(out, n, &used, s + i, j - i);
        i = j;
    }
    out[used] = '\0';
}
