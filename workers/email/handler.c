/*
 * handler.c - mfa-email: dispatch.code and dispatch.notice jobs to SMTP.
 *
 * Called by the runtime (worker_spec hooks set in main.c). A job runs in
 * two steps. The handler, inside the runtime's transaction, decides
 * whether the message may still go out (delivery not final yet; for a
 * code: not superseded, used or about to expire, login still open, the
 * user still has a confirmed address), opens the sealed code, renders
 * the message and hands it to the SMTP pool: MFA_PENDING, nothing
 * written. When libcurl is done, the completion runs in a new transaction
 * and records the outcome: sent (with the server's queue id), failed for
 * good (5xx, or the last retry), or one more attempt and MFA_RETRY with
 * the effects kept, so the runtime's retry tiers bring the job back.
 * Deciding to drop writes 'dropped' with the reason at once. The steps
 * mfa-sms shares (delivery and code checks, unseal, the row, audit and
 * result writes) are shared/runtime/dispatch.c and shared/mfa/delivery.c.
 *
 * Security notes: the clear code exists only between unseal and render,
 * on the stack, and is wiped right after; rendered parts and the message
 * are wiped buffers. Logs, audit rows, result events and last_error get
 * masked addresses and never a code. The sealed code's associated data
 * binds it to its login and delivery, so a job cannot borrow another
 * delivery's code; the login's user must also be the job's contact.
 */
#include "email.h"
#include "mfa/delivery.h"
#include "mfa/mail.h"
#include "runtime/dispatch.h"
#include "store.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/* What a job in flight carries from handler to completion. */
struct email_job {
    struct job *job;
    struct email_state *st;
    int notice;
    char delivery_id[ADDR_UUID_LEN + 1];
    char login_id[ADDR_UUID_LEN + 1];
    char contact_id[72];
    char to_masked[ADDR_EMAIL_MAX + 8];
    struct smtp_result res;
};

/* The delivery of a code or a notice, as audit rows and results name it.
 * to_masked is set once the recipient is known. */
static struct dispatch_target
email_target(int notice, const char *delivery_id, const char *login_id,
             const char *contact_id, const char *to_masked)
{
    struct dispatch_target t = {
        .channel = "email",
        .notice = notice,
        .delivery_id = delivery_id,
        .login_id = notice ? NULL : login_id,
        .contact_id = contact_id,
        .to_masked = to_masked,
    };

    return t;
}

/* Not sent, and never will be: 'dropped' with the reason. */
static enum mfa_verdict
email_drop(struct job *job, const struct dispatch_target *t, const char *reason)
{
    enum mfa_verdict v = dispatch_end(job, t, "dropped", reason, 0);

    if (v == MFA_OK)
        log_kv(LOGL_INFO, "not sent: dropped", "delivery_id", t->delivery_id,
               "reason", reason, NULL);
    return v;
}

/* Failed for good before any SMTP call (or after the last one). */
static enum mfa_verdict
email_fail(struct job *job, const struct dispatch_target *t, const char *reason,
           int attempted)
{
    enum mfa_verdict v = dispatch_end(job, t, "failed", reason, attempted);

    if (v == MFA_OK)
        log_kv(LOGL_WARN, "not sent: failed", "delivery_id", t->delivery_id,
               "to", t->to_masked ? t->to_masked : "***", "error", reason,
               NULL);
    return v;
}

static enum mfa_verdict email_complete(struct job *job);

/* From the SMTP pool, in the poll loop: hand the job back to the
 * runtime, which runs email_complete in a new transaction. */
static void
email_on_sent(const struct smtp_result *r, void *arg)
{
    struct email_job *ej = arg;
    struct job *job = ej->job;

    ej->res = *r;
    if (ej->st->closing) {
        /* Shutting down: the message stays unacked and comes back. */
        job_set_data(job, NULL);
        free(ej);
    }
    job_finish(job, email_complete);
}

/* Renders c and queues the message for t (to_masked already made):
 * MFA_PENDING, failed for good when the address cannot be written, or
 * MFA_RETRY if it can't start. */
