/*
 * handler.c - mfa-contact-sync: applies one CRM contact event.
 *
 * Called by the runtime (worker_spec.handle) inside the transaction that
 * claimed the inbox row, so a duplicate event_id never gets here twice.
 * Per event: lock the user's row, drop the event if it is older than the
 * last one applied (ordering by occurred_at, audited as "stale"), compute
 * the new row, write it, then the consequences (effects.c) of what
 * changed. Security notes: contact data comes only from the CRM through
 * here (the portal's role cannot write it); a changed email or phone ends
 * the codes on their way to the old destination and tells the old
 * address; logs and audit rows carry masked values only.
 */
#include "handler.h"

#include <stdio.h>
#include <string.h>

#include "mfa/addr.h"
#include "util/log.h"

#include "effects.h"
#include "normalize.h"
#include "record.h"

/* mfa.audit actions besides the event types themselves. */
#define AUDIT_CONFIRM_MISMATCH "email.confirm_mismatch"

/* The row before and after one event. */
struct sync {
    struct job *job;
    const struct envelope *ev;
    const char *contact_id;
    struct contact_rec old;
    struct contact_rec now;
    enum rec_found found;
};

static enum mfa_verdict
sync_dberr(struct sync *s, const char *what)
{
    job_fail(s->job, "%s: %s", what, job_db(s->job)->errmsg);
    return MFA_RETRY;
}

/* The checker itself failed (out of memory): not the input's fault. */
static enum mfa_verdict
sync_phone_failed(struct sync *s)
{
    job_fail(s->job, "phone check failed (internal error)");
    return MFA_RETRY;
}

static const char *
sync_default_region(struct sync *s)
{
    return worker_config(job_worker(s->job))->phone.default_region;
}

/* Same mailbox: both absent, or equal ignoring ASCII case. */
static int
sync_same_email(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return addr_email_equal_ci(a, b);
}

/* An event older than the last applied one changes nothing. */
static enum mfa_verdict
sync_stale(struct sync *s)
{
    struct json_object *d = json_object_new_object();

    log_kv(LOGL_WARN, "stale event ignored", "contact_id", s->contact_id,
           "type", s->ev->type_name, "occurred_at", s->ev->occurred_at, NULL);
    json_object_object_add(d, "reason",
                           json_object_new_string("older than the last "
                                                  "applied change"));
    if (effects_audit(s->job, "stale", s->contact_id, d) != 0)
        return sync_dberr(s, "audit");
    return MFA_OK;
}

/* Changes and confirmations for a contact that was never promoted. */
static enum mfa_verdict
sync_unknown(struct sync *s)
{
    log_kv(LOGL_WARN, "event for an unknown contact ignored", "contact_id",
           s->contact_id, "type", s->ev->type_name, NULL);
    if (effects_audit(s->job, "unknown_contact", s->contact_id, NULL) != 0)
        return sync_dberr(s, "audit");
    return MFA_OK;
}

/* The audit detail of an applied change: statuses and masks only. */
static struct json_object *
sync_detail(const struct contact_rec *r, int email_changed, int phone_changed,
            int noticed)
{
    struct json_object *d = json_object_new_object();
    struct json_object *ch = json_object_new_array();
    char em[ADDR_EMAIL_MAX + 8], ph[64];

    if (email_changed)
        json_object_array_add(ch, json_object_new_string("email"));
    if (phone_changed)
        json_object_array_add(ch, json_object_new_string("phone"));
    json_object_object_add(d, "changed", ch);
    effects_mask_email(r->email, em, sizeof(em));
    effects_mask_phone(r->phone_e164, ph, sizeof(ph));
    json_object_object_add(d, "email", json_object_new_string(em));
    json_object_object_add(d, "email_status",
                           json_object_new_string(r->email_status));
    if (r->email_reason)
        json_object_object_add(d, "email_reason",
                               json_object_new_string(r->email_reason));
    json_object_object_add(d, "phone", json_object_new_string(ph));
    json_object_object_add(d, "phone_status",
                           json_object_new_string(r->phone_status));
    if (r->phone_reason)
        json_object_object_add(d, "phone_reason",
                               json_object_new_string(r->phone_reason));
    json_object_object_add(d, "enabled", json_object_new_boolean(r->enabled));
    json_object_object_add(d, "notice", json_object_new_boolean(noticed));
    return d;
}

/*
 * Writes s->now over s->old and carries out what changed: a new email is
 * unconfirmed, a new number is no longer blocked, the old destinations'
 * codes end, the old confirmed address hears of it (the writes in one
 * round trip: effects_commit).
 */
