/*
 * smtp_sink.c - the benchmark's SMTP server: accepts every message, fast.
 *
 * bench/run.py points mfa-email at it (MFA_SMTP_URL) for the end-to-end
 * figures, in place of the test catcher (tests/servers/smtp_catcher.py,
 * Python, two files per message) so that the mail server, which runs on
 * another machine in production, takes little of this machine's CPU.
 * One poll loop, plain SMTP (no TLS, no AUTH), nothing written to disk
 * but one line per accepted message:
 *     accepted_us TAB first-recipient TAB code
 * accepted_us is CLOCK_REALTIME in microseconds when "250" after DATA was
 * sent; code is the first body line that is only 6-10 digits (how the
 * code template sets the code), or "-". The benchmark needs the codes to
 * submit them (login.code_submitted); they are test codes of test users.
 *
 *     smtp_sink --out FILE [--port 0]
 * Prints the port it listens on (127.0.0.1) to stdout, runs to SIGTERM.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SINK_MAX_CONN 256
#define SINK_LINE 4096

struct sink_conn {
    int fd;
    int in_data;
    char rcpt[256];
    char code[16];
    char buf[SINK_LINE * 4];
    size_t len;
    char out[1024]; /* replies to the commands of one read */
    size_t outlen;
};

static volatile sig_atomic_t sink_stop;
static FILE *sink_out;

static void
sink_on_signal(int sig)
{
    (void)sig;
    sink_stop = 1;
}

static long long
sink_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
sink_flush(struct sink_conn *c)
{
    size_t off = 0;

    while (off < c->outlen) {
        ssize_t w = write(c->fd, c->out + off, c->outlen - off);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        off += (size_t)w;
    }
    c->outlen = 0;
    return 0;
}

/* Replies are written once every command of a read has its own, as
 * Postfix does for pipelined commands (RFC 2920): one write per round
 * trip, not one per reply (those would wait on Nagle and delayed ACKs). */
static int
sink_send(struct sink_conn *c, const char *s)
{
    size_t n = strlen(s);

    if (c->outlen + n > sizeof(c->out) && sink_flush(c) != 0)
        return -1;
    if (n > sizeof(c->out))
        return -1;
    memcpy(c->out + c->outlen, s, n);
    c->outlen += n;
    return 0;
}

/* A body line that is only blanks and 6-10 digits. */
static void
sink_body_line(struct sink_conn *c, const char *l)
{
    const char *p = l;
    size_t d = 0;

    if (c->code[0] != '\0')
        return;
    while (*p == ' ' || *p == '\t')
        p++;
    while (isdigit((unsigned char)p[d]))
        d++;
    if (d < 6 || d > 10)
        return;
    for (const char *q = p + d; *q; q++)
        if (*q != ' ' && *q != '\t')
            return;
    memcpy(c->code, p, d);
    c->code[d] = '\0';
}

/* One command or body line (CRLF removed). -1 closes the connection. */
static int
sink_line(struct sink_conn *c, const char *l)
{
    if (c->in_data) {
        if (strcmp(l, ".") != 0) {
            sink_body_line(c, l);
            return 0;
        }
        c->in_data = 0;
        if (sink_send(c, "250 2.0.0 Ok: queued\r\n") != 0)
            return -1;
        fprintf(sink_out, "%lld\t%s\t%s\n", sink_now_us(),
                c->rcpt[0] ? c->rcpt : "-", c->code[0] ? c->code : "-");
        fflush(sink_out);
        c->rcpt[0] = c->code[0] = '\0';
        return 0;
    }
    if (strncasecmp(l, "EHLO", 4) == 0)
        return sink_send(c, "250-bench-sink\r\n250-PIPELINING\r\n"
                            "250-8BITMIME\r\n250 SMTPUTF8\r\n");
    if (strncasecmp(l, "HELO", 4) == 0)
        return sink_send(c, "250 bench-sink\r\n");
    if (strncasecmp(l, "MAIL", 4) == 0) {
        c->rcpt[0] = c->code[0] = '\0';
        return sink_send(c, "250 2.1.0 Ok\r\n");
    }
    if (strncasecmp(l, "RCPT TO:", 8) == 0) {
        const char *a = strchr(l, '<'), *e = a ? strchr(a, '>') : NULL;

        if (c->rcpt[0] == '\0' && a && e &&
            (size_t)(e - a - 1) < sizeof(c->rcpt))
            snprintf(c->rcpt, sizeof(c->rcpt), "%.*s", (int)(e - a - 1), a + 1);
        return sink_send(c, "250 2.1.5 Ok\r\n");
    }
    if (strncasecmp(l, "DATA", 4) == 0) {
        c->in_data = 1;
        return sink_send(c, "354 End data with <CR><LF>.<CR><LF>\r\n");
    }
    if (strncasecmp(l, "RSET", 4) == 0) {
        c->rcpt[0] = c->code[0] = '\0';
        return sink_send(c, "250 2.0.0 Ok\r\n");
    }
    if (strncasecmp(l, "NOOP", 4) == 0)
        return sink_send(c, "250 2.0.0 Ok\r\n");
    if (strncasecmp(l, "QUIT", 4) == 0) {
        sink_send(c, "221 2.0.0 Bye\r\n");
        return -1;
    }
    return sink_send(c, "502 5.5.2 Command not recognized\r\n");
}

