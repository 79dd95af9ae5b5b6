/*
 * audit.c - the INSERT into mfa.audit (see audit.h).
 *
 * Callers: audit_event: codes_audit (workers/codes/handler.c) and
 * effects_audit (workers/contact-sync/effects.c); audit_write: the
 * dispatch steps of mfa-email and mfa-sms (shared/runtime/dispatch.c)
 * and mfactl settings (ctl/cmd_settings.c).
 * It runs on the caller's connection and in the caller's transaction
 * (in a worker's batch, kept until the COMMIT: db_defer).
 *
 * Security notes: the row is written as given; keeping secrets and clear
 * addresses out of action and detail is the callers' duty (they mask with
 * addr_email_mask and phone_mask). Values are bound parameters, never
 * spliced into the SQL.
 */
#include "mfa/audit.h"
#include "mfa/envelope.h"

#include <json-c/json.h>

static const char SQL_AUDIT[] =
    "INSERT INTO mfa.audit (actor, action, contact_id, login_id, event_id, "
    " detail) VALUES ($1, $2, $3, $4, $5, $6::jsonb)";
/* The rows of a batch in one statement (db_defer_rows). */
static const char SQL_AUDIT_ROWS[] =
    "INSERT INTO mfa.audit (actor, action, contact_id, login_id, event_id, "
    " detail) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], "
    " $4::uuid[], $5::uuid[], $6::jsonb[])";

/* "" means "none" for an id: SQL NULL (a uuid column would refuse ""). */
static const char *
audit_id(const char *id)
{
    return id != NULL && *id != '\0' ? id : NULL;
}

int
audit_write(struct db *db, const char *actor, const char *action,
            const char *contact_id, const char *login_id, const char *event_id,
            const char *detail_json)
{
    const char *p[6] = {actor,
                        action,
                        audit_id(contact_id),
                        audit_id(login_id),
                        audit_id(event_id),
                        detail_json};

    /* Nothing reads an audit row back in the same transaction. */
    return db_defer_rows(db, SQL_AUDIT, SQL_AUDIT_ROWS, 6, p);
}

int
audit_event(struct db *db, const char *actor, const char *action,
            const char *contact_id, const char *login_id,
            const struct envelope *ev, struct json_object *detail)
{
    int rc;

    if (detail == NULL)
        detail = json_object_new_object();
    json_object_object_add(detail, "event_type",
                           json_object_new_string(ev->type_name));
    json_object_object_add(detail, "occurred_at",
                           json_object_new_string(ev->occurred_at));
    rc = audit_write(
        db, actor, action, contact_id, login_id, ev->event_id,
        json_object_to_json_string_ext(detail, JSON_C_TO_STRING_PLAIN));
    json_object_put(detail);
    return rc;
}
