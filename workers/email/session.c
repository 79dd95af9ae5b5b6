/*
 * session.c - one SMTP mail transaction on a connected session.
 *
 * Called by the pool (smtp.c) once libcurl has connected a session (TLS,
 * STARTTLS and AUTH done) and from the poll loop when its socket is
 * ready. Speaks MAIL FROM, RCPT TO, DATA and the message over
 * curl_easy_send/curl_easy_recv without ever waiting: each step sends its
 * command and returns; the reply comes back through session_read. When
 * the server offers PIPELINING (RFC 2920; Postfix, Exim and most relays
 * do) MAIL FROM, RCPT TO and DATA go in one write and their three
 * replies are read in order: two round trips a message instead of four.
 * A refused step is followed by RSET so the session can carry the next
 * message; the reply after the data ends the transaction either way.
 *
 * Security notes: addresses reach commands only after mail_address_check
 * (no CR, LF, space or angle brackets). Replies are cleaned before they
 * reach logs, rows and events: printable ASCII only, the recipient's
 * address masked. Reply lines are read into a fixed buffer; a longer line
 * or anything that is not a reply ends the connection.
 */
#include "smtp_int.h"

#include <stdio.h>
#include <string.h>

const char *const session_stage[] = {
    "connect", "connect", "idle",        "MAIL FROM",
    "RCPT TO", "DATA",    "end of data", "RSET",
};

/* Reply text safe to store and log: printable ASCII, the recipient's
 * address masked. */
