/*
 * loop.c - mfa-email's set-up, shutdown and poll hooks.
 *
 * Called by the runtime: email_init after configuration and keys are
 * loaded (templates are loaded and checked here, through dispatch_setup,
 * so a missing file or placeholder stops the worker at start-up naming
 * the file), email_fini after the loop ends, and the poll hooks on every
 * turn of the loop to drive the curl multi handle and the SMTP sessions
 * next to the AMQP socket.
 *
 * Security notes: nothing secret is logged here; the SMTP URL may carry
 * credentials and is not logged.
 */
#include "email.h"
#include "store.h"
#include "mfa/mail.h"
#include "runtime/dispatch.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <stdlib.h>
#include <string.h>

int
email_init(struct worker *w)
{
    struct email_state *st = xcalloc(1, sizeof(*st));
    const struct mfa_config *cfg = worker_config(w);
    char err[512];

    st->cfg = cfg;
    st->keys = worker_keys(w);
    if (dispatch_setup(cfg, mail_template_files, mail_template_nfiles,
                       store_read_sql, &st->tmpl, &st->curlm) != 0)
        goto fail;
    st->pool = smtp_pool_new(&cfg->smtp, st->curlm, err, sizeof(err));
    if (st->pool == NULL) {
        log_error("%s", err);
        goto fail;
    }
    worker_set_state(w, st);
    log_info("templates: %zu locale(s), default %s; smtp: starttls %s, "
             "%ld in flight, timeout %ld s",
             tmpl_locale_count(st->tmpl), cfg->templates.default_locale,
             strncmp(cfg->smtp.url, "smtps://", 8) == 0 ? "n/a (smtps)"
                                                        : cfg->smtp.starttls,
             cfg->smtp.concurrency, cfg->smtp.timeout_seconds);
    return 0;
fail:
    curlm_free(st->curlm);
    tmpl_free(st->tmpl);
    free(st);
    return -1;
}

void
email_fini(struct worker *w)
{
    struct email_state *st = worker_state(w);

    if (st == NULL)
        return;
    /* What is queued or in flight completes as aborted: those messages
     * were never acked and come back from the broker. */
    st->closing = 1;
    smtp_pool_free(st->pool);
    curlm_free(st->curlm);
    tmpl_free(st->tmpl);
    worker_set_state(w, NULL);
    free(st);
}

/* libcurl's sockets (connecting sessions) first, then the sessions'
 * own (transactions on connected ones). */
int
email_poll_fill(struct worker *w, struct pollfd *fds, int max, int *timeout_ms)
{
    struct email_state *st = worker_state(w);

    if (st == NULL)
        return 0;
    st->ncurl = curlm_poll_fill(st->curlm, fds, max, timeout_ms);
    return st->ncurl + smtp_pool_poll_fill(st->pool, fds + st->ncurl,
                                           max - st->ncurl, timeout_ms);
}

void
email_poll_run(struct worker *w, struct pollfd *fds, int n)
{
    struct email_state *st = worker_state(w);
    int nc;

    if (st == NULL)
        return;
    nc = st->ncurl < n ? st->ncurl : n;
    curlm_poll_run(st->curlm, fds, nc);
    smtp_pool_poll_run(st->pool, fds + nc, n - nc);
}

int
email_inflight(struct worker *w)
{
    struct email_state *st = worker_state(w);

    return st ? smtp_pool_busy(st->pool) : 0;
}