static enum mfa_verdict
email_start(struct job *job, const struct dispatch_target *t,
            const struct email_content *c)
{
    struct email_state *st = worker_state(job_worker(job));
    struct email_job *ej;
    enum compose_status cs;
    struct buf msg;
    char why[256];

    cs = compose_message(st, c, &msg, why, sizeof(why));
    if (cs == COMPOSE_BAD_ADDRESS)
        return email_fail(job, t, why, 0);
    if (cs != COMPOSE_OK) {
        job_fail(job, "compose: %s", why);
        return MFA_RETRY;
    }
    ej = xcalloc(1, sizeof(*ej));
    ej->job = job;
    ej->st = st;
    ej->notice = t->notice;
    snprintf(ej->delivery_id, sizeof(ej->delivery_id), "%s", t->delivery_id);
    snprintf(ej->login_id, sizeof(ej->login_id), "%s",
             t->login_id ? t->login_id : "");
    snprintf(ej->contact_id, sizeof(ej->contact_id), "%s", t->contact_id);
    snprintf(ej->to_masked, sizeof(ej->to_masked), "%s", t->to_masked);
    if (smtp_pool_send(st->pool, c->to, &msg, email_on_sent, ej) != 0) {
        job_fail(job, "smtp: cannot start the transfer");
        free(ej);
        return MFA_RETRY;
    }
    job_set_data(job, ej);
    log_kv(LOGL_DEBUG, "sending", "delivery_id", ej->delivery_id, "to",
           ej->to_masked, NULL);
    return MFA_PENDING;
}

/* Renders the code message for user and starts it; the clear code
 * exists only in here. */
static enum mfa_verdict
email_code_send(struct job *job, const struct dispatch_target *t,
                const struct delivery_code *code, const struct store_user *user)
{
    struct email_state *st = worker_state(job_worker(job));
    struct email_content c;
    char clear[MFA_CODE_MAX + 1];
    enum mfa_verdict v;

    if (dispatch_code_open(job, t, st->keys->seal, clear, sizeof(clear), &v) !=
        0)
        return v;
    memset(&c, 0, sizeof(c));
    c.tmpl = "code";
    c.locale = user->locale;
    c.to = user->email;
    c.display_name = user->display_name;
    c.code = clear;
    c.minutes = code->minutes_left;
    v = email_start(job, t, &c);
    sodium_memzero(clear, sizeof(clear));
    return v;
}

static enum mfa_verdict
email_code(struct job *job)
{
    const struct envelope *ev = job_event(job);
    const char *did = ev->u.dispatch_code.delivery_id;
    const char *lid = ev->u.dispatch_code.login_id;
    const char *cid = ev->u.dispatch_code.contact_id;
    struct email_state *st = worker_state(job_worker(job));
    struct dispatch_target t = email_target(0, did, lid, cid, NULL);
    struct dispatch_facts f;
    struct delivery_code code;
    struct store_user user;
    char masked[ADDR_EMAIL_MAX + 8];
    enum mfa_verdict v;
    int rc;

    memset(&user, 0, sizeof(user));
    if (dispatch_start(job, &t, &f, "an email code", &v) <= 0)
        goto out;
    rc = dispatch_code_alive(job, &t, &f, st->cfg->codes.min_remaining_seconds,
                             &code, &v);
    if (rc < 0)
        goto out;
    if (rc == 0) {
        v = email_drop(job, &t, code.why);
        goto out;
    }
    rc = store_user_from(&f, &user);
    if (rc == 0 || !user.enabled || user.email == NULL ||
        !user.email_confirmed) {
        v = email_drop(job, &t, "no confirmed email address");
        goto out;
    }
    addr_email_mask(user.email, masked, sizeof(masked));
    t.to_masked = masked;
    v = email_code_send(job, &t, &code, &user);
out:
    store_user_free(&user);
    dispatch_facts_free(&f);
    return v;
}

