/*
 * effects.h - what a contact change does beyond the user's row: codes
 * superseded, logins cancelled, the change notice, audit rows and the
 * contact.synced result.
 */
#ifndef CONTACT_EFFECTS_H
#define CONTACT_EFFECTS_H

#include <json-c/json.h>

#include "runtime/worker.h"

#include "record.h"

/* What a change of the user's row brings about besides. */
struct effects_set {
    /* Channels whose live codes end ("{email}", "{sms}", "{email,sms}"),
     * NULL for none. */
    const char *supersede;
    int cancel_logins; /* end the open logins (pending, code_sent) */
    int notice;        /* queue a change notice delivery (effects_notice) */
};

/*
 * Writes r back over the user's row (RECORD_UPDATE_SQL: applied at at_us,
 * email_changed moves email_set_at) and does what fx asks, all in one
 * round trip. With fx->notice, notice_id (ADDR_UUID_LEN + 1 bytes) gets
 * the id of the queued notice delivery row for effects_notice(). 0 or -1.
 */
int effects_commit(struct db *db, const struct contact_rec *r, int64_t at_us,
                   int email_changed, const struct effects_set *fx,
                   char *notice_id) __attribute__((warn_unused_result));

/*
 * Tells old_email that the contact details of now changed: the
 * dispatch.notice job for mfa-email (published after COMMIT) of the
 * delivery row notice_id that effects_commit() queued.
 */
void effects_notice(struct job *job, const struct contact_rec *now,
                    const char *old_email, const char *notice_id);

/*
 * One mfa.audit row by mfa-contact-sync for the job's event. detail (may
 * be NULL; ownership taken) must hold masked values only. 0 or -1.
 */
int effects_audit(struct job *job, const char *action, const char *contact_id,
                  struct json_object *detail)
    __attribute__((warn_unused_result));

/* contact.synced {contact_id, email_status, phone_status, email_confirmed,
 * enabled} to mfa.results: statuses only, never an address or number. */
void effects_synced(struct job *job, const struct contact_rec *r);

/* Masked forms for logs and audit details ("***" when NULL). */
void effects_mask_email(const char *email, char *out, size_t n);
void effects_mask_phone(const char *e164, char *out, size_t n);

#endif
