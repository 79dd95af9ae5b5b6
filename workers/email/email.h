/*
 * email.h - mfa-email's pieces: worker state, hooks for main.c, and the
 * message composer shared by the code and notice paths.
 */
#ifndef EMAIL_EMAIL_H
#define EMAIL_EMAIL_H

#include <poll.h>

#include "mfa/tmpl.h"
#include "runtime/curlm.h"
#include "runtime/dispatch.h"
#include "runtime/worker.h"
#include "smtp.h"
#include "util/buf.h"

/* A whole message, headers and both parts. */
#define EMAIL_MSG_MAX (1024 * 1024)

struct email_state {
    const struct mfa_config *cfg;
    const struct mfa_keys *keys;
    struct curlm *curlm;
    struct smtp_pool *pool;
    struct tmpl_set *tmpl;
    int ncurl;   /* pollfds of curlm in the last poll_fill */
    int closing; /* fini: completions only clean up */
};

/* worker_spec hooks (handler.c). */
int email_init(struct worker *w);
void email_fini(struct worker *w);
enum mfa_verdict email_handle(struct job *job);
int email_poll_fill(struct worker *w, struct pollfd *fds, int max,
                    int *timeout_ms);
void email_poll_run(struct worker *w, struct pollfd *fds, int n);
int email_inflight(struct worker *w);

/* What one message says and to whom (compose.c). */
struct email_content {
    const char *tmpl;         /* "code" or "contact_changed" */
    const char *locale;       /* the user's, e.g. "nl-BE"; may be NULL */
    const char *to;           /* recipient address */
    const char *display_name; /* may be NULL */
    const char *code;         /* "code" only */
    long minutes;             /* "code" only: life left, rounded */
};

enum compose_status {
    COMPOSE_OK,
    COMPOSE_BAD_ADDRESS, /* the recipient cannot be written safely */
    COMPOSE_ERROR        /* our bug or limits: err says which */
};

/* Renders the templates and builds the message into msg (initialised
 * here, capped at EMAIL_MSG_MAX); the rendered parts are wiped. */
enum compose_status compose_message(const struct email_state *st,
                                    const struct email_content *c,
                                    struct buf *msg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
