/*
 * handler.c - mfa-sms: dispatch.code jobs to Twilio's Messages API.
 *
 * Called by the runtime (worker_spec hooks set in main.c). A job runs in
 * two steps. The handler, inside the runtime's transaction, decides
 * whether the code may still go out (delivery not final yet; code not
 * superseded, used or about to expire; login still open; the user still
 * has a valid phone that Twilio has not refused), reads the SMS settings
 * (every job, with the user's row: an operator's change applies at once;
 * only the checks of an unchanged row are remembered), opens the sealed
 * code, renders the text and starts the request: MFA_PENDING, nothing
 * written. When Twilio has answered, sms_complete runs in a new
 * transaction and records the outcome (see twilio.h for the classes):
 *   sent       delivery 'sent' with the Message SID, code.sent
 *   retry      attempts+1, last_error, MFA_RETRY with the effects kept:
 *              the runtime's retry tiers bring the job back
 *   ambiguous  the message may exist: one delayed retry with the same
 *              code, flagged possible_duplicate; a second one fails
 *   refused    'failed' with Twilio's code and text, code.failed; 21610
 *              and 21614 also block SMS to that number on the user
 *   auth       'failed', and an error log: the settings are wrong
 * Deciding not to send writes 'dropped' (stale) or 'failed' (no settings)
 * at once. The steps mfa-email shares (delivery and code checks, unseal,
 * the row, audit and result writes) are shared/runtime/dispatch.c and
 * shared/mfa/delivery.c.
 *
 * Security notes: the clear code exists only between unseal and render,
 * on the stack, and is wiped right after; the text and the request are
 * wiped buffers (loop.c). The secret is opened per job and wiped once the
 * Authorization header is built. Logs, audit rows, result events and
 * last_error carry masked numbers only (phone_mask, twilio_scrub), never
 * a code or a secret. The seal's associated data binds the code to its
 * login and delivery.
 */
#include "mfa/delivery.h"
#include "mfa/phone.h"
#include "mfa/sms_text.h"
#include "runtime/dispatch.h"
#include "sms.h"
#include "store.h"
#include "util/clock.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/* The delivery of a job, as audit rows and results name it. */
static struct dispatch_target
sms_target(const char *delivery_id, const char *login_id,
           const char *contact_id, const char *to_masked)
{
    struct dispatch_target t = {
        .channel = "sms",
        .delivery_id = delivery_id,
        .login_id = login_id,
        .contact_id = contact_id,
        .to_masked = to_masked,
    };

    return t;
}

static struct dispatch_target
sms_job_target(const struct sms_job *sj)
{
    return sms_target(sj->delivery_id, sj->login_id, sj->contact_id,
                      sj->to_masked);
}

/* Not sent and never will be ("dropped"), or failed for good ("failed"):
 * the row, an audit entry, the result event (dispatch_end), and the log. */
static enum mfa_verdict
sms_end(struct job *job, const struct dispatch_target *t, const char *status,
        const char *reason, int attempted)
{
    int dropped = strcmp(status, "dropped") == 0;
    enum mfa_verdict v = dispatch_end(job, t, status, reason, attempted);

    if (v == MFA_OK)
        log_kv(dropped ? LOGL_INFO : LOGL_WARN,
               dropped ? "not sent: dropped" : "not sent: failed",
               "delivery_id", t->delivery_id, "to",
               t->to_masked ? t->to_masked : "***", "reason", reason, NULL);
    return v;
}

/* Settings, seal and text: fills sj (call prepared, text rendered).
 * MFA_PENDING when ready to submit, else the job's verdict. */
static enum mfa_verdict
sms_prepare(struct job *job, struct sms_job *sj, struct store_user *u,
            long minutes_left)
{
    struct sms_state *st = sj->st;
    struct dispatch_target t = sms_job_target(sj);
    struct sms_text_vars tv;
    char clear[MFA_CODE_MAX + 1], why[300];
    enum mfa_verdict v;
    int rc;

    /* The settings came with the user's row (store_user_from). */
    if (u->settings != 1) {
        if (u->settings == -2)
            log_error("%s", u->settings_why);
        return sms_end(
            job, &t, "failed",
            u->settings == 0 ? "sms settings incomplete" : u->settings_why, 0);
    }
    rc = twilio_call_prepare(&sj->call, &st->cfg->sms, &u->acct, why,
                             sizeof(why));
    twilio_account_wipe(&u->acct);
    if (rc != 0) {
        job_fail(job, "%s", why);
        return MFA_RETRY;
    }

    if (dispatch_code_open(job, &t, st->keys->seal, clear, sizeof(clear), &v) !=
        0)
        return v;
    memset(&tv, 0, sizeof(tv));
    tv.code = clear;
    tv.minutes = minutes_left;
    tv.portal_name = st->cfg->templates.portal_name;
    tv.webotp_domain = st->cfg->sms.webotp_domain;
    rc = sms_text_render(st->tmpl, tmpl_locale(st->tmpl, u->locale), &tv,
                         &sj->text, why, sizeof(why));
    sodium_memzero(clear, sizeof(clear));
    if (rc != 0) {
        job_fail(job, "render: %s", why);
        return MFA_RETRY;
    }
    return MFA_PENDING;
}

