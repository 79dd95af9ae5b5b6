/*
 * scrub.h - personal data out of free text: every email address and every
 * +E.164 number in a string replaced by its mask, for texts we do not
 * control (an SMTP server's or Twilio's error message quoting the
 * recipient) before they reach an operator's screen or a log.
 *
 * Callers: mfactl (user show: deliveries' last_error), anything that
 * shows a provider's text. Pure; no allocation left to the caller.
 */
#ifndef MFA_SCRUB_H
#define MFA_SCRUB_H

#include <stddef.h>

/*
 * Copies s to out (at most n-1 bytes and a NUL) with
 *   local@domain  -> addr_email_mask()  ("j***@example.com")
 *   +<digits>     -> phone_mask()       ("+31 6** *** *78", or "***")
 * and every byte that is not printable ASCII replaced by '?', so the
 * result is safe for a terminal too. What does not fit is dropped, never
 * copied unmasked. s NULL gives "".
 */
void scrub_text(const char *s, char *out, size_t n);

#endif