/* Reads what is there and handles every complete line. */
static int
sink_read(struct sink_conn *c)
{
    ssize_t r = read(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
    char *start, *nl;

    if (r <= 0)
        return r < 0 && errno == EINTR ? 0 : -1;
    c->len += (size_t)r;
    c->buf[c->len] = '\0';
    start = c->buf;
    while ((nl = memchr(start, '\n', c->len - (size_t)(start - c->buf)))) {
        *nl = '\0';
        if (nl > start && nl[-1] == '\r')
            nl[-1] = '\0';
        if (sink_line(c, start) != 0) {
            sink_flush(c); /* a goodbye */
            return -1;
        }
        start = nl + 1;
    }
    if (sink_flush(c) != 0)
        return -1;
    c->len -= (size_t)(start - c->buf);
    memmove(c->buf, start, c->len);
    if (c->len == sizeof(c->buf) - 1)
        c->len = 0; /* an absurdly long line: drop it, it is a sink */
    return 0;
}

static int
sink_listen(int port)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(fd, 128) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) != 0) {
        perror("smtp_sink: listen");
        exit(1);
    }
    printf("%d\n", ntohs(a.sin_port));
    fflush(stdout);
    return fd;
}

int
main(int argc, char **argv)
{
    static struct sink_conn conns[SINK_MAX_CONN];
    struct pollfd fds[SINK_MAX_CONN + 1];
    const char *outpath = NULL;
    struct sigaction sa;
    int port = 0, lfd;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--out") == 0)
            outpath = argv[i + 1];
        else if (strcmp(argv[i], "--port") == 0)
            port = (int)strtol(argv[i + 1], NULL, 10);
    }
    if (outpath == NULL) {
        fprintf(stderr, "usage: smtp_sink --out FILE [--port N]\n");
        return 2;
    }
    sink_out = fopen(outpath, "a");
    if (sink_out == NULL) {
        perror(outpath);
        return 1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = sink_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    lfd = sink_listen(port);
    for (int i = 0; i < SINK_MAX_CONN; i++)
        conns[i].fd = -1;
    while (!sink_stop) {
        int n = 0;

        fds[n].fd = lfd;
        fds[n++].events = POLLIN;
        for (int i = 0; i < SINK_MAX_CONN; i++) {
            fds[n].fd = conns[i].fd;
            fds[n++].events = POLLIN;
        }
        if (poll(fds, (nfds_t)n, 500) < 0)
            continue;
        if (fds[0].revents & POLLIN) {
            int cfd = accept(lfd, NULL, NULL);
            int i = 0;

            while (cfd >= 0 && i < SINK_MAX_CONN && conns[i].fd >= 0)
                i++;
            if (cfd >= 0 && i == SINK_MAX_CONN) {
                close(cfd);
            } else if (cfd >= 0) {
                memset(&conns[i], 0, sizeof(conns[i]));
                conns[i].fd = cfd;
                if (sink_send(&conns[i], "220 bench-sink ESMTP\r\n") != 0 ||
                    sink_flush(&conns[i]) != 0) {
                    close(cfd);
                    conns[i].fd = -1;
                }
            }
        }
        for (int i = 0; i < SINK_MAX_CONN; i++) {
            if (conns[i].fd < 0 || !(fds[i + 1].revents & (POLLIN | POLLHUP)))
                continue;
            if (sink_read(&conns[i]) != 0) {
                close(conns[i].fd);
                conns[i].fd = -1;
            }
        }
    }
    fclose(sink_out);
    return 0;
}