static enum mfa_verdict
sms_code(struct job *job)
{
    const struct envelope *ev = job_event(job);
    const char *did = ev->u.dispatch_code.delivery_id;
    const char *lid = ev->u.dispatch_code.login_id;
    const char *cid = ev->u.dispatch_code.contact_id;
    struct sms_state *st = worker_state(job_worker(job));
    struct dispatch_target t = sms_target(did, lid, cid, NULL);
    struct dispatch_facts f;
    struct delivery_code code;
    struct store_user user;
    struct sms_job *sj = NULL;
    char why[200], masked[32];
    enum mfa_verdict v;
    int rc;

    memset(&user, 0, sizeof(user));
    if (dispatch_start(job, &t, &f, "an SMS code", &v) <= 0)
        goto out;
    if (sms_in_flight(st, did)) {
        /* A redelivery while the first copy still waits for Twilio (the
         * broker connection dropped): sending now could double the SMS.
         * Later, the delivery row will be final. */
        job_fail(job, "delivery %s is already in flight here", did);
        v = MFA_RETRY;
        goto out;
    }
    rc = dispatch_code_alive(job, &t, &f, st->cfg->codes.min_remaining_seconds,
                             &code, &v);
    if (rc < 0)
        goto out;
    if (rc == 0) {
        v = sms_end(job, &t, "dropped", code.why, 0);
        goto out;
    }
    rc = store_user_from(&f, st->keys, &st->settings, &user);
    if (rc == 0 || !user.enabled || user.phone[0] == '\0') {
        v = sms_end(job, &t, "dropped", "no valid phone number", 0);
        goto out;
    }
    phone_mask(user.phone, masked, sizeof(masked));
    t.to_masked = masked;
    if (user.blocked[0] != '\0') {
        snprintf(why, sizeof(why), "sms blocked for this number: %s",
                 user.blocked);
        v = sms_end(job, &t, "dropped", why, 0);
        goto out;
    }

    sj = sms_job_new(st, job);
    snprintf(sj->delivery_id, sizeof(sj->delivery_id), "%s", did);
    snprintf(sj->login_id, sizeof(sj->login_id), "%s", lid);
    snprintf(sj->contact_id, sizeof(sj->contact_id), "%s", cid);
    snprintf(sj->to, sizeof(sj->to), "%s", user.phone);
    snprintf(sj->to_masked, sizeof(sj->to_masked), "%s", masked);
    sj->deadline_ms = clock_mono_ms() + code.seconds_left * 1000LL;
    v = sms_prepare(job, sj, &user, code.minutes_left);
    if (v != MFA_PENDING)
        goto out;
    if (sms_submit(st, sj) != 0) {
        job_fail(job, "sms: cannot start the request");
        v = MFA_RETRY;
        goto out;
    }
    job_set_data(job, sj);
    log_kv(LOGL_DEBUG, "sending", "delivery_id", did, "to", masked, NULL);
    sj = NULL; /* the request owns it now */
out:
    sms_job_free(sj);
    sodium_memzero(&user, sizeof(user));
    dispatch_facts_free(&f);
    return v;
}

enum mfa_verdict
sms_handle(struct job *job)
{
    const struct envelope *ev = job_event(job);

    if (ev->type == EV_DISPATCH_CODE)
        return sms_code(job);
    job_fail(job, "mfa-sms does not handle %s events", ev->type_name);
    return MFA_REJECT;
}

/* A database error in the completion: keep the outcome for the re-run
 * that follows a lost connection or a deadlock; otherwise the job goes to
 * the retry tiers and starts again from the handler's checks. */
static enum mfa_verdict
sms_complete_db_fail(struct job *job, struct sms_job *sj)
{
    if (job_db(job)->last == DB_ERR_QUERY) {
        job_set_data(job, NULL);
        sms_job_free(sj);
    }
    return dispatch_db_fail(job);
}

/* Twilio took it. */
static enum mfa_verdict
sms_sent(struct job *job, struct sms_job *sj)
{
    struct dispatch_target t = sms_job_target(sj);
    enum mfa_verdict v = dispatch_sent(job, &t, sj->res.sid);

    if (v != MFA_OK)
        return v;
    log_kv(LOGL_INFO, "sent", "delivery_id", sj->delivery_id, "to",
           sj->to_masked, "message_sid", sj->res.sid, "twilio_status",
           sj->res.status, NULL);
    return MFA_OK;
}