static enum mfa_verdict
email_notice(struct job *job)
{
    const struct envelope *ev = job_event(job);
    const char *did = ev->u.dispatch_notice.delivery_id;
    const char *cid = ev->u.dispatch_notice.contact_id;
    struct dispatch_target t = email_target(1, did, NULL, cid, NULL);
    struct dispatch_facts f;
    struct email_content c;
    char masked[ADDR_EMAIL_MAX + 8];
    enum mfa_verdict v;
    int rc;

    rc = dispatch_start(job, &t, &f, "an email notice", &v);
    dispatch_facts_free(&f);
    if (rc <= 0)
        return v;
    /* The envelope allows only the templates we ship. */
    memset(&c, 0, sizeof(c));
    c.tmpl = ev->u.dispatch_notice.template_name;
    c.locale = ev->u.dispatch_notice.locale;
    c.to = ev->u.dispatch_notice.to;
    c.display_name = ev->u.dispatch_notice.display_name;
    addr_email_mask(c.to, masked, sizeof(masked));
    t.to_masked = masked;
    return email_start(job, &t, &c);
}

enum mfa_verdict
email_handle(struct job *job)
{
    const struct envelope *ev = job_event(job);

    switch (ev->type) {
    case EV_DISPATCH_CODE: return email_code(job);
    case EV_DISPATCH_NOTICE: return email_notice(job);
    default:
        job_fail(job, "mfa-email does not handle %s events", ev->type_name);
        return MFA_REJECT;
    }
}

/* A database error in the completion: keep the outcome for the re-run
 * that follows a lost connection or a deadlock; otherwise the job goes to
 * the retry tiers and is sent again from scratch. */
static enum mfa_verdict
email_complete_db_fail(struct job *job, struct email_job *ej)
{
    if (job_db(job)->last == DB_ERR_QUERY) {
        job_set_data(job, NULL);
        free(ej);
    }
    return dispatch_db_fail(job);
}

/* A temporary failure: one more attempt later (the retry tier brings the
 * job back and the handler checks the code's life again), or, on the
 * last attempt, failed for good. */
static enum mfa_verdict
email_tempfail(struct job *job, struct email_job *ej,
               const struct dispatch_target *t)
{
    const char *text = ej->res.text;
    char reason[400];
    long attempts = 0;
    enum mfa_verdict v;

    if (dispatch_attempt(job, t, text, 0, &attempts, &v) <= 0)
        return v;
    if (job_last_attempt(job)) {
        /* attempts counts this one already: attempted = 0 below. */
        snprintf(reason, sizeof(reason), "%s (gave up after %ld attempts)",
                 text, attempts);
        return email_fail(job, t, reason, 0);
    }
    /* Keep attempts/last_error. */
    job_fail(job, "%s", text);
    job_keep_effects(job);
    log_kv(LOGL_WARN, "temporary failure; will retry", "delivery_id",
           ej->delivery_id, "to", ej->to_masked, "error", text, NULL);
    return MFA_RETRY;
}

/* The SMTP outcome, recorded in a transaction of its own. Each write
 * changes the delivery only while it is still queued, and says so. */
static enum mfa_verdict
email_complete(struct job *job)
{
    struct email_job *ej = job_data(job);
    const struct smtp_result *r;
    struct dispatch_target t;
    enum mfa_verdict v = MFA_OK;

    if (ej == NULL) {
        /* Only after a statement of an earlier run of this completion
         * failed (email_complete_db_fail): the outcome is gone, send
         * again. */
        job_fail(job, "outcome of the SMTP send lost with the database; "
                      "sending again");
        return MFA_RETRY;
    }
    r = &ej->res;
    t = email_target(ej->notice, ej->delivery_id, ej->login_id, ej->contact_id,
                     ej->to_masked);
    switch (r->outcome) {
    case SMTP_SENT:
        v = dispatch_sent(job, &t, r->queue_id);
        if (v == MFA_OK)
            log_kv(LOGL_INFO, "sent", "delivery_id", ej->delivery_id, "to",
                   ej->to_masked, "queue_id", r->queue_id, NULL);
        break;
    case SMTP_PERMFAIL: v = email_fail(job, &t, r->text, 1); break;
    case SMTP_TEMPFAIL: v = email_tempfail(job, ej, &t); break;
    }
    /* A statement failed (the last one run says so). A planned retry ran
     * its statements fine. */
    if (v == MFA_RETRY && job_db(job)->last != DB_OK)
        return email_complete_db_fail(job, ej);
    return v; /* ej stays with the job until it is freed (data_free) */
}
