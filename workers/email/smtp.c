/*
 * smtp.c - SMTP submission for mfa-email: libcurl connects, the mail
 * transaction runs on our own loop.
 *
 * Called by the handler (smtp_pool_send) and, through the worker's poll
 * hooks, from the event loop. Why not a plain libcurl SMTP upload: in
 * libcurl 7.88 the end of an SMTP upload (smtp_done) blocks until the
 * server answers the final ".", inside curl_multi_socket_action, so one
 * slow server reply would freeze the whole worker (AMQP heartbeats
 * included) and the sends would go out one at a time. So each pooled
 * session is a libcurl easy handle with CURLOPT_CONNECT_ONLY on the
 * worker's multi handle: libcurl resolves, connects, verifies the
 * certificate, does STARTTLS or implicit TLS and AUTH, without blocking.
 * We then speak MAIL FROM / RCPT TO / DATA over curl_easy_send/recv on
 * that connection (session.c), polled by the worker's poll() like curl's
 * own sockets, one transaction after another on warm sessions (up to
 * smtp.concurrency in flight, the rest in a FIFO). An idle session is
 * closed after a while, or as soon as the server closes it; a send that
 * finds its reused session dead before any reply is moved to a fresh one.
 *
 * Outcome: 2xx after the data = sent (queue id from the reply); 5xx to
 * RCPT, DATA or the data = permanent; 4xx, timeouts, lost connections
 * and whatever says our set-up is wrong rather than the message (any
 * trouble while connecting, a 5xx to AUTH, STARTTLS or MAIL FROM, 530
 * "authentication required") = temporary, so no code is lost while an
 * operator fixes it.
 *
 * Security notes: certificates are always verified; with smtp:// the
 * STARTTLS policy is smtp.starttls (settings.c refuses AUTH without
 * required TLS); the password goes to libcurl only. Addresses reach SMTP
 * commands only after mail_address_check (no CR, LF, space or <>), and
 * the data is dot-stuffed. Server replies are stored and logged, so the
 * recipient's address in them is masked and anything but printable ASCII
 * replaced. The message holds a code: it lives in a struct buf that is
 * wiped when the send completes.
 */
#include "smtp_int.h"
#include "mfa/mail.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

long long
smtp_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
smtp_push(struct smtp_send **head, struct smtp_send **tail, struct smtp_send *s)
{
    s->next = NULL;
    if (*tail)
        (*tail)->next = s;
    else
        *head = s;
    *tail = s;
}

static struct smtp_send *
smtp_pop(struct smtp_send **head, struct smtp_send **tail)
{
    struct smtp_send *s = *head;

    if (s != NULL) {
        *head = s->next;
        if (*head == NULL)
            *tail = NULL;
        s->next = NULL;
    }
    return s;
}

static void
smtp_send_free(struct smtp_send *s)
{
    buf_free(&s->wire); /* wipes: the message holds a code */
    free(s);
}

/* The send of sess is over: to the finished list (done runs later). */
void
smtp_finish(struct smtp_sess *sess, enum smtp_outcome outcome, long code,
            const char *text, const char *queue_id)
{
    struct smtp_pool *p = sess->pool;
    struct smtp_send *s = sess->cur;

    if (s == NULL)
        return;
    sess->cur = NULL;
    p->active--;
    s->res.outcome = outcome;
    s->res.reply_code = code;
    snprintf(s->res.text, sizeof(s->res.text), "%s", text);
    snprintf(s->res.queue_id, sizeof(s->res.queue_id), "%s",
             queue_id ? queue_id : "");
    smtp_push(&p->fhead, &p->ftail, s);
    p->finished++;
}

/* Drops the connection (a polite QUIT first if it is idle). */
void
smtp_close(struct smtp_sess *sess, int quit)
{
    if (sess->state == SS_CLOSED)
        return;
    if (quit && sess->state == SS_IDLE) {
        size_t n;

        /* Best effort, never waited for: the server logs a clean end. */
        (void)curl_easy_send(sess->easy, "QUIT\r\n", 6, &n);
    }
    curlm_remove(sess->pool->m, sess->easy);
    sess->state = SS_CLOSED;
    sess->fd = CURL_SOCKET_BAD;
    sess->used = 0;
    sess->tx = NULL;
    sess->tx_len = sess->tx_pos = 0;
    sess->in_len = 0;
}

/* The connection failed under a transaction: temporary failure, or, for
 * a reused session that died before answering anything, a fresh start. */
