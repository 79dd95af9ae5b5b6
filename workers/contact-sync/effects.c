/*
 * effects.c - the consequences of a contact event beyond mfa.users.
 *
 * Called by handler.c inside the runtime's transaction; follow-ups go
 * through job_emit() and are published only after COMMIT. effects_commit()
 * writes the user's row (record.h's statement) and its consequences in
 * one round trip. Security notes:
 * a changed destination must end the codes already on their way to the
 * old one (so a code sent to a mailbox or number the user lost cannot be
 * used), and the old address is told of the change so a takeover through
 * the CRM does not go unnoticed. Audit details and results hold statuses
 * and masked values only; the full address travels only in the notice
 * job, which is what mfa-email needs to send it.
 */
#include "effects.h"

#include <stdio.h>
#include <string.h>

#include "mfa/addr.h"
#include "mfa/audit.h"
#include "mfa/phone.h"
#include "runtime/topology.h"
#include "util/log.h"

#define EFFECTS_ACTOR "mfa-contact-sync"

/*
 * The user's row and its consequences in one statement. The codes and
 * logins touched are the user's, whose row this transaction has locked
 * (record_load) before any of them: every writer of those rows takes the
 * user's lock first, so their order inside the statement cannot deadlock.
 * A live code is neither used nor superseded; its login is the user's.
 * Each consequence is off (a one-time filter, nothing scanned) unless its
 * parameter asks for it: $20 the channels whose codes end, $21 cancel the
 * open logins, $22 the notice delivery's id.
 */
static const char SQL_COMMIT[] =
    "WITH u AS (" RECORD_UPDATE_SQL "), "
    "c AS (UPDATE mfa.codes c SET superseded_at = now() "
    " FROM mfa.logins l "
    " WHERE $20::text[] IS NOT NULL AND c.login_id = l.login_id "
    " AND l.contact_id = $1 AND c.channel = ANY ($20::text[]) "
    " AND c.used_at IS NULL AND c.superseded_at IS NULL), "
    "l AS (UPDATE mfa.logins SET status = 'cancelled' "
    " WHERE $21::boolean AND contact_id = $1 "
    " AND status IN ('pending', 'code_sent')), "
    "n AS (INSERT INTO mfa.deliveries (delivery_id, contact_id, kind, "
    " channel, status) "
    " SELECT $22::uuid, $1::text, 'notice', 'email', 'queued' "
    " WHERE $22::uuid IS NOT NULL) "
    "SELECT 1";

void
effects_mask_email(const char *email, char *out, size_t n)
{
    if (email == NULL)
        snprintf(out, n, "***");
    else
        addr_email_mask(email, out, n);
}

void
effects_mask_phone(const char *e164, char *out, size_t n)
{
    if (e164 == NULL)
        snprintf(out, n, "***");
    else
        phone_mask(e164, out, n);
}

int
effects_commit(struct db *db, const struct contact_rec *r, int64_t at_us,
               int email_changed, const struct effects_set *fx, char *notice_id)
{
    const char *p[REC_NPARAMS + 3];
    char at[40];

    record_params(r, at_us, email_changed, at, p);
    p[REC_NPARAMS] = fx->supersede;
    p[REC_NPARAMS + 1] = fx->cancel_logins ? "true" : "false";
    p[REC_NPARAMS + 2] = NULL;
    if (fx->notice) {
        addr_uuid_new(notice_id);
        p[REC_NPARAMS + 2] = notice_id;
    }
    return db_exec(db, SQL_COMMIT, REC_NPARAMS + 3, p);
}

/* json-c string or null. */
static struct json_object *
effects_str(const char *s)
{
    return s != NULL ? json_object_new_string(s) : NULL;
}

void
effects_notice(struct job *job, const struct contact_rec *now,
               const char *old_email, const char *notice_id)
{
    char masked[ADDR_EMAIL_MAX + 8];
    struct json_object *d;

    d = json_object_new_object();
    json_object_object_add(d, "delivery_id", json_object_new_string(notice_id));
    json_object_object_add(d, "contact_id",
                           json_object_new_string(now->contact_id));
    json_object_object_add(d, "template",
                           json_object_new_string("contact_changed"));
    json_object_object_add(d, "to", json_object_new_string(old_email));
    json_object_object_add(d, "locale", effects_str(now->locale));
    json_object_object_add(d, "display_name", effects_str(now->display_name));
    job_emit(job, MFA_EX_DISPATCH, "email", "dispatch.notice", d);
    effects_mask_email(old_email, masked, sizeof(masked));
    log_kv(LOGL_INFO, "change notice queued", "contact_id", now->contact_id,
           "delivery_id", notice_id, "to", masked, NULL);
}

int
effects_audit(struct job *job, const char *action, const char *contact_id,
              struct json_object *detail)
{
    /* A contact event belongs to no login: login_id stays NULL. */
    return audit_event(job_db(job), EFFECTS_ACTOR, action, contact_id, NULL,
                       job_event(job), detail);
}

void
effects_synced(struct job *job, const struct contact_rec *r)
{
    struct json_object *d = json_object_new_object();

    json_object_object_add(d, "contact_id",
                           json_object_new_string(r->contact_id));
    json_object_object_add(d, "email_status",
                           json_object_new_string(r->email_status));
    json_object_object_add(d, "phone_status",
                           json_object_new_string(r->phone_status));
    json_object_object_add(d, "email_confirmed",
                           json_object_new_boolean(r->email_confirmed));
    json_object_object_add(d, "enabled", json_object_new_boolean(r->enabled));
    job_emit(job, MFA_EX_RESULTS, "contact.synced", "contact.synced", d);
}
