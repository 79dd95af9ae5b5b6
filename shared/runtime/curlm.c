/*
 * curlm.c - glue between one libcurl multi handle and the worker's poll().
 *
 * Callers: dispatch workers (workers/email, workers/sms) through their
 * worker_spec poll hooks. libcurl's socket callback tells us which sockets
 * it wants watched for what; its timer callback when it next needs a
 * kick. We keep both here, hand them to the worker's poll() in
 * curlm_poll_fill, and feed the results back with curl_multi_socket_action
 * in curlm_poll_run. Finished transfers are collected first and their
 * completion functions run afterwards, outside any libcurl call, so a
 * completion may add the next transfer at once.
 *
 * Connect-only transfers (CURLOPT_CONNECT_ONLY) stay in the multi handle
 * after completion, "parked": libcurl closes such a connection as soon as
 * its handle leaves the multi handle, and the caller wants to go on with
 * curl_easy_send/recv on it. libcurl 7.88's SMTP needs this: its transfer
 * blocks (inside curl_multi_socket_action!) until the server answers the
 * final "." of DATA, so mfa-email lets libcurl connect, do TLS and AUTH,
 * and speaks the transaction itself without blocking.
 *
 * Security notes: nothing here sees request or response bodies; the error
 * text handed to completions is libcurl's (it never holds credentials).
 */
#include "runtime/curlm.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct curlm_sock {
    curl_socket_t fd;
    short events;
};

/* One transfer in flight, or a finished connect-only one still in the
 * multi handle ("parked"); CURLOPT_PRIVATE points here. */
struct curlm_xfer {
    struct curlm_xfer *prev, *next;
    CURL *easy;
    curlm_done_fn done;
    void *arg;
    int connect_only;
    char errbuf[CURL_ERROR_SIZE];
};

struct curlm {
    CURLM *multi;
    struct curlm_sock *socks;
    size_t nsocks, capsocks;
    long long deadline_ms;     /* monotonic; -1 = no timer */
    struct curlm_xfer *xfers;  /* in flight */
    struct curlm_xfer *parked; /* connect-only, completed */
    int inflight;
};

/* CURLMOPT_SOCKETFUNCTION: remember what libcurl wants from a socket. */
static int
curlm_on_socket(CURL *easy, curl_socket_t s, int what, void *userp,
                void *socketp)
{
    struct curlm *m = userp;
    size_t i;

    (void)easy;
    (void)socketp;
    for (i = 0; i < m->nsocks; i++)
        if (m->socks[i].fd == s)
            break;
    if (what == CURL_POLL_REMOVE) {
        if (i < m->nsocks)
            m->socks[i] = m->socks[--m->nsocks];
        return 0;
    }
    if (i == m->nsocks) {
        if (m->nsocks == m->capsocks) {
            m->capsocks = m->capsocks ? m->capsocks * 2 : 16;
            m->socks = xrealloc(m->socks, m->capsocks * sizeof(*m->socks));
        }
        m->socks[m->nsocks++].fd = s;
    }
    m->socks[i].events = (short)(((what & CURL_POLL_IN) ? POLLIN : 0) |
                                 ((what & CURL_POLL_OUT) ? POLLOUT : 0));
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: -1 deletes the timer, 0 means "as soon as you
 * can". Never drive libcurl from in here: the next poll_run does. */
static int
curlm_on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct curlm *m = userp;

    (void)multi;
    m->deadline_ms = timeout_ms < 0 ? -1 : clock_mono_ms() + timeout_ms;
    return 0;
}

struct curlm *
curlm_new(void)
{
    static int global_done;
    struct curlm *m;

    /* Once per process, before any other libcurl call (we have one
     * thread; libcurl's own lazy init is not thread-safe anyway). */
    if (!global_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return NULL;
        global_done = 1;
    }
    m = xcalloc(1, sizeof(*m));
    m->deadline_ms = -1;
    m->multi = curl_multi_init();
    if (m->multi == NULL) {
        free(m);
        return NULL;
    }
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, curlm_on_socket);
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, curlm_on_timer);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);
    return m;
}

static void
curlm_link(struct curlm_xfer **head, struct curlm_xfer *x)
{
    x->prev = NULL;
    x->next = *head;
    if (*head)
        (*head)->prev = x;
    *head = x;
}

static void
curlm_unlink(struct curlm_xfer **head, struct curlm_xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        *head = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
}

/* Takes the transfer out of the multi handle (a connect-only one goes to
 * the parked list instead) and runs its completion. */
static void
curlm_complete(struct curlm *m, struct curlm_xfer *x, CURLcode code)
{
    struct curlm_result r;
    char errbuf[CURL_ERROR_SIZE];
    CURL *easy = x->easy;
    curlm_done_fn done = x->done;
    void *arg = x->arg;

    memcpy(errbuf, x->errbuf, sizeof(errbuf));
    errbuf[sizeof(errbuf) - 1] = '\0';
    curlm_unlink(&m->xfers, x);
    m->inflight--;
    if (x->connect_only) {
        /* Stays in the multi handle with its connection; x (and its
         * error buffer, which libcurl still points at) stay too. */
        x->errbuf[0] = '\0';
        curlm_link(&m->parked, x);
    } else {
        curl_multi_remove_handle(m->multi, easy);
        /* The handle outlives this transfer: stop it pointing at us. */
        curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, NULL);
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        free(x);
    }

    memset(&r, 0, sizeof(r));
    r.code = code;
    if (curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r.response_code) !=
        CURLE_OK)
        r.response_code = 0;
    r.error = errbuf[0]          ? errbuf
              : code != CURLE_OK ? curl_easy_strerror(code)
                                 : "";
    done(easy, &r, arg);
}