void
smtp_broken(struct smtp_sess *sess, const char *what)
{
    struct smtp_pool *p = sess->pool;
    struct smtp_send *s = sess->cur;
    char text[200];

    if (s != NULL && sess->state == SS_MAIL && sess->used && !sess->got_reply &&
        !s->moved) {
        /* The server had closed the idle session: not an attempt. */
        s->moved = 1;
        sess->cur = NULL;
        p->active--;
        s->next = p->qhead;
        p->qhead = s;
        if (p->qtail == NULL)
            p->qtail = s;
        p->queued++;
    } else if (s != NULL) {
        snprintf(text, sizeof(text), "smtp: %s during %s", what,
                 session_stage[sess->state]);
        smtp_finish(sess, SMTP_TEMPFAIL, 0, text, NULL);
    }
    smtp_close(sess, 0);
}

/* CURLOPT_HEADERFUNCTION: while libcurl connects, every server reply
 * line; the last 4xx/5xx explains a failed connect (e.g. AUTH refused).
 * PIPELINING is taken from the last EHLO's keywords: a 220 (the greeting,
 * or the go-ahead of STARTTLS, after which libcurl asks EHLO again)
 * forgets what came before. */
static size_t
smtp_on_header(char *b, size_t size, size_t nitems, void *arg)
{
    struct smtp_sess *sess = arg;
    size_t len = size * nitems, kw = strlen("PIPELINING");

    if (len >= 4 && (b[0] == '4' || b[0] == '5') && b[3] != '-')
        session_clean_reply(sess->fail, sizeof(sess->fail), b, len, "");
    if (len >= 4 && memcmp(b, "220", 3) == 0)
        sess->pipelining = 0;
    if (len >= 4 + kw && memcmp(b, "250", 3) == 0 &&
        (b[3] == '-' || b[3] == ' ') &&
        strncasecmp(b + 4, "PIPELINING", kw) == 0 &&
        (len == 4 + kw || b[4 + kw] == '\r' || b[4 + kw] == '\n' ||
         b[4 + kw] == ' '))
        sess->pipelining = 1;
    return len;
}

static void
smtp_on_connected(CURL *easy, const struct curlm_result *r, void *arg)
{
    struct smtp_sess *sess = arg;
    curl_socket_t fd = CURL_SOCKET_BAD;
    char text[300];

    if (r->code == CURLE_OK &&
        curl_easy_getinfo(easy, CURLINFO_ACTIVESOCKET, &fd) == CURLE_OK &&
        fd != CURL_SOCKET_BAD) {
        sess->fd = fd;
        sess->state = SS_IDLE;
        sess->used = 0;
        sess->in_len = 0;
        if (sess->cur != NULL)
            session_start(sess);
        return;
    }
    if (sess->fail[0] && r->response_code >= 400)
        snprintf(text, sizeof(text), "%s", sess->fail);
    else
        snprintf(text, sizeof(text), "%s: %.200s",
                 r->code == CURLE_OPERATION_TIMEDOUT ? "timeout" : "connect",
                 r->code == CURLE_OK ? "no socket" : r->error);
    sess->state = SS_CONNECTING; /* so that smtp_close lets go of it */
    smtp_finish(sess, SMTP_TEMPFAIL, r->response_code, text, NULL);
    smtp_close(sess, 0);
}

