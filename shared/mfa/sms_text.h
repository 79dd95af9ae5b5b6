/*
 * sms_text.h - the text of a code SMS: template, encoding, segments.
 *
 * An SMS segment holds 160 GSM-7 septets (GSM 03.38, the characters of
 * the extension table such as € [ ] { } count two) or, as soon as one
 * character is outside GSM-7, only 70 UCS-2 (UTF-16) units. A code
 * message that needs two segments costs twice and may arrive in pieces,
 * so mfa-sms checks at start-up that every locale's template, rendered
 * with the longest code (10 digits), the longest life and the WebOTP line,
 * fits one segment.
 *
 * Callers: mfa-sms (render per job, check at start-up), unit tests.
 */
#ifndef MFA_SMS_TEXT_H
#define MFA_SMS_TEXT_H

#include <stddef.h>

#include "mfa/tmpl.h"
#include "util/buf.h"

#define SMS_GSM7_SEGMENT 160 /* septets in a single-part message */
#define SMS_UCS2_SEGMENT 70  /* UTF-16 units in a single-part message */
#define SMS_TEXT_MAX                                                           \
    1600 /* bytes of a rendered text (Twilio: 1600                             \
            characters at most) */

enum sms_coding { SMS_GSM7, SMS_UCS2 };

struct sms_size {
    enum sms_coding coding;
    size_t units; /* septets (GSM-7) or UTF-16 units (UCS-2) */
    size_t limit; /* what a single segment holds in that coding */
    int segments; /* 1 when units <= limit; else parts of 153 / 67 */
};

/*
 * The size of UTF-8 text as an SMS. 0, or -1 when s is not valid UTF-8
 * (out is then zero).
 */
int sms_text_size(const char *s, size_t len, struct sms_size *out)
    __attribute__((warn_unused_result));

/* "GSM-7" or "UCS-2". */
const char *sms_coding_name(enum sms_coding c);

/* The one template file every locale folder needs for SMS: "sms.txt",
 * with {{code}} required and {{minutes}}, {{portal_name}} allowed. */
extern const struct tmpl_file sms_template_files[];
extern const size_t sms_template_nfiles;

struct sms_text_vars {
    const char *code; /* digits */
    long minutes;     /* life left, rounded, >= 1 */
    const char *portal_name;
    const char *webotp_domain; /* NULL or "" = no WebOTP line */
};

/*
 * Renders locale's sms.txt into out (initialised here, capped at
 * SMS_TEXT_MAX, wiped by buf_free): trailing white space trimmed and, if
 * a WebOTP domain is set, a last line "@<domain> #<code>" after an empty
 * line (the WebOTP SMS format, so a browser can offer the code). 0, or
 * -1 with err (out is then freed).
 */
int sms_text_render(const struct tmpl_set *s, const char *locale,
                    const struct sms_text_vars *v, struct buf *out, char *err,
                    size_t errlen) __attribute__((warn_unused_result));

/*
 * The start-up check: every locale's sms.txt rendered with a 10-digit
 * code, max_minutes, portal_name and the WebOTP line fits one segment.
 * dir is only used to name the file in err. 0, or -1 with err naming
 * the file, the coding and the size.
 */
int sms_text_check(const struct tmpl_set *s, const char *dir, long max_minutes,
                   const char *portal_name, const char *webotp_domain,
                   char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