void
curlm_remove(struct curlm *m, CURL *easy)
{
    struct curlm_xfer *x = NULL;

    if (m == NULL || easy == NULL ||
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x) != CURLE_OK ||
        x == NULL)
        return;
    curl_multi_remove_handle(m->multi, easy);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
    /* Which list: a parked handle is not in flight. */
    for (struct curlm_xfer *p = m->parked; p != NULL; p = p->next) {
        if (p == x) {
            curlm_unlink(&m->parked, x);
            free(x);
            return;
        }
    }
    curlm_unlink(&m->xfers, x);
    m->inflight--;
    free(x);
}

void
curlm_free(struct curlm *m)
{
    if (m == NULL)
        return;
    while (m->xfers) {
        struct curlm_xfer *x = m->xfers;

        snprintf(x->errbuf, sizeof(x->errbuf), "aborted: shutting down");
        curlm_complete(m, x, CURLE_ABORTED_BY_CALLBACK);
    }
    while (m->parked)
        curlm_remove(m, m->parked->easy);
    curl_multi_cleanup(m->multi);
    free(m->socks);
    free(m);
}

static int
curlm_start(struct curlm *m, CURL *easy, curlm_done_fn done, void *arg,
            int connect_only)
{
    struct curlm_xfer *x = xcalloc(1, sizeof(*x));
    CURLMcode mc;

    x->easy = easy;
    x->done = done;
    x->arg = arg;
    x->connect_only = connect_only;
    curl_easy_setopt(easy, CURLOPT_PRIVATE, x);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, x->errbuf);
    mc = curl_multi_add_handle(m->multi, easy);
    if (mc != CURLM_OK) {
        log_error("curl: cannot add a transfer: %s", curl_multi_strerror(mc));
        curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, NULL);
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        free(x);
        return -1;
    }
    curlm_link(&m->xfers, x);
    m->inflight++;
    return 0;
}

int
curlm_add(struct curlm *m, CURL *easy, curlm_done_fn done, void *arg)
{
    return curlm_start(m, easy, done, arg, 0);
}

int
curlm_add_connect_only(struct curlm *m, CURL *easy, curlm_done_fn done,
                       void *arg)
{
    return curlm_start(m, easy, done, arg, 1);
}

int
curlm_poll_fill(struct curlm *m, struct pollfd *fds, int max, int *timeout_ms)
{
    int n = 0;

    for (size_t i = 0; i < m->nsocks && n < max; i++) {
        fds[n].fd = m->socks[i].fd;
        fds[n].events = m->socks[i].events;
        fds[n].revents = 0;
        n++;
    }
    if (m->deadline_ms >= 0) {
        long long left = m->deadline_ms - clock_mono_ms();

        if (left < 0)
            left = 0;
        if (*timeout_ms < 0 || left < *timeout_ms)
            *timeout_ms = (int)left;
    }
    return n;
}

/* Drains libcurl's finished transfers, then completes them. Collected
 * first: a completion may add transfers, and curl_multi_info_read's
 * messages do not survive curl_multi_remove_handle. */
static void
curlm_reap(struct curlm *m)
{
    struct curlm_xfer **xs = NULL;
    CURLcode *codes = NULL;
    size_t n = 0, cap = 0;
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(m->multi, &left)) != NULL) {
        struct curlm_xfer *x = NULL;

        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        if (x == NULL)
            continue; /* not ours: cannot happen */
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            xs = xrealloc(xs, cap * sizeof(*xs));
            codes = xrealloc(codes, cap * sizeof(*codes));
        }
        xs[n] = x;
        codes[n++] = msg->data.result;
    }
    for (size_t i = 0; i < n; i++)
        curlm_complete(m, xs[i], codes[i]);
    free(xs);
    free(codes);
}

void
curlm_poll_run(struct curlm *m, const struct pollfd *fds, int n)
{
    int running = 0;

    for (int i = 0; i < n; i++) {
        int ev = 0;

        if (fds[i].revents == 0)
            continue;
        if (fds[i].revents & POLLIN)
            ev |= CURL_CSELECT_IN;
        if (fds[i].revents & POLLOUT)
            ev |= CURL_CSELECT_OUT;
        if (fds[i].revents & (POLLERR | POLLHUP | POLLNVAL))
            ev |= CURL_CSELECT_ERR;
        curl_multi_socket_action(m->multi, fds[i].fd, ev, &running);
    }
    if (m->deadline_ms >= 0 && clock_mono_ms() >= m->deadline_ms) {
        m->deadline_ms = -1; /* libcurl sets the next one */
        curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    curlm_reap(m);
}

int
curlm_inflight(const struct curlm *m)
{
    return m ? m->inflight : 0;
}