/* A new session: an easy handle with everything that never changes. */
static struct smtp_sess *
sess_new(struct smtp_pool *p)
{
    const struct mfa_smtp_config *cfg = p->cfg;
    struct smtp_sess *sess = xcalloc(1, sizeof(*sess));
    long ssl = CURLUSESSL_ALL;
    int bad = 0;

    sess->pool = p;
    sess->fd = CURL_SOCKET_BAD;
    sess->easy = curl_easy_init();
    if (sess->easy == NULL) {
        free(sess);
        return NULL;
    }
    if (strncmp(cfg->url, "smtp://", 7) == 0)
        ssl = strcmp(cfg->starttls, "off") == 0        ? CURLUSESSL_NONE
              : strcmp(cfg->starttls, "optional") == 0 ? CURLUSESSL_TRY
                                                       : CURLUSESSL_ALL;
#define SET(opt, val) bad |= curl_easy_setopt(sess->easy, opt, val) != CURLE_OK
    SET(CURLOPT_URL, cfg->url);
    SET(CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    SET(CURLOPT_CONNECT_ONLY, 1L);
    SET(CURLOPT_USE_SSL, ssl);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    if (cfg->ca_file[0])
        SET(CURLOPT_CAINFO, cfg->ca_file);
    if (cfg->username[0]) {
        SET(CURLOPT_USERNAME, cfg->username);
        SET(CURLOPT_PASSWORD, cfg->password);
    }
    SET(CURLOPT_HEADERFUNCTION, smtp_on_header);
    SET(CURLOPT_HEADERDATA, sess);
    SET(CURLOPT_TIMEOUT, cfg->timeout_seconds);
    SET(CURLOPT_CONNECTTIMEOUT,
        cfg->timeout_seconds < 10 ? cfg->timeout_seconds : 10L);
    SET(CURLOPT_NOSIGNAL, 1L);
    /* Notice a peer that vanished while the session sat idle. */
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
#undef SET
    if (bad) {
        /* Only an old or oddly built libcurl refuses these. */
        log_error("smtp: libcurl refused an option (smtp/smtps or TLS "
                  "support missing?)");
        curl_easy_cleanup(sess->easy);
        free(sess);
        return NULL;
    }
    return sess;
}

/* Gives s to sess: a transaction at once on an open session, else a
 * connect first. */
static void
sess_begin(struct smtp_sess *sess, struct smtp_send *s)
{
    struct smtp_pool *p = sess->pool;

    sess->cur = s;
    p->active++;
    s->deadline_ms = smtp_now_ms() + p->cfg->timeout_seconds * 1000;
    if (sess->state == SS_IDLE) {
        session_start(sess);
        return;
    }
    sess->fail[0] = '\0';
    sess->pipelining = 0;
    sess->state = SS_CONNECTING;
    if (curlm_add_connect_only(p->m, sess->easy, smtp_on_connected, sess) !=
        0) {
        sess->state = SS_CLOSED;
        smtp_finish(sess, SMTP_TEMPFAIL, 0, "smtp: cannot start a connection",
                    NULL);
    }
}

/* Hands queued sends to open idle sessions first, then to closed or new
 * ones, up to smtp.concurrency. */
static void
smtp_start_queued(struct smtp_pool *p)
{
    while (p->qhead != NULL && !p->closing) {
        struct smtp_sess *pick = NULL;

        for (size_t i = 0; i < p->nsess && pick == NULL; i++)
            if (p->sess[i]->state == SS_IDLE && p->sess[i]->cur == NULL)
                pick = p->sess[i];
        for (size_t i = 0; i < p->nsess && pick == NULL; i++)
            if (p->sess[i]->state == SS_CLOSED && p->sess[i]->cur == NULL)
                pick = p->sess[i];
        if (pick == NULL && p->nsess < p->maxsess &&
            (pick = sess_new(p)) != NULL)
            p->sess[p->nsess++] = pick;
        if (pick == NULL)
            return; /* all busy: a finished send calls us again */
        p->queued--;
        sess_begin(pick, smtp_pop(&p->qhead, &p->qtail));
    }
}

/* Runs the completions of finished sends. */
static void
smtp_complete_finished(struct smtp_pool *p)
{
    struct smtp_send *s;

    while ((s = smtp_pop(&p->fhead, &p->ftail)) != NULL) {
        p->finished--;
        s->done(&s->res, s->arg);
        smtp_send_free(s);
    }
}

struct smtp_pool *
smtp_pool_new(const struct mfa_smtp_config *cfg, struct curlm *m, char *err,
              size_t errlen)
{
    struct smtp_pool *p;
    char addr[ADDR_EMAIL_MAX + 1];

    if (mail_split_address(cfg->from, NULL, 0, addr, sizeof(addr)) != 0) {
        snprintf(err, errlen, "smtp.from: no usable address in \"%.100s\"",
                 cfg->from);
        return NULL;
    }
    p = xcalloc(1, sizeof(*p));
    snprintf(p->from_addr, sizeof(p->from_addr), "%s", addr);
    p->cfg = cfg;
    p->m = m;
    p->maxsess = (size_t)(cfg->concurrency > 0 ? cfg->concurrency : 1);
    p->sess = xcalloc(p->maxsess, sizeof(*p->sess));
    p->polled = xcalloc(p->maxsess, sizeof(*p->polled));
    return p;
}

/* The message as SMTP DATA: lines starting with "." doubled (RFC 5321
 * 4.5.2), a final CRLF ensured, then the terminating ".". Copied a line
 * at a time. */
static int
smtp_stuff(struct buf *wire, const struct buf *msg)
{
    size_t pos = 0;

    while (pos < msg->len) {
        const char *p = msg->data + pos;
        const char *nl = memchr(p, '\n', msg->len - pos);
        size_t n = nl ? (size_t)(nl - p) + 1 : msg->len - pos;

        if (*p == '.' && buf_append(wire, ".", 1) != 0)
            return -1;
        if (buf_append(wire, p, n) != 0)
            return -1;
        pos += n;
    }
    if (msg->len > 0 && msg->data[msg->len - 1] != '\n' &&
        buf_puts(wire, "\r\n") != 0)
        return -1;
    return buf_puts(wire, ".\r\n");
}

int
smtp_pool_send(struct smtp_pool *p, const char *rcpt, struct buf *msg,
               smtp_done_fn done, void *arg)
{
    struct smtp_send *s;

    if (p->closing || mail_address_check(rcpt) != 0) {
        buf_free(msg);
        return -1;
    }
    s = xcalloc(1, sizeof(*s));
    snprintf(s->rcpt, sizeof(s->rcpt), "%s", rcpt);
    buf_init(&s->wire, msg->len + msg->len / 2 + 16);
    if (smtp_stuff(&s->wire, msg) != 0) {
        buf_free(msg);
        smtp_send_free(s);
        return -1;
    }
    buf_free(msg);
    s->done = done;
    s->arg = arg;
    smtp_push(&p->qhead, &p->qtail, s);
    p->queued++;
    smtp_start_queued(p);
    return 0;
}

int
smtp_pool_poll_fill(struct smtp_pool *p, struct pollfd *fds, int max,
                    int *timeout_ms)
{
    long long now = smtp_now_ms(), next = -1;
    int n = 0;

    for (size_t i = 0; i < p->nsess; i++) {
        struct smtp_sess *sess = p->sess[i];
        long long t = -1;

        if (sess->state < SS_IDLE || sess->fd == CURL_SOCKET_BAD)
            continue;
        if (n < max) {
            /* Always readable-wanted: replies, or an idle session's
             * server saying goodbye. */
            fds[n].fd = sess->fd;
            fds[n].events =
                (short)(POLLIN | (sess->tx_pos < sess->tx_len ? POLLOUT : 0));
            fds[n].revents = 0;
            p->polled[n++] = sess;
        }
        if (sess->cur != NULL)
            t = sess->cur->deadline_ms;
        else if (sess->state == SS_IDLE)
            t = sess->idle_until;
        if (t >= 0 && (next < 0 || t < next))
            next = t;
    }
    if (p->finished > 0)
        next = now;
    if (next >= 0) {
        long long left = next - now < 0 ? 0 : next - now;

        if (*timeout_ms < 0 || left < *timeout_ms)
            *timeout_ms = (int)left;
    }
    return n;
}

void
smtp_pool_poll_run(struct smtp_pool *p, const struct pollfd *fds, int n)
{
    long long now;

    for (int i = 0; i < n; i++) {
        struct smtp_sess *sess = p->polled[i];

        /* Closed or reconnected by an earlier event of this round. */
        if (fds[i].revents == 0 || sess->state < SS_IDLE ||
            sess->fd != fds[i].fd)
            continue;
        if ((fds[i].revents & POLLOUT) && session_flush(sess) != 0) {
            smtp_broken(sess, "send failed");
            continue;
        }
        if ((fds[i].revents & (POLLIN | POLLERR | POLLHUP)) &&
            session_read(sess) != 0) {
            if (sess->cur != NULL)
                smtp_broken(sess, "connection lost");
            else
                smtp_close(sess, 0);
        }
    }
    now = smtp_now_ms();
    for (size_t i = 0; i < p->nsess; i++) {
        struct smtp_sess *sess = p->sess[i];

        if (sess->cur != NULL && sess->state >= SS_IDLE &&
            now >= sess->cur->deadline_ms) {
            char text[200];

            /* After the data, the server may have taken the message: a
             * retry can mean a second copy (at-least-once). */
            snprintf(text, sizeof(text),
                     "timeout: no answer within %ld s during %s",
                     p->cfg->timeout_seconds, session_stage[sess->state]);
            smtp_finish(sess, SMTP_TEMPFAIL, 0, text, NULL);
            smtp_close(sess, 0);
        } else if (sess->cur == NULL && sess->state == SS_IDLE &&
                   now >= sess->idle_until) {
            smtp_close(sess, 1);
        }
    }
    smtp_start_queued(p);
    smtp_complete_finished(p);
}

int
smtp_pool_busy(const struct smtp_pool *p)
{
    return p ? p->queued + p->active + p->finished : 0;
}

void
smtp_pool_free(struct smtp_pool *p)
{
    struct smtp_send *s;

    if (p == NULL)
        return;
    p->closing = 1;
    while ((s = smtp_pop(&p->qhead, &p->qtail)) != NULL) {
        p->queued--;
        s->res.outcome = SMTP_TEMPFAIL;
        snprintf(s->res.text, sizeof(s->res.text), "smtp: aborted");
        smtp_push(&p->fhead, &p->ftail, s);
        p->finished++;
    }
    for (size_t i = 0; i < p->nsess; i++) {
        struct smtp_sess *sess = p->sess[i];

        smtp_finish(sess, SMTP_TEMPFAIL, 0, "smtp: aborted", NULL);
        smtp_close(sess, 1);
        curl_easy_cleanup(sess->easy);
        free(sess);
    }
    smtp_complete_finished(p);
    free(p->sess);
    free(p->polled);
    free(p);
}
