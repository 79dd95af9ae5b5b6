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

/* Ends the live codes of contact_id's logins on channel ("email", "sms"),
 * or on every channel when channel is NULL. 0 or -1. */
int effects_supersede_codes(struct db *db, const char *contact_id,
                            const char *channel)
    __attribute__((warn_unused_result));

/* Cancels contact_id's open logins (pending, code_sent). 0 or -1. */
int effects_cancel_logins(struct db *db, const char *contact_id)
    __attribute__((warn_unused_result));

/*
 * Tells old_email that the contact details of now changed: a queued
 * notice delivery row and a dispatch.notice job for mfa-email (published
 * after COMMIT). 0 or -1.
 */
int effects_notice(struct job *job, const struct contact_rec *now,
                   const char *old_email) __attribute__((warn_unused_result));

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
