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
 * Deciding to drop writes 'dropped' with the reason at once.
 *
 * Security notes: the clear code exists only between unseal and render,
 * on the stack, and is wiped right after; rendered parts and the message
 * are wiped buffers. Logs, audit rows, result events and last_error get
 * masked addresses and never a code. The sealed code's associated data
 * binds it to its login and delivery, so a job cannot borrow another
 * delivery's code; the login's user must also be the job's contact.
 */
#include "email.h"
#include "mfa/mail.h"
#include "runtime/topology.h"
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

static int
email_final_status(const char *status)
{
    return strcmp(status, "sent") == 0 || strcmp(status, "failed") == 0 ||
           strcmp(status, "dropped") == 0;
}

static enum mfa_verdict
email_db_fail(struct job *job)
{
    job_fail(job, "database: %s", job_db(job)->errmsg);
    return MFA_RETRY;
}

static void
email_audit_detail(struct json_object *d, const char *key, const char *val)
{
    if (val != NULL && *val)
        json_object_object_add(d, key, json_object_new_string(val));
}

/* Audit row for a decision about delivery_id; takes detail. */
static int
email_audit(struct job *job, const char *action, const char *contact_id,
            const char *login_id, struct json_object *detail)
{
    int rc = store_audit(
        job_db(job), action, contact_id, login_id, job_event(job)->event_id,
        json_object_to_json_string_ext(detail, JSON_C_TO_STRING_PLAIN));

    json_object_put(detail);
    return rc;
}

/* The result event for subscribers: code.* or notice.* */
static void
email_result(struct job *job, int notice, const char *what,
             const char *delivery_id, const char *login_id,
             const char *contact_id, const char *error, const char *queue_id)
{
    struct json_object *d = json_object_new_object();
    char type[32];

    snprintf(type, sizeof(type), "%s.%s", notice ? "notice" : "code", what);
    json_object_object_add(d, "delivery_id",
                           json_object_new_string(delivery_id));
    if (notice) {
        json_object_object_add(d, "contact_id",
                               json_object_new_string(contact_id));
        json_object_object_add(d, "template",
                               json_object_new_string("contact_changed"));
    } else {
        json_object_object_add(d, "login_id", json_object_new_string(login_id));
    }
    json_object_object_add(d, "channel", json_object_new_string("email"));
    email_audit_detail(d, "error", error);
    email_audit_detail(d, "provider_message_id", queue_id);
    job_emit(job, MFA_EX_RESULTS, type, type, d);
}

/* Not sent, and never will be: 'dropped' with the reason. */
static enum mfa_verdict
email_drop(struct job *job, int notice, const char *delivery_id,
           const char *login_id, const char *contact_id, const char *reason)
{
    struct json_object *a = json_object_new_object();

    if (store_final(job_db(job), delivery_id, "dropped", reason, 0) != 0) {
        json_object_put(a);
        return email_db_fail(job);
    }
    email_audit_detail(a, "delivery_id", delivery_id);
    email_audit_detail(a, "reason", reason);
    if (email_audit(job, "email.dropped", contact_id, login_id, a) != 0)
        return email_db_fail(job);
    email_result(job, notice, "dropped", delivery_id, login_id, contact_id,
                 reason, NULL);
    log_kv(LOGL_INFO, "not sent: dropped", "delivery_id", delivery_id, "reason",
           reason, NULL);
    return MFA_OK;
}

