/*
 * curlm.h - a libcurl multi handle inside the worker's poll loop.
 *
 * Dispatch workers keep many provider requests in flight from the one
 * event loop of the process: the multi handle tells us (socket and timer
 * callbacks) which sockets to watch and when to wake up; the worker_spec
 * hooks poll_fill / poll_run / inflight forward to curlm_poll_fill /
 * curlm_poll_run / curlm_inflight. A transfer is an easy handle the caller
 * configured, added with a completion function that runs from
 * curlm_poll_run once the transfer is over (never from inside libcurl).
 *
 * Knows nothing of MFA, SMTP or Twilio: the email and SMS workers share it.
 */
#ifndef RUNTIME_CURLM_H
#define RUNTIME_CURLM_H

#include <poll.h>

#include <curl/curl.h>

struct curlm;

/* What a finished transfer reports to its completion function. */
struct curlm_result {
    CURLcode code;      /* CURLE_OK or the transfer's error */
    long response_code; /* CURLINFO_RESPONSE_CODE: HTTP status or the
                           last SMTP reply code; 0 if none */
    const char *error;  /* libcurl's error text ("" when none) */
};

/*
 * Called once per transfer, from curlm_poll_run (or curlm_free with
 * CURLE_ABORTED_BY_CALLBACK). The easy handle has been removed from the
 * multi handle (connect-only ones excepted, see below) and belongs to the
 * caller again: it may be reused (and added again from here) or cleaned
 * up.
 */
typedef void (*curlm_done_fn)(CURL *easy, const struct curlm_result *r,
                              void *arg);

/* A new multi handle; NULL only if libcurl cannot make one. */
struct curlm *curlm_new(void) __attribute__((warn_unused_result));
/* Aborts what is still in flight (each completion runs with
 * CURLE_ABORTED_BY_CALLBACK), lets go of connect-only handles, then
 * frees. NULL is fine. */
void curlm_free(struct curlm *m);

/*
 * Starts a transfer. curlm sets CURLOPT_PRIVATE and CURLOPT_ERRORBUFFER
 * on the handle (callers must not). 0, or -1 when libcurl refuses the
 * handle (done is then not called).
 */
int curlm_add(struct curlm *m, CURL *easy, curlm_done_fn done, void *arg)
    __attribute__((warn_unused_result));

/*
 * The same for a CURLOPT_CONNECT_ONLY transfer whose connection the caller
 * then uses with curl_easy_send/curl_easy_recv (on CURLINFO_ACTIVESOCKET,
 * which the caller polls itself). Such a handle must stay in the multi
 * handle after it completes, because libcurl closes a connect-only
 * connection when its handle leaves; it stays until curlm_remove().
 */
int curlm_add_connect_only(struct curlm *m, CURL *easy, curlm_done_fn done,
                           void *arg) __attribute__((warn_unused_result));

/* Takes easy out of the multi handle without running its completion:
 * cancels a transfer in flight, or lets go of a completed connect-only
 * handle (libcurl closes its connection). Unknown handles are ignored. */
void curlm_remove(struct curlm *m, CURL *easy);

/* For worker_spec.poll_fill: adds up to max pollfds, lowers *timeout_ms to
 * libcurl's next timer. Returns the number added. */
int curlm_poll_fill(struct curlm *m, struct pollfd *fds, int max,
                    int *timeout_ms);
/* For worker_spec.poll_run: drives libcurl on the ready sockets and the
 * expired timer, then runs the completions of finished transfers. */
void curlm_poll_run(struct curlm *m, const struct pollfd *fds, int n);
/* For worker_spec.inflight: transfers added and not yet completed. */
int curlm_inflight(const struct curlm *m);

#endif
