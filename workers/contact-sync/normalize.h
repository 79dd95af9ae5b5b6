/*
 * normalize.h - turns the CRM's email and phone text into the stored
 * fields of a contact_rec (value, status, reason).
 */
#ifndef CONTACT_NORMALIZE_H
#define CONTACT_NORMALIZE_H

#include "record.h"

/*
 * value NULL (null, "" or absent where required) -> missing; an address
 * addr_email_check() refuses -> invalid with its reason, email NULL;
 * otherwise valid. email_confirmed is the caller's business.
 */
void normalize_email(struct contact_rec *r, const char *value);

/*
 * Stores input as the phone number as given and validates it for the
 * record's country (uppercased), else default_region: valid -> E.164, type
 * and SMS capability; invalid -> phone_e164 NULL with the reason; NULL ->
 * missing. Does not touch phone_sms_blocked. 0, or -1 when the checker
 * itself failed (out of memory): the caller retries later.
 */
int normalize_phone(struct contact_rec *r, const char *input,
                    const char *default_region)
    __attribute__((warn_unused_result));

/* Copies value uppercased (ISO 3166 codes are stored in capitals). */
void normalize_country(struct contact_rec *r, const char *value);

#endif
