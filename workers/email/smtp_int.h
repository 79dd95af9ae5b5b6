/*
 * smtp_int.h - inside mfa-email's SMTP client: the pool (smtp.c) and the
 * mail transaction on one connected session (session.c). Not for the
 * handler, which uses smtp.h.
 */
#ifndef EMAIL_SMTP_INT_H
#define EMAIL_SMTP_INT_H

#include "mfa/addr.h"
#include "smtp.h"

#define SMTP_LINE_MAX 2048 /* RFC 5321 allows 512; be lenient */
#define SMTP_IDLE_MS 30000 /* close a session idle this long */
#define SMTP_CMD_MAX 640   /* MAIL, RCPT and DATA pipelined */

enum sess_state {
    SS_CLOSED,     /* no connection */
    SS_CONNECTING, /* libcurl connecting (TLS, AUTH) */
    SS_IDLE,       /* connected, no transaction */
    SS_MAIL,       /* MAIL FROM sent, awaiting its reply */
    SS_RCPT,
    SS_DATA,
    SS_DOT,  /* message sent (or sending), awaiting the reply */
    SS_RSET, /* after a refused transaction */
};

/* Names of the states for error texts ("timeout during RCPT TO"). */
extern const char *const session_stage[];

struct smtp_send {
    struct smtp_send *next;
    char rcpt[ADDR_EMAIL_MAX + 1];
    struct buf wire; /* dot-stuffed message, then ".\r\n" */
    smtp_done_fn done;
    void *arg;
    long long deadline_ms;
    int moved; /* already moved once off a dead reused session */
    struct smtp_result res;
};

struct smtp_sess {
    struct smtp_pool *pool;
    CURL *easy;
    enum sess_state state;
    curl_socket_t fd;
    int used;       /* a transaction ran on this connection before */
    int got_reply;  /* the current transaction heard from the server */
    int pipelining; /* the server's EHLO offered PIPELINING (RFC 2920) */
    /* Pipelined: the first step refused, acted upon at DATA's reply. */
    long refused_code;
    enum sess_state refused_stage;
    char refused_text[300];
    struct smtp_send *cur;
    const char *tx; /* bytes to send: cmd or cur->wire */
    size_t tx_len, tx_pos;
    char cmd[SMTP_CMD_MAX];
    char in[SMTP_LINE_MAX];
    size_t in_len;
    long long idle_until;
    char fail[300]; /* connect phase: last 4xx/5xx (header callback) */
};

struct smtp_pool {
    const struct mfa_smtp_config *cfg;
    struct curlm *m;
    char from_addr[ADDR_EMAIL_MAX + 1];
    struct smtp_sess **sess;
    size_t nsess, maxsess;
    struct smtp_send *qhead, *qtail; /* waiting for a session */
    struct smtp_send *fhead, *ftail; /* finished, done not yet run */
    int queued, active, finished;
    int closing;
    struct smtp_sess **polled; /* by pollfd, last poll_fill */
};

long long smtp_now_ms(void);

/* smtp.c: the send of sess is over (to the finished list; its done runs
 * from smtp_pool_poll_run); drop the connection (QUIT first if idle and
 * quit); the connection failed under a transaction. */
void smtp_finish(struct smtp_sess *sess, enum smtp_outcome outcome, long code,
                 const char *text, const char *queue_id);
void smtp_close(struct smtp_sess *sess, int quit);
void smtp_broken(struct smtp_sess *sess, const char *what);

/* session.c: reply text safe to store and log (rcpt masked); send what is
 * pending (0, or -1 when the connection failed); start a transaction on
 * an idle session; read and act on replies (-1: connection gone or
 * nonsense). */
void session_clean_reply(char *out, size_t n, const char *line, size_t len,
                         const char *rcpt);
int session_flush(struct smtp_sess *sess);
void session_start(struct smtp_sess *sess);
int session_read(struct smtp_sess *sess);

#endif
