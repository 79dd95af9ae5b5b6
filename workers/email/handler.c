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

/* Queues msg (taken) for to (masked: addr_email_mask's, already made);
 * MFA_PENDING, or MFA_RETRY if it can't. */
static enum mfa_verdict
email_start(struct job *job, struct email_job *ej, const char *to,
            const char *masked, struct buf *msg)
{
    ej->job = job;
    ej->st = worker_state(job_worker(job));
    snprintf(ej->to_masked, sizeof(ej->to_masked), "%s", masked);
    if (smtp_pool_send(ej->st->pool, to, msg, email_on_sent, ej) != 0) {
        job_fail(job, "smtp: cannot start the transfer");
        free(ej);
        return MFA_RETRY;
    }
    job_set_data(job, ej);
    log_kv(LOGL_DEBUG, "sending", "delivery_id", ej->delivery_id, "to",
           ej->to_masked, NULL);
    return MFA_PENDING;
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
    struct delivery_code code;
    struct store_user user;
    struct email_content c;
    struct email_job *ej;
    struct buf msg;
    char clear[MFA_CODE_MAX + 1], why[256];
    char masked[ADDR_EMAIL_MAX + 8];
    enum mfa_verdict v;
    enum compose_status cs;
    int rc;

    memset(&user, 0, sizeof(user));
    if (strcmp(ev->u.dispatch_code.channel, "email") != 0) {
        job_fail(job, "dispatch.code for channel %s reached the email queue",
                 ev->u.dispatch_code.channel);
        return MFA_REJECT;
    }
    if (dispatch_check(job, &t, "an email code", &v) <= 0)
        return v;
    rc = dispatch_code_alive(job, &t, st->cfg->codes.min_remaining_seconds,
                             &code, &v);
    if (rc < 0)
        return v;
    if (rc == 0)
        return email_drop(job, &t, code.why);
    rc = store_user_get(job_db(job), cid, &user);
    if (rc < 0)
        return dispatch_db_fail(job);
    if (rc == 0 || !user.enabled || user.email == NULL ||
        !user.email_confirmed) {
        store_user_free(&user);
        return email_drop(job, &t, "no confirmed email address");
    }
    addr_email_mask(user.email, masked, sizeof(masked));
    t.to_masked = masked;

    /* The seal binds the code to this login and this delivery. */
    if (delivery_code_open(st->keys->seal, lid, did, ev->u.dispatch_code.sealed,
                           clear, sizeof(clear)) != 0) {
        store_user_free(&user);
        v = email_fail(job, &t, "sealed code does not open", 0);
        if (v != MFA_OK)
            return v;
        /* Dead-letter it for a look, and keep the 'failed' row. */
        job_fail(job, "sealed code does not open (wrong key or tampered)");
        job_keep_effects(job);
        return MFA_REJECT;
    }

    memset(&c, 0, sizeof(c));
    c.tmpl = "code";
    c.locale = user.locale;
    c.to = user.email;
    c.display_name = user.display_name;
    c.code = clear;
    c.minutes =
        (code.seconds_left + 30) / 60 > 0 ? (code.seconds_left + 30) / 60 : 1;
    cs = compose_message(st, &c, &msg, why, sizeof(why));
    sodium_memzero(clear, sizeof(clear));
    if (cs != COMPOSE_OK) {
        store_user_free(&user);
        if (cs == COMPOSE_BAD_ADDRESS)
            return email_fail(job, &t, why, 0);
        job_fail(job, "compose: %s", why);
        return MFA_RETRY;
    }
    ej = xcalloc(1, sizeof(*ej));
    snprintf(ej->delivery_id, sizeof(ej->delivery_id), "%s", did);
    snprintf(ej->login_id, sizeof(ej->login_id), "%s", lid);
    snprintf(ej->contact_id, sizeof(ej->contact_id), "%s", cid);
    v = email_start(job, ej, user.email, masked, &msg);
    store_user_free(&user);
    return v;
}