static enum mfa_verdict
sync_commit_change(struct sync *s, const char *action)
{
    struct contact_rec *o = &s->old, *n = &s->now;
    int email_changed = !sync_same_email(o->email, n->email);
    int phone_changed = !record_same(o->phone_e164, n->phone_e164);
    int notice = (email_changed || phone_changed) && o->email != NULL &&
                 o->email_confirmed && n->enabled;
    char em[ADDR_EMAIL_MAX + 8], ph[64], nid[ADDR_UUID_LEN + 1];
    struct effects_set fx = {.notice = notice};
    struct json_object *detail;

    if (email_changed)
        n->email_confirmed = 0;
    if (n->email == NULL)
        n->email_confirmed = 0;
    /* A block is about a number (unsubscribed, not a mobile); a new
     * number starts clean. */
    if (phone_changed)
        record_set(&n->phone_sms_blocked, NULL);
    if (email_changed && phone_changed)
        fx.supersede = "{email,sms}";
    else if (email_changed)
        fx.supersede = "{email}";
    else if (phone_changed)
        fx.supersede = "{sms}";
    if (effects_commit(job_db(s->job), n, s->ev->occurred_at_us, email_changed,
                       &fx, nid) != 0)
        return sync_dberr(s, "update user");
    if (notice)
        effects_notice(s->job, n, o->email, nid);
    detail = sync_detail(n, email_changed, phone_changed, notice);
    if (effects_audit(s->job, action, s->contact_id, detail) != 0)
        return sync_dberr(s, "audit");
    effects_synced(s->job, n);
    effects_mask_email(n->email, em, sizeof(em));
    effects_mask_phone(n->phone_e164, ph, sizeof(ph));
    log_kv(LOGL_INFO, action, "contact_id", s->contact_id, "email", em,
           "email_status", n->email_status, "phone", ph, "phone_status",
           n->phone_status, "email_changed", email_changed ? "yes" : "no",
           "phone_changed", phone_changed ? "yes" : "no", NULL);
    return MFA_OK;
}

/* The promotion's fields over s->now (a copy of the old row or blank).
 * 0, or -1 when the phone checker failed. */
static int
sync_apply_promoted(struct sync *s)
{
    const struct envelope *ev = s->ev;
    struct contact_rec *n = &s->now;
    const char *name;

    record_set(&n->contact_id, s->contact_id);
    record_set(&n->organization_id, ev->u.promoted.organization_id);
    /* "" clears, as in contact.changed: one spelling for "no name". */
    name = ev->u.promoted.display_name;
    record_set(&n->display_name, name != NULL && name[0] ? name : NULL);
    if (ev->u.promoted.country.present)
        normalize_country(n, ev->u.promoted.country.value);
    if (ev->u.promoted.locale.present)
        record_set(&n->locale, ev->u.promoted.locale.value);
    normalize_email(n, ev->u.promoted.email.value);
    n->enabled = 1;
    return normalize_phone(n, ev->u.promoted.phone.value,
                           sync_default_region(s));
}

static enum mfa_verdict
sync_promote(struct sync *s)
{
    struct db *db = job_db(s->job);
    char em[ADDR_EMAIL_MAX + 8], ph[64];
    int tries, rc;

    for (tries = 0; tries < 2; tries++) {
        if (record_load(db, s->contact_id, s->ev->occurred_at_us, 0, &s->old,
                        &s->found) != 0)
            return sync_dberr(s, "load user");
        if (s->found == REC_STALE)
            return sync_stale(s);
        if (s->found == REC_FOUND) {
            record_copy(&s->now, &s->old);
            if (sync_apply_promoted(s) != 0)
                return sync_phone_failed(s);
            return sync_commit_change(s, "contact.promoted");
        }
        if (sync_apply_promoted(s) != 0)
            return sync_phone_failed(s);
        rc = record_insert(db, &s->now, s->ev->occurred_at_us);
        if (rc < 0)
            return sync_dberr(s, "insert user");
        if (rc == 1)
            break;
        /* Another worker created it between our load and insert: its row
         * is committed now, so load it (locked) and update instead. */
        record_free(&s->now);
    }
    if (tries == 2) {
        job_fail(s->job, "user %s neither found nor insertable", s->contact_id);
        return MFA_RETRY;
    }
    if (effects_audit(s->job, "contact.created", s->contact_id,
                      sync_detail(&s->now, 0, 0, 0)) != 0)
        return sync_dberr(s, "audit");
    effects_synced(s->job, &s->now);
    effects_mask_email(s->now.email, em, sizeof(em));
    effects_mask_phone(s->now.phone_e164, ph, sizeof(ph));
    log_kv(LOGL_INFO, "contact.created", "contact_id", s->contact_id, "email",
           em, "email_status", s->now.email_status, "phone", ph, "phone_status",
           s->now.phone_status, NULL);
    return MFA_OK;
}