void
session_clean_reply(char *out, size_t n, const char *line, size_t len,
                    const char *rcpt)
{
    char masked[ADDR_EMAIL_MAX + 8];
    size_t k = 0, alen = strlen(rcpt);

    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    for (size_t i = 0; i < len && k + 1 < n; i++) {
        unsigned char c = (unsigned char)line[i];

        out[k++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    out[k] = '\0';
    if (alen == 0)
        return;
    addr_email_mask(rcpt, masked, sizeof(masked));
    for (char *hit; (hit = strcasestr(out, rcpt)) != NULL;) {
        size_t ml = strlen(masked), tail = strlen(hit + alen);

        if ((size_t)(hit - out) + ml + tail + 1 > n)
            break;
        memmove(hit + ml, hit + alen, tail + 1);
        memcpy(hit, masked, ml);
    }
}

/* "250 2.0.0 Ok: queued as ABC123" (Postfix and most others) or
 * "250 OK id=1a2b3c-..." (Exim) -> the id; else "". */
static void
session_queue_id(const char *reply, char *out, size_t n)
{
    const char *p = strcasestr(reply, "queued as ");
    size_t len;

    out[0] = '\0';
    if (p != NULL)
        p += strlen("queued as ");
    else if ((p = strcasestr(reply, " id=")) != NULL)
        p += strlen(" id=");
    else
        return;
    len = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                    "0123456789._-");
    if (len == 0 || len >= n)
        return;
    memcpy(out, p, len);
    out[len] = '\0';
}

/* Sends what is pending in tx. 0, or -1 when the connection failed. */
int
session_flush(struct smtp_sess *sess)
{
    while (sess->tx_pos < sess->tx_len) {
        size_t n = 0;
        CURLcode rc = curl_easy_send(sess->easy, sess->tx + sess->tx_pos,
                                     sess->tx_len - sess->tx_pos, &n);

        if (rc == CURLE_AGAIN)
            return 0; /* POLLOUT brings us back */
        if (rc != CURLE_OK)
            return -1;
        sess->tx_pos += n;
    }
    return 0;
}

/* "VERB<addr>\r\n" or "VERB\r\n"; addresses passed mail_address_check. */
static int
session_command(struct smtp_sess *sess, enum sess_state next, const char *verb,
                const char *addr)
{
    if (addr != NULL)
        snprintf(sess->cmd, sizeof(sess->cmd), "%s<%s>\r\n", verb, addr);
    else
        snprintf(sess->cmd, sizeof(sess->cmd), "%s\r\n", verb);
    sess->tx = sess->cmd;
    sess->tx_len = strlen(sess->cmd);
    sess->tx_pos = 0;
    sess->state = next;
    return session_flush(sess);
}

void
session_start(struct smtp_sess *sess)
{
    int rc;

    sess->got_reply = 0;
    sess->refused_code = 0;
    if (sess->pipelining) {
        snprintf(sess->cmd, sizeof(sess->cmd),
                 "MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n",
                 sess->pool->from_addr, sess->cur->rcpt);
        sess->tx = sess->cmd;
        sess->tx_len = strlen(sess->cmd);
        sess->tx_pos = 0;
        sess->state = SS_MAIL;
        rc = session_flush(sess);
    } else {
        rc =
            session_command(sess, SS_MAIL, "MAIL FROM:", sess->pool->from_addr);
    }
    if (rc != 0)
        smtp_broken(sess, "send failed");
}

/* A refused step (stage) of the transaction: 5xx permanent, 4xx
 * temporary; then RSET so the session can carry the next message, unless
 * the server is leaving (421) or reset is 0: then the connection goes. */
static void
session_refused(struct smtp_sess *sess, enum sess_state stage, long code,
                const char *text, int reset)
{
    /* A 5xx is final when it is about this message or recipient. Not
     * to MAIL FROM (our sender address) nor 530 "authentication
     * required" (our credentials): those refuse every message until an
     * operator fixes the set-up, so the message waits in the retries. */
    int perm = code >= 500 && code <= 599 && code != 530 && stage != SS_MAIL;

    smtp_finish(sess, perm ? SMTP_PERMFAIL : SMTP_TEMPFAIL, code, text, NULL);
    if (!reset || code == 421 || code < 400 || code > 599 ||
        session_command(sess, SS_RSET, "RSET", NULL) != 0)
        smtp_close(sess, 0);
}

/* Pipelined: the reply to MAIL FROM or RCPT TO. The first refusal is
 * kept for DATA's reply (the server answers every command sent); a 421
 * ends it all now. */
static void
session_pipelined(struct smtp_sess *sess, enum sess_state next, int code,
                  const char *text)
{
    if (code == 421) {
        session_refused(sess, sess->state, code, text, 0);
        return;
    }
    if (code / 100 != 2 && sess->refused_code == 0) {
        sess->refused_code = code;
        sess->refused_stage = sess->state;
        snprintf(sess->refused_text, sizeof(sess->refused_text), "%s", text);
    }
    sess->state = next;
}

/* One complete reply (its last line) in the current state. */
static void
session_on_reply(struct smtp_sess *sess, int code, const char *line, size_t len)
{
    char text[300], qid[65];
    struct smtp_send *s = sess->cur;
    int partial;

    sess->got_reply = 1;
    session_clean_reply(text, sizeof(text), line, len, s ? s->rcpt : "");
    switch (sess->state) {
    case SS_MAIL:
        if (sess->pipelining)
            session_pipelined(sess, SS_RCPT, code, text);
        else if (code / 100 != 2)
            session_refused(sess, SS_MAIL, code, text, 1);
        else if (session_command(sess, SS_RCPT, "RCPT TO:", s->rcpt) != 0)
            smtp_broken(sess, "send failed");
        break;
    case SS_RCPT:
        if (sess->pipelining)
            session_pipelined(sess, SS_DATA, code, text);
        else if (code / 100 != 2)
            session_refused(sess, SS_RCPT, code, text, 1);
        else if (session_command(sess, SS_DATA, "DATA", NULL) != 0)
            smtp_broken(sess, "send failed");
        break;
    case SS_DATA:
        if (sess->refused_code != 0) {
            /* A 354 after a refused MAIL or RCPT would want data we
             * will not send: leave that connection. */
            session_refused(sess, sess->refused_stage, sess->refused_code,
                            sess->refused_text, code != 354);
            break;
        }
        if (code != 354) {
            session_refused(sess, SS_DATA, code == 250 ? 451 : code, text, 1);
            break;
        }
        sess->state = SS_DOT;
        sess->tx = s->wire.data;
        sess->tx_len = s->wire.len;
        sess->tx_pos = 0;
        if (session_flush(sess) != 0)
            smtp_broken(sess, "send failed");
        break;
    case SS_DOT:
        /* The transaction is over whatever the answer: no RSET needed.
         * An answer before all of the data went out (a server refusing
         * mid-message) leaves the session unusable: close it below. */
        partial = sess->tx_pos < sess->tx_len;
        sess->used = 1;
        sess->state = SS_IDLE;
        sess->idle_until = smtp_now_ms() + SMTP_IDLE_MS;
        sess->tx = NULL;
        sess->tx_len = sess->tx_pos = 0;
        if (code / 100 == 2) {
            session_queue_id(text, qid, sizeof(qid));
            smtp_finish(sess, SMTP_SENT, code, text, qid);
        } else {
            smtp_finish(sess,
                        code >= 500 && code <= 599 ? SMTP_PERMFAIL
                                                   : SMTP_TEMPFAIL,
                        code, text, NULL);
        }
        if (code == 421 || partial)
            smtp_close(sess, 0);
        break;
    case SS_RSET:
        if (code / 100 == 2) {
            sess->state = SS_IDLE;
            sess->idle_until = smtp_now_ms() + SMTP_IDLE_MS;
        } else {
            smtp_close(sess, 0);
        }
        break;
    default:
        /* Unasked-for (a 421 before closing an idle session): go. */
        smtp_close(sess, 0);
        break;
    }
}

/* Reads what the server sent; complete replies are acted upon. -1 when
 * the connection is gone or the server talks nonsense. */
int
session_read(struct smtp_sess *sess)
{
    char chunk[2048];

    for (;;) {
        size_t n = 0, room;
        CURLcode rc = curl_easy_recv(sess->easy, chunk, sizeof(chunk), &n);

        if (rc == CURLE_AGAIN)
            return 0;
        if (rc != CURLE_OK || n == 0)
            return -1;
        for (size_t i = 0; i < n; i++) {
            char *nl;

            room = sizeof(sess->in) - sess->in_len;
            if (room == 0)
                return -1; /* a line longer than any server writes */
            sess->in[sess->in_len++] = chunk[i];
            if (chunk[i] != '\n')
                continue;
            nl = sess->in + sess->in_len - 1;
            if (sess->in_len < 4 || sess->in[0] < '1' || sess->in[0] > '5' ||
                sess->in[1] < '0' || sess->in[1] > '9' || sess->in[2] < '0' ||
                sess->in[2] > '9')
                return -1;
            /* "250-..." continues; "250 ..." or "250\r\n" ends a reply. */
            if (sess->in[3] != '-') {
                int code = (sess->in[0] - '0') * 100 +
                           (sess->in[1] - '0') * 10 + (sess->in[2] - '0');

                session_on_reply(sess, code, sess->in,
                                 (size_t)(nl - sess->in + 1));
                if (sess->state == SS_CLOSED)
                    return 0; /* the handle is not ours to read now */
            }
            sess->in_len = 0;
        }
    }
}