/* 21610 / 21614 say something about the number, not the message. */
static int
sms_block_if_needed(struct job *job, struct sms_job *sj)
{
    const char *why = sj->res.error_code == 21610   ? "21610 unsubscribed"
                      : sj->res.error_code == 21614 ? "21614 not a mobile "
                                                      "number"
                                                    : NULL;
    struct dispatch_target t = sms_job_target(sj);
    struct json_object *a;

    if (why == NULL)
        return 0;
    if (store_block_phone(job_db(job), sj->contact_id, sj->to, why) != 0)
        return -1;
    a = json_object_new_object();
    dispatch_detail_add(a, "delivery_id", sj->delivery_id);
    dispatch_detail_add(a, "phone", sj->to_masked);
    dispatch_detail_add(a, "reason", why);
    log_kv(LOGL_WARN, "sms blocked for this user's number", "contact_id",
           sj->contact_id, "phone", sj->to_masked, "reason", why, NULL);
    return dispatch_audit(job, &t, "sms.phone_blocked", a);
}

/* One more try later: attempts+1, last_error, effects kept. */
static enum mfa_verdict
sms_again(struct job *job, struct sms_job *sj, int ambiguous)
{
    struct dispatch_target t = sms_job_target(sj);
    enum mfa_verdict v;
    char ra[24];

    if (dispatch_attempt(job, &t, sj->res.text, ambiguous, NULL, &v) <= 0)
        return v;
    snprintf(ra, sizeof(ra), "%ld", sj->res.retry_after);
    job_fail(job, "%s", sj->res.text);
    job_keep_effects(job);
    /* Retry-After is logged, not obeyed: the runtime's retry tiers set
     * the delay (they cannot be told a per-message one). */
    log_kv(LOGL_WARN,
           ambiguous ? "possible duplicate: ambiguous answer, one retry "
                       "with the same code"
                     : "not processed by Twilio; will retry",
           "delivery_id", sj->delivery_id, "to", sj->to_masked, "error",
           sj->res.text, "retry_after", sj->res.retry_after >= 0 ? ra : "",
           NULL);
    return MFA_RETRY;
}

/* Twilio's answer, recorded in a transaction of its own. */
enum mfa_verdict
sms_complete(struct job *job)
{
    struct sms_job *sj = job_data(job);
    const struct twilio_result *r;
    struct dispatch_target t;
    struct delivery del;
    char reason[400];
    enum mfa_verdict v = MFA_OK;
    int rc;

    if (sj == NULL) {
        /* Only after a statement of an earlier run of this completion
         * failed (sms_complete_db_fail): the outcome is gone, start over. */
        job_fail(job, "outcome of the Twilio request lost with the "
                      "database; starting over");
        return MFA_RETRY;
    }
    r = &sj->res;
    t = sms_job_target(sj);
    if (!sj->not_sent && r->outcome == TWILIO_SENT) {
        /* The common case needs no read: the write says whether the
         * delivery was still queued. */
        v = sms_sent(job, sj);
        goto checked;
    }
    rc = delivery_get_locked(job_db(job), sj->delivery_id, &del);
    if (rc < 0)
        return sms_complete_db_fail(job, sj);
    if (rc == 0 || delivery_is_final(del.status)) {
        log_kv(LOGL_WARN, "delivery final before the request finished",
               "delivery_id", sj->delivery_id, NULL);
        goto done;
    }
    if (sj->not_sent) {
        /* Never went out: waited until the code was about to expire. */
        v = sms_end(job, &t, "dropped", sj->not_sent_why, 0);
        goto checked;
    }
    switch (r->outcome) {
    case TWILIO_SENT: break; /* above */
    case TWILIO_RETRY:
        if (!job_last_attempt(job)) {
            v = sms_again(job, sj, 0);
            break;
        }
        snprintf(reason, sizeof(reason), "%s (gave up after %ld attempts)",
                 r->text, del.attempts + 1);
        v = sms_end(job, &t, "failed", reason, 1);
        break;
    case TWILIO_AMBIGUOUS:
        if (!del.possible_duplicate && !job_last_attempt(job)) {
            v = sms_again(job, sj, 1);
            break;
        }
        snprintf(reason, sizeof(reason), "%s (%s)", r->text,
                 del.possible_duplicate
                     ? "ambiguous again after one retry; not retried"
                     : "ambiguous; no retry left");
        v = sms_end(job, &t, "failed", reason, 1);
        break;
    case TWILIO_REFUSED:
        v = sms_end(job, &t, "failed", r->text, 1);
        if (v == MFA_OK && sms_block_if_needed(job, sj) != 0)
            v = dispatch_db_fail(job);
        break;
    case TWILIO_AUTH:
        log_kv(LOGL_ERROR,
               "Twilio refused the credentials of the SMS settings; check "
               "them with `mfactl settings sms show` and `test`",
               "http", r->http == 401 ? "401" : "403", "error", r->text, NULL);
        snprintf(reason, sizeof(reason), "%s (check the SMS settings)",
                 r->text);
        v = sms_end(job, &t, "failed", reason, 1);
        break;
    }
checked:
    /* A statement failed (the last one run says so): see
     * sms_complete_db_fail. A planned retry ran its statements fine. */
    if (v == MFA_RETRY && job_db(job)->last != DB_OK)
        return sms_complete_db_fail(job, sj);
done:
    return v; /* sj stays with the job until it is freed (data_free) */
}
