/*
 * phone_e164.c - E.164 strings in plain C: the form check, the split and
 * the mask (mfa/phone_e164.h).
 *
 * Callers: see phone_e164.h; the per-event ones are phone_mask in mfa-sms
 * and mfa-codes, which is why this is not in phone.cc: a program that
 * only masks numbers links no libphonenumber, protobuf, abseil or ICU.
 *
 * The calling codes come from phone_cc.h, which the build writes from the
 * linked libphonenumber (phone_cc_gen.cc); the generator also checks that
 * they are exactly the codes GetRegionCodeForCountryCode() knows, the
 * test phone.cc's split made before, so masks stay what they were.
 *
 * Security notes: input is untrusted (stored numbers, provider texts).
 * Reading stops at the first byte that does not fit E.164, nothing is
 * written past n, and a mask keeps only three digits of the number.
 */
#include "mfa/phone_e164.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phone_cc.h" /* generated: PHONE_CC_COUNT, phone_cc_list[] */

/* The longest mask: "+", 3 digits, then 15 digits in 5 groups. */
#define PHONE_MASK_MAX (1 + PHONE_CC_DIGITS_MAX + PHONE_E164_DIGITS_MAX + 5)

static int
phone_cc_cmp(const void *a, const void *b)
{
    return (int)*(const unsigned short *)a - (int)*(const unsigned short *)b;
}

/* 1 when libphonenumber knows the calling code. */
static int
phone_cc_known(int code)
{
    unsigned short key = (unsigned short)code;

    return bsearch(&key, phone_cc_list, PHONE_CC_COUNT,
                   sizeof(phone_cc_list[0]), phone_cc_cmp) != NULL;
}

/* The number of digits after the "+" of a strict E.164 string ("+" and 1
 * to PHONE_E164_DIGITS_MAX digits), or 0 when s is not one. */
static size_t
phone_e164_digits(const char *s)
{
    size_t i;

    if (s == NULL || s[0] != '+')
        return 0;
    for (i = 1; s[i] != '\0'; i++)
        if (s[i] < '0' || s[i] > '9' || i > PHONE_E164_DIGITS_MAX)
            return 0;
    return i - 1;
}

/*
 * The length (1 to PHONE_CC_DIGITS_MAX) of the calling code that digits
 * start with, its value in *cc; 0 for none. The shortest known prefix
 * wins, as in Parse(); a leading 0 is never one.
 */
static size_t
phone_cc_prefix(const char *digits, int *cc)
{
    int code = 0;

    for (size_t i = 0; i < PHONE_CC_DIGITS_MAX && digits[i] != '\0'; i++) {
        code = code * 10 + (digits[i] - '0');
        if (code == 0)
            return 0;
        if (phone_cc_known(code)) {
            *cc = code;
            return i + 1;
        }
    }
    return 0;
}

int
phone_e164_split(const char *e164, int *cc, const char **nsn)
{
    size_t k;

    if (phone_e164_digits(e164) == 0)
        return 0;
    k = phone_cc_prefix(e164 + 1, cc);
    if (k == 0)
        return 0;
    *nsn = e164 + 1 + k;
    return strlen(*nsn) >= PHONE_NSN_MIN;
}

const char *
phone_e164_check(const char *s, size_t min_digits)
{
    size_t digits, k;
    int cc;

    if (s == NULL || s[0] == '\0')
        return "missing";
    if (s[0] != '+')
        return "no leading +";
    digits = strspn(s + 1, "0123456789");
    if (s[1 + digits] != '\0')
        return "not only digits";
    if (digits < min_digits || digits == 0)
        return "too short";
    if (digits > PHONE_E164_DIGITS_MAX)
        return "too long";
    if (s[1] == '0')
        return "leading zero";
    k = phone_cc_prefix(s + 1, &cc);
    if (k == 0)
        return "invalid country code";
    if (digits - k < PHONE_NSN_MIN)
        return "too short";
    return NULL;
}

void
phone_mask(const char *e164, char *out, size_t n)
{
    char m[PHONE_MASK_MAX + 1];
    const char *nsn;
    size_t len, used;
    int cc;

    if (out == NULL || n == 0)
        return;
    /* The fallback first: whatever fails below leaves "***" (or ""). */
    snprintf(out, n, "%s", n > 3 ? "***" : "");
    if (!phone_e164_split(e164, &cc, &nsn))
        return;
    len = strlen(nsn);
    used = (size_t)snprintf(m, sizeof(m), "+%d", cc);
    for (size_t i = 0; i < len; i++) {
        /* Short numbers would be nearly given away by the last two. */
        int show = i == 0 || (len >= 6 && i + 2 >= len);

        if (i % 3 == 0)
            m[used++] = ' ';
        m[used++] = show ? nsn[i] : '*';
    }
    m[used] = '\0';
    if (used < n)
        memcpy(out, m, used + 1);
}
