/*
 * effects.c - the consequences of a contact event beyond mfa.users.
 *
 * Called by handler.c inside the runtime's transaction; follow-ups go
 * through job_emit() and are published only after COMMIT. Security notes:
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

/* A live code is neither used nor superseded; its login is the user's. */
static const char SQL_SUPERSEDE[] =
    "UPDATE mfa.codes c SET superseded_at = now() "
    "FROM mfa.logins l "
    "WHERE c.login_id = l.login_id AND l.contact_id = $1 "
    "AND ($2::text IS NULL OR c.channel = $2) "
    "AND c.used_at IS NULL AND c.superseded_at IS NULL";

static const char SQL_CANCEL[] =
    "UPDATE mfa.logins SET status = 'cancelled' "
    "WHERE contact_id = $1 AND status IN ('pending', 'code_sent')";

static const char SQL_NOTICE[] =
    "INSERT INTO mfa.deliveries (delivery_id, login_id, contact_id, kind, "
    "channel, status) VALUES ($1, NULL, $2, 'notice', 'email', 'queued')";

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
effects_supersede_codes(struct db *db, const char *contact_id,
                        const char *channel)
{
    const char *p[2] = {contact_id, channel};

    return db_exec(db, SQL_SUPERSEDE, 2, p);
}

int
effects_cancel_logins(struct db *db, const char *contact_id)
{
    const char *p[1] = {contact_id};

    return db_exec(db, SQL_CANCEL, 1, p);
}

/* json-c string or null. */
static struct json_object *
effects_str(const char *s)
{
    return s != NULL ? json_object_new_string(s) : NULL;
}

int
effects_notice(struct job *job, const struct contact_rec *now,
               const char *old_email)
{
    char id[ADDR_UUID_LEN + 1], masked[ADDR_EMAIL_MAX + 8];
    const char *p[2] = {id, now->contact_id};
    struct json_object *d;

    addr_uuid_new(id);
    if (db_exec(job_db(job), SQL_NOTICE, 2, p) != 0)
        return -1;
    d = json_object_new_object();
    json_object_object_add(d, "delivery_id", json_object_new_string(id));
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
           "delivery_id", id, "to", masked, NULL);
    return 0;
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