static enum mfa_verdict
email_notice(struct job *job)
{
    const struct envelope *ev = job_event(job);
    const char *did = ev->u.dispatch_notice.delivery_id;
    const char *cid = ev->u.dispatch_notice.contact_id;
    const char *to = ev->u.dispatch_notice.to;
    struct email_state *st = worker_state(job_worker(job));
    struct dispatch_target t = email_target(1, did, NULL, cid, NULL);
    struct email_content c;
    struct email_job *ej;
    struct buf msg;
    char why[256], masked[ADDR_EMAIL_MAX + 8];
    enum mfa_verdict v;
    enum compose_status cs;

    /* The envelope allows only the templates we ship. */
    if (dispatch_check(job, &t, "an email notice", &v) <= 0)
        return v;
    addr_email_mask(to, masked, sizeof(masked));
    t.to_masked = masked;
    memset(&c, 0, sizeof(c));
    c.tmpl = ev->u.dispatch_notice.template_name;
    c.locale = ev->u.dispatch_notice.locale;
    c.to = to;
    c.display_name = ev->u.dispatch_notice.display_name;
    cs = compose_message(st, &c, &msg, why, sizeof(why));
    if (cs == COMPOSE_BAD_ADDRESS)
        return email_fail(job, &t, why, 0);
    if (cs != COMPOSE_OK) {
        job_fail(job, "compose: %s", why);
        return MFA_RETRY;
    }
    ej = xcalloc(1, sizeof(*ej));
    ej->notice = 1;
    snprintf(ej->delivery_id, sizeof(ej->delivery_id), "%s", did);
    snprintf(ej->contact_id, sizeof(ej->contact_id), "%s", cid);
    return email_start(job, ej, to, masked, &msg);
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

/* The SMTP outcome, recorded in a transaction of its own. */
static enum mfa_verdict
email_complete(struct job *job)
{
    struct email_job *ej = job_data(job);
    const struct smtp_result *r;
    struct dispatch_target t;
    struct delivery del;
    char reason[400];
    enum mfa_verdict v = MFA_OK;
    int rc;

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
    rc = delivery_get(job_db(job), ej->delivery_id, 1, &del);
    if (rc < 0)
        return email_complete_db_fail(job, ej);
    if (rc == 0 || delivery_is_final(del.status)) {
        log_kv(LOGL_WARN, "delivery final before the send finished",
               "delivery_id", ej->delivery_id, NULL);
        goto done;
    }
    switch (r->outcome) {
    case SMTP_SENT:
        if (dispatch_sent(job, &t, r->queue_id, 0) != MFA_OK)
            return email_complete_db_fail(job, ej);
        log_kv(LOGL_INFO, "sent", "delivery_id", ej->delivery_id, "to",
               ej->to_masked, "queue_id", r->queue_id, NULL);
        break;
    case SMTP_PERMFAIL:
        v = email_fail(job, &t, r->text, 1);
        if (v != MFA_OK)
            return email_complete_db_fail(job, ej);
        break;
    case SMTP_TEMPFAIL:
        if (job_last_attempt(job)) {
            snprintf(reason, sizeof(reason), "%s (gave up after %ld attempts)",
                     r->text, del.attempts + 1);
            v = email_fail(job, &t, reason, 1);
            if (v != MFA_OK)
                return email_complete_db_fail(job, ej);
            break;
        }
        if (delivery_attempt(job_db(job), ej->delivery_id, r->text, 0) != 0)
            return email_complete_db_fail(job, ej);
        /* Keep attempts/last_error; the retry tier brings the job back
         * and the handler checks the code's life again. */
        job_fail(job, "%s", r->text);
        job_keep_effects(job);
        log_kv(LOGL_WARN, "temporary failure; will retry", "delivery_id",
               ej->delivery_id, "to", ej->to_masked, "error", r->text, NULL);
        v = MFA_RETRY;
        break;
    }
done:
    return v; /* ej stays with the job until it is freed (data_free) */
}
