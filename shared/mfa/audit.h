/*
 * audit.h - one row of the audit trail, mfa.audit.
 *
 * Every program that records a decision writes it here: the workers
 * (mfa-codes, mfa-contact-sync, mfa-email, mfa-sms) inside the job's
 * transaction, so the row commits with the effect it describes, and
 * mfactl for operator actions. The trail is append-only (INSERT is all
 * the roles may do).
 */
#ifndef MFA_AUDIT_H
#define MFA_AUDIT_H

#include "mfa/db.h"

struct envelope;
struct json_object;

/*
 * Appends one row. actor is the program ("mfa-codes", "mfactl"), action
 * what happened ("code.sent"). contact_id, login_id and event_id may be
 * NULL; an empty one is stored as NULL too. detail_json is a JSON object
 * text (NULL for none) that holds statuses, ids and masked values only,
 * never a code, a secret or a full address. 0, or -1 with db's error.
 */
int audit_write(struct db *db, const char *actor, const char *action,
                const char *contact_id, const char *login_id,
                const char *event_id, const char *detail_json)
    __attribute__((warn_unused_result));

/*
 * A row about ev, the event a worker is handling: event_id is ev's, and
 * detail (taken, even on failure; NULL for {}) gets ev's "event_type"
 * and "occurred_at" added, so the trail says what asked for the change
 * and when. Otherwise like audit_write(). 0 or -1.
 */
int audit_event(struct db *db, const char *actor, const char *action,
                const char *contact_id, const char *login_id,
                const struct envelope *ev, struct json_object *detail)
    __attribute__((warn_unused_result));

#endif
