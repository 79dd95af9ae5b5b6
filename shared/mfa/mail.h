/*
 * mail.h - build an Internet message (RFC 5322, MIME RFC 2045-2047).
 *
 * mail_build() writes a complete message, headers and body, ready to hand
 * to an SMTP client: Date, Message-ID in the sender's domain, From, To,
 * Subject (RFC 2047 encoded words when not plain ASCII), MIME-Version,
 * Auto-Submitted, and a text part, or multipart/alternative with text and
 * HTML parts, in UTF-8 with quoted-printable transfer encoding. CRLF line
 * ends; header lines folded to stay short, body lines at most 76 octets.
 *
 * No input can add a header: display names are stripped of control
 * characters and quoted or encoded, addresses with anything but a plain
 * addr-spec are refused, subjects are encoded.
 */
#ifndef MFA_MAIL_H
#define MFA_MAIL_H

#include <stddef.h>
#include <time.h>

#include "mfa/tmpl.h"
#include "util/buf.h"

#define MAIL_MSGID_MAX 320

/*
 * The template files every locale folder needs for email (see
 * config/templates/README.md): per message ("code", "contact_changed") a
 * subject, a text and an HTML part, "<name>.subject.txt", "<name>.txt",
 * "<name>.html". The code parts must contain {{code}} and {{minutes}}; a
 * subject may never contain the code.
 */
extern const struct tmpl_file mail_template_files[];
extern const size_t mail_template_nfiles;

struct mail_msg {
    const char *from;     /* "Name <addr>", "\"Name\" <addr>" or "addr" */
    const char *to;       /* addr-spec */
    const char *to_name;  /* display name, may be NULL or "" */
    const char *subject;  /* UTF-8, one line */
    const char *text;     /* UTF-8 body, LF or CRLF line ends */
    const char *html;     /* UTF-8 HTML body, or NULL for text only */
    const char *language; /* Content-Language ("nl"), or NULL */
};

/*
 * Splits an address header value such as smtp.from into its display name
 * (unquoted, may come out "") and address. Either output may be NULL.
 * 0, or -1 when there is no single acceptable address.
 */
int mail_split_address(const char *value, char *name, size_t namelen,
                       char *addr, size_t addrlen)
    __attribute__((warn_unused_result));

/* 0 when addr is an addr-spec we put in headers and SMTP commands as is:
 * ASCII, no space, control or special characters, valid syntax. */
int mail_address_check(const char *addr) __attribute__((warn_unused_result));

/*
 * Appends the whole message to out. now is the Date. msgid (may be NULL)
 * receives the Message-ID with its angle brackets. 0, or -1 with err
 * (a refused address, or out's cap reached).
 */
int mail_build(const struct mail_msg *m, time_t now, struct buf *out,
               char *msgid, size_t msgidlen, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Quoted-printable body encoding (exposed for tests): text with LF or
 * CRLF line ends to CRLF lines of at most 76 octets. 0 or -1 (out full). */
int mail_qp_encode(struct buf *out, const char *text)
    __attribute__((warn_unused_result));

#endif
