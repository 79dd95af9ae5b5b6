/*
 * phone_e164.h - stored E.164 strings without libphonenumber: the form
 * check, the split into calling code and national significant number,
 * and the mask. Plain C over a table of calling codes that the build
 * generates from the linked libphonenumber (shared/mfa/phone_cc_gen.cc),
 * so a process that only masks numbers or checks their form does not
 * load the library's C++ stack (~4 MiB resident in mfa-sms).
 *
 * Callers: everything that logs or shows a number (phone_mask: mfa-sms,
 * mfa-codes' hints, mfactl, scrub, twilio_scrub), twilio_account_check
 * (the From number's form), phone.cc (phone_region_of's split). mfa/phone.h
 * includes this header, so its callers see phone_mask as before.
 *
 * Conventions as in phone.h: nothing allocates, and no output or reason
 * echoes the input.
 */
#ifndef MFA_PHONE_E164_H
#define MFA_PHONE_E164_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* E.164 allows at most 15 digits after the "+". */
#define PHONE_E164_DIGITS_MAX 15
/* Calling codes are 1 to 3 digits long. */
#define PHONE_CC_DIGITS_MAX 3
/* libphonenumber's Parse() refuses a national significant number shorter
 * than this (its kMinLengthForNsn); the split does the same. */
#define PHONE_NSN_MIN 2

/*
 * Splits a strict E.164 string ("+" and 1 to 15 digits, nothing else):
 * *cc gets the calling code and *nsn points at the digits after it. The
 * calling code is found the way Parse() finds it (ExtractCountryCode: the
 * shortest prefix of 1 to 3 digits that libphonenumber knows; no calling
 * code is a prefix of another). Returns 1, or 0 where Parse() fails too:
 * not E.164, a leading 0, no known calling code, fewer than PHONE_NSN_MIN
 * digits left. For a number phone_check() found valid, *nsn is exactly
 * its national significant number (Italian leading zeros included).
 */
int phone_e164_split(const char *e164, int *cc, const char **nsn);

/*
 * The form of an E.164 number, not its validity: "+", min_digits to
 * PHONE_E164_DIGITS_MAX digits, no leading 0, a known calling code and
 * PHONE_NSN_MIN digits after it. NULL when s has that form, else the
 * reason it has not ("missing", "no leading +", "not only digits", "too
 * short", "too long", "leading zero", "invalid country code").
 */
const char *phone_e164_check(const char *s, size_t min_digits);

/*
 * "+31612345678" -> "+31 6** *** *78": the country code, then the national
 * significant number in groups of three with only its first digit and last
 * two digits visible (only the first when it is under 6 digits long).
 * Anything phone_e164_split refuses, or a mask that does not fit in n
 * bytes, becomes "***" ("" if even that does not fit). Safe for logs and
 * reply hints.
 */
void phone_mask(const char *e164, char *out, size_t n);

#ifdef __cplusplus
}
#endif

#endif
