/*
 * phone.h - phone number validation and regions (a C shim over
 * libphonenumber; the implementation, phone.cc, is the project's only C++).
 * Masks and the E.164 form are mfa/phone_e164.h (plain C, no library),
 * included here so that callers of phone_mask() need only this header.
 *
 * Callers: mfa-contact-sync (validates the CRM's phone before it is stored),
 * mfa-codes (SMS region policy), mfactl (settings: the From number's full
 * check; test --to), anything that logs a number (phone_mask).
 *
 * Conventions: nothing here allocates memory the caller must free, nothing
 * throws (C++ exceptions are caught at the boundary and reported as -1), and
 * no reason string echoes the input back: results may reach logs, the
 * database and dead-letter headers.
 */
#ifndef MFA_PHONE_H
#define MFA_PHONE_H

#include <stddef.h>

#include "mfa/phone_e164.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PHONE_INPUT_MAX 64 /* bytes; longer input is refused as "too long" */

enum phone_status { PHONE_MISSING = 0, PHONE_VALID, PHONE_INVALID };

struct phone_result {
    enum phone_status status;
    char e164[20];   /* "+31612345678"; "" unless valid */
    char region[3];  /* the number's own region ("NL", "GG"); "" unless valid
                        and geographic (+800 and friends have none) */
    char type[24];   /* "mobile", "fixed_line", "fixed_line_or_mobile",
                        "toll_free", "premium_rate", "voip", "pager", "uan",
                        "voicemail", "shared_cost", "personal_number",
                        "unknown"; "" unless valid */
    int sms_capable; /* 1 for mobile and fixed_line_or_mobile (US/CA) */
    char reason[64]; /* "" unless invalid: "not a number", "too short",
                        "too long", "invalid length", "missing area code",
                        "invalid country code", "invalid for region",
                        "invalid number", "has an extension",
                        "contains letters" */
};

/*
 * Classifies a phone number as the CRM holds it. Accepts the usual written
 * forms: spaces, dashes, dots, brackets, a "+" or the region's international
 * prefix ("00", "011"), and the national format of region (the contact's
 * country or the configured default; any case; NULL or unknown means only
 * international numbers can be valid).
 *
 * NULL, "" and whitespace-only input are PHONE_MISSING. Refused
 * (PHONE_INVALID with a reason): input over PHONE_INPUT_MAX bytes, numbers
 * with an extension, any ASCII letter (libphonenumber would silently turn
 * "0800-FLOWERS" into digits), and whatever libphonenumber finds impossible
 * or invalid. "invalid for region" means a national-format number that is
 * not valid in region (often the wrong country); "invalid number" one given
 * with its country code.
 *
 * Returns 0 whenever out was filled in (whatever the status), -1 on an
 * internal error (out NULL, out of memory); out is then all zero.
 */
int phone_check(const char *input, const char *region, struct phone_result *out)
    __attribute__((warn_unused_result));

/* 1 when region is two letters naming a region libphonenumber knows
 * (any case: "nl" and "NL" both count); 0 otherwise, also for NULL. */
int phone_region_ok(const char *region);

/*
 * The region of an E.164 number ("+447911123456" -> "GG"). Returns 0 with
 * out filled in, or -1 with out "" when e164 is not "+" and digits or its
 * region is unknown or non-geographic.
 */
int phone_region_of(const char *e164, char out[3]);

#ifdef __cplusplus
}
#endif

#endif
