/*
 * addr.h - validated identifiers and addresses: email syntax and masks,
 * UUIDs, strict UTF-8 and control-character checks.
 *
 * (The name is historical: this is the module for every small piece of
 * untrusted text that must have a given shape before it is used.)
 *
 * Conventions: *_check() returns 0 when valid and -1 otherwise; predicates
 * (addr_has_control, addr_email_equal_ci) return 1 for "yes", 0 for "no".
 */
#ifndef MFA_ADDR_H
#define MFA_ADDR_H

#include <stddef.h>

#define ADDR_EMAIL_MAX 254 /* octets, RFC 5321 path limit minus <> */
#define ADDR_LOCAL_MAX 64  /* octets, RFC 5321 4.5.3.1.1 */
#define ADDR_LABEL_MAX 63  /* octets, RFC 1035 */
#define ADDR_UUID_LEN 36   /* 8-4-4-4-12, without the NUL */

/*
 * Email syntax for a dot-atom address (what a CRM holds), not the full
 * RFC 5322 grammar: no quoted local parts, comments or domain literals.
 * UTF-8 (SMTPUTF8 / IDN) bytes are allowed in both parts. Returns 0 when
 * valid; otherwise -1 and a short reason ("no @", "domain has no dot", ...)
 * in reason (may be NULL).
 */
int addr_email_check(const char *s, char *reason, size_t n)
    __attribute__((warn_unused_result));

/*
 * "jane@example.com" -> "j***@example.com": the first character of the
 * local part (a whole UTF-8 sequence), "***", and the domain. Anything that
 * does not look like local@domain, or does not fit in out, becomes "***".
 * Safe for logs and reply hints.
 */
void addr_email_mask(const char *email, char *out, size_t n);

/* 1 when a and b are equal ignoring ASCII case; 0 otherwise or if NULL. */
int addr_email_equal_ci(const char *a, const char *b);

/* 0 when s is a canonical 8-4-4-4-12 hex UUID (any case, any version). */
int addr_uuid_check(const char *s) __attribute__((warn_unused_result));
/* Lowercases ASCII letters in place (the canonical UUID form). */
void addr_uuid_lower(char *s);
/* A new random (version 4) UUID in lowercase, from libsodium. */
void addr_uuid_new(char out[ADDR_UUID_LEN + 1]);

/*
 * 0 when the len bytes are strict UTF-8 (RFC 3629): shortest form only, no
 * surrogates (U+D800..U+DFFF), nothing above U+10FFFF. NUL is allowed here;
 * callers that build C strings reject it separately.
 */
int addr_utf8_check(const char *s, size_t len)
    __attribute__((warn_unused_result));

/* 1 when s holds a byte below 0x20 or 0x7f (DEL); 0 otherwise. */
int addr_has_control(const char *s);

#endif