static enum mfa_verdict
sync_change(struct sync *s)
{
    const struct envelope *ev = s->ev;
    struct contact_rec *n = &s->now;

    if (record_load(job_db(s->job), s->contact_id, ev->occurred_at_us, 0,
                    &s->old, &s->found) != 0)
        return sync_dberr(s, "load user");
    if (s->found == REC_NONE)
        return sync_unknown(s);
    if (s->found == REC_STALE)
        return sync_stale(s);
    record_copy(n, &s->old);
    if (ev->u.changed.country.present)
        normalize_country(n, ev->u.changed.country.value);
    if (ev->u.changed.display_name.present)
        record_set(&n->display_name, ev->u.changed.display_name.value);
    if (ev->u.changed.locale.present)
        record_set(&n->locale, ev->u.changed.locale.value);
    if (ev->u.changed.email.present)
        normalize_email(n, ev->u.changed.email.value);
    if (ev->u.changed.phone.present) {
        if (normalize_phone(n, ev->u.changed.phone.value,
                            sync_default_region(s)) != 0)
            return sync_phone_failed(s);
    } else if (!record_same(s->old.country, n->country) && n->phone_input) {
        /* A number written without a country code means something else
         * in another country: read the stored one again. */
        if (normalize_phone(n, n->phone_input, sync_default_region(s)) != 0)
            return sync_phone_failed(s);
    }
    return sync_commit_change(s, "contact.changed");
}

static enum mfa_verdict
sync_demote(struct sync *s)
{
    struct db *db = job_db(s->job);
    const struct effects_set fx = {.supersede = "{email,sms}",
                                   .cancel_logins = 1};

    if (record_load(db, s->contact_id, s->ev->occurred_at_us, 0, &s->old,
                    &s->found) != 0)
        return sync_dberr(s, "load user");
    if (s->found == REC_NONE)
        return sync_unknown(s);
    if (s->found == REC_STALE)
        return sync_stale(s);
    record_copy(&s->now, &s->old);
    s->now.enabled = 0;
    /* A demoted user must not finish a login already under way. */
    if (effects_commit(db, &s->now, s->ev->occurred_at_us, 0, &fx, NULL) != 0)
        return sync_dberr(s, "update user");
    if (effects_audit(s->job, "contact.demoted", s->contact_id, NULL) != 0)
        return sync_dberr(s, "audit");
    effects_synced(s->job, &s->now);
    log_kv(LOGL_INFO, "contact.demoted", "contact_id", s->contact_id, NULL);
    return MFA_OK;
}

static enum mfa_verdict
sync_confirm(struct sync *s)
{
    struct db *db = job_db(s->job);
    const char *given = s->ev->u.email_confirmed.email;
    struct json_object *d;
    char em[ADDR_EMAIL_MAX + 8];

    if (record_load(db, s->contact_id, s->ev->occurred_at_us, 1, &s->old,
                    &s->found) != 0)
        return sync_dberr(s, "load user");
    if (s->found == REC_NONE)
        return sync_unknown(s);
    if (s->found == REC_STALE)
        return sync_stale(s);
    effects_mask_email(given, em, sizeof(em));
    d = json_object_new_object();
    json_object_object_add(d, "email", json_object_new_string(em));
    if (s->old.email == NULL || !addr_email_equal_ci(s->old.email, given)) {
        /* A confirmation of an address the user no longer has (or never
         * had) proves nothing about the current one. */
        log_kv(LOGL_WARN,
               "email confirmation does not match the current "
               "email; ignored",
               "contact_id", s->contact_id, "email", em, NULL);
        if (effects_audit(s->job, AUDIT_CONFIRM_MISMATCH, s->contact_id, d))
            return sync_dberr(s, "audit");
        return MFA_OK;
    }
    if (!s->old.email_confirmed &&
        record_confirm_email(db, s->contact_id) != 0) {
        json_object_put(d);
        return sync_dberr(s, "confirm email");
    }
    s->old.email_confirmed = 1;
    if (effects_audit(s->job, "email.confirmed", s->contact_id, d) != 0)
        return sync_dberr(s, "audit");
    effects_synced(s->job, &s->old);
    log_kv(LOGL_INFO, "email confirmed", "contact_id", s->contact_id, "email",
           em, NULL);
    return MFA_OK;
}

enum mfa_verdict
contact_handle(struct job *job)
{
    struct sync s;
    enum mfa_verdict v;

    memset(&s, 0, sizeof(s));
    s.job = job;
    s.ev = job_event(job);
    switch (s.ev->type) {
    case EV_CONTACT_PROMOTED:
        s.contact_id = s.ev->u.promoted.contact_id;
        v = sync_promote(&s);
        break;
    case EV_CONTACT_CHANGED:
        s.contact_id = s.ev->u.changed.contact_id;
        v = sync_change(&s);
        break;
    case EV_CONTACT_DEMOTED:
        s.contact_id = s.ev->u.demoted.contact_id;
        v = sync_demote(&s);
        break;
    case EV_USER_EMAIL_CONFIRMED:
        s.contact_id = s.ev->u.email_confirmed.contact_id;
        v = sync_confirm(&s);
        break;
    default:
        /* Routed here by mistake (a binding or a producer bug): it will
         * never succeed here, so dead-letter it now. */
        job_fail(job, "mfa-contact-sync does not handle %s events",
                 s.ev->type_name ? s.ev->type_name : "unknown");
        v = MFA_REJECT;
        break;
    }
    record_free(&s.old);
    record_free(&s.now);
    return v;
}