/* Failed for good before any SMTP call (or after the last one). */
static enum mfa_verdict
email_fail(struct job *job, int notice, const char *delivery_id,
           const char *login_id, const char *contact_id, const char *reason,
           int attempted, const char *to_masked)
{
    struct json_object *a = json_object_new_object();

    if (store_final(job_db(job), delivery_id, "failed", reason, attempted) !=
        0) {
        json_object_put(a);
        return email_db_fail(job);
    }
    email_audit_detail(a, "delivery_id", delivery_id);
    email_audit_detail(a, "to", to_masked);
    email_audit_detail(a, "error", reason);
    if (email_audit(job, "email.failed", contact_id, login_id, a) != 0)
        return email_db_fail(job);
    email_result(job, notice, "failed", delivery_id, login_id, contact_id,
                 reason, NULL);
    log_kv(LOGL_WARN, "not sent: failed", "delivery_id", delivery_id, "to",
           to_masked ? to_masked : "***", "error", reason, NULL);
    return MFA_OK;
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

/* Queues msg (taken) for to; MFA_PENDING, or MFA_RETRY if it can't. */
static enum mfa_verdict
email_start(struct job *job, struct email_job *ej, const char *to,
            struct buf *msg)
{
    ej->job = job;
    ej->st = worker_state(job_worker(job));
    addr_email_mask(to, ej->to_masked, sizeof(ej->to_masked));
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

/* The delivery row of a job: 1 go on, 0 final already (MFA_OK), -1 with
 * *v set. */
static int
email_delivery_check(struct job *job, const char *delivery_id, const char *kind,
                     const char *login_id, enum mfa_verdict *v)
{
    struct store_delivery del;
    int rc = store_delivery_get(job_db(job), delivery_id, 0, &del);

    if (rc < 0) {
        *v = email_db_fail(job);
        return -1;
    }
    if (rc == 0) {
        job_fail(job, "no delivery %s", delivery_id);
        *v = MFA_REJECT;
        return -1;
    }
    if (strcmp(del.kind, kind) != 0 || strcmp(del.channel, "email") != 0 ||
        (login_id && strcmp(del.login_id, login_id) != 0)) {
        job_fail(job, "delivery %s is not an email %s for this login",
                 delivery_id, kind);
        *v = MFA_REJECT;
        return -1;
    }
    if (email_final_status(del.status)) {
        /* A duplicate or a replay from the dead-letter queue. */
        log_kv(LOGL_INFO, "delivery already final; nothing sent", "delivery_id",
               delivery_id, "status", del.status, NULL);
        *v = MFA_OK;
        return 0;
    }
    return 1;
}

static enum mfa_verdict
email_code(struct job *job)
{
    const struct envelope *ev = job_event(job);
    const char *did = ev->u.dispatch_code.delivery_id;
    const char *lid = ev->u.dispatch_code.login_id;
    const char *cid = ev->u.dispatch_code.contact_id;
    struct email_state *st = worker_state(job_worker(job));
    struct store_code code;
    struct store_user user;
    struct email_content c;
    struct email_job *ej;
    struct buf msg;
    char clear[MFA_CODE_MAX + 1], ad[2 * ADDR_UUID_LEN + 2], why[256];
    char masked[ADDR_EMAIL_MAX + 8];
    size_t clen = 0;
    enum mfa_verdict v;
    enum compose_status cs;
    int rc;

    memset(&user, 0, sizeof(user));
    if (strcmp(ev->u.dispatch_code.channel, "email") != 0) {
        job_fail(job, "dispatch.code for channel %s reached the email queue",
                 ev->u.dispatch_code.channel);
        return MFA_REJECT;
    }
    if (email_delivery_check(job, did, "code", lid, &v) <= 0)
        return v;
    rc = store_code_get(job_db(job), did, st->cfg->codes.min_remaining_seconds,
                        &code);
    if (rc < 0)
        return email_db_fail(job);
    if (rc == 0)
        return email_drop(job, 0, did, lid, cid, "no code for this delivery");
    if (code.reason != NULL) {
        snprintf(why, sizeof(why), "%s (%ld s left)", code.reason,
                 code.seconds_left > 0 ? code.seconds_left : 0);
        return email_drop(job, 0, did, lid, cid,
                          strcmp(code.reason, "expiring") == 0 ? why
                                                               : code.reason);
    }
    if (strcmp(code.contact_id, cid) != 0) {
        job_fail(job, "contact_id does not match the login's user");
        return MFA_REJECT;
    }
    rc = store_user_get(job_db(job), cid, &user);
    if (rc < 0)
        return email_db_fail(job);
    if (rc == 0 || !user.enabled || user.email == NULL ||
        !user.email_confirmed) {
        store_user_free(&user);
        return email_drop(job, 0, did, lid, cid, "no confirmed email address");
    }
    addr_email_mask(user.email, masked, sizeof(masked));

    /* The seal binds the code to this login and this delivery. */
    snprintf(ad, sizeof(ad), "%s:%s", lid, did);
    if (unseal_b64(st->keys->seal, ad, ev->u.dispatch_code.sealed, clear,
                   sizeof(clear), &clen) != 0 ||
        clen < 6 || strspn(clear, "0123456789") != clen) {
        sodium_memzero(clear, sizeof(clear));
        store_user_free(&user);
        v = email_fail(job, 0, did, lid, cid, "sealed code does not open", 0,
                       masked);
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
            return email_fail(job, 0, did, lid, cid, why, 0, masked);
        job_fail(job, "compose: %s", why);
        return MFA_RETRY;
    }
    ej = xcalloc(1, sizeof(*ej));
    snprintf(ej->delivery_id, sizeof(ej->delivery_id), "%s", did);
    snprintf(ej->login_id, sizeof(ej->login_id), "%s", lid);
    snprintf(ej->contact_id, sizeof(ej->contact_id), "%s", cid);
    v = email_start(job, ej, user.email, &msg);
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
    struct email_content c;
    struct email_job *ej;
    struct buf msg;
    char why[256], masked[ADDR_EMAIL_MAX + 8];
    enum mfa_verdict v;
    enum compose_status cs;

    /* The envelope allows only the templates we ship. */
    if (email_delivery_check(job, did, "notice", NULL, &v) <= 0)
        return v;
    addr_email_mask(to, masked, sizeof(masked));
    memset(&c, 0, sizeof(c));
    c.tmpl = ev->u.dispatch_notice.template_name;
    c.locale = ev->u.dispatch_notice.locale;
    c.to = to;
    c.display_name = ev->u.dispatch_notice.display_name;
    cs = compose_message(st, &c, &msg, why, sizeof(why));
    if (cs == COMPOSE_BAD_ADDRESS)
        return email_fail(job, 1, did, NULL, cid, why, 0, masked);
    if (cs != COMPOSE_OK) {
        job_fail(job, "compose: %s", why);
        return MFA_RETRY;
    }
    ej = xcalloc(1, sizeof(*ej));
    ej->notice = 1;
    snprintf(ej->delivery_id, sizeof(ej->delivery_id), "%s", did);
    snprintf(ej->contact_id, sizeof(ej->contact_id), "%s", cid);
    return email_start(job, ej, to, &msg);
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
    return email_db_fail(job);
}

/* The SMTP outcome, recorded in a transaction of its own. */
static enum mfa_verdict
email_complete(struct job *job)
{
    struct email_job *ej = job_data(job);
    const struct smtp_result *r;
    struct store_delivery del;
    struct json_object *a;
    char reason[400];
    enum mfa_verdict v = MFA_OK;
    int rc;

    if (ej == NULL) {
        /* Only after a failed COMMIT of an earlier run of this
         * completion: the outcome is gone, so send again. */
        job_fail(job, "outcome of the SMTP send lost with the database; "
                      "sending again");
        return MFA_RETRY;
    }
    r = &ej->res;
    rc = store_delivery_get(job_db(job), ej->delivery_id, 1, &del);
    if (rc < 0)
        return email_complete_db_fail(job, ej);
    if (rc == 0 || email_final_status(del.status)) {
        log_kv(LOGL_WARN, "delivery final before the send finished",
               "delivery_id", ej->delivery_id, NULL);
        goto done;
    }
    switch (r->outcome) {
    case SMTP_SENT:
        if (store_sent(job_db(job), ej->delivery_id, r->queue_id) != 0)
            return email_complete_db_fail(job, ej);
        a = json_object_new_object();
        email_audit_detail(a, "delivery_id", ej->delivery_id);
        email_audit_detail(a, "to", ej->to_masked);
        email_audit_detail(a, "provider_message_id", r->queue_id);
        if (email_audit(job, "email.sent", ej->contact_id,
                        ej->notice ? NULL : ej->login_id, a) != 0)
            return email_complete_db_fail(job, ej);
        email_result(job, ej->notice, "sent", ej->delivery_id, ej->login_id,
                     ej->contact_id, NULL, r->queue_id);
        log_kv(LOGL_INFO, "sent", "delivery_id", ej->delivery_id, "to",
               ej->to_masked, "queue_id", r->queue_id, NULL);
        break;
    case SMTP_PERMFAIL:
        v = email_fail(job, ej->notice, ej->delivery_id,
                       ej->notice ? NULL : ej->login_id, ej->contact_id,
                       r->text, 1, ej->to_masked);
        if (v != MFA_OK)
            return email_complete_db_fail(job, ej);
        break;
    case SMTP_TEMPFAIL:
        if (job_last_attempt(job)) {
            snprintf(reason, sizeof(reason), "%s (gave up after %ld attempts)",
                     r->text, del.attempts + 1);
            v = email_fail(job, ej->notice, ej->delivery_id,
                           ej->notice ? NULL : ej->login_id, ej->contact_id,
                           reason, 1, ej->to_masked);
            if (v != MFA_OK)
                return email_complete_db_fail(job, ej);
            break;
        }
        if (store_attempt(job_db(job), ej->delivery_id, r->text) != 0)
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
    job_set_data(job, NULL);
    free(ej);
    return v;
}
