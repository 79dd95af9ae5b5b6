/*
 * normalize.c - the CRM's email and phone text to stored fields.
 *
 * Called by handler.c for contact.promoted / contact.changed. Email syntax
 * is addr_email_check()'s decision, phone numbers are libphonenumber's
 * (through the C shim mfa/phone.h). An unusable value is never stored as a
 * destination: the column stays NULL and the reason is kept, so the user
 * simply has no such method. The envelope parser has already refused
 * control characters, bad UTF-8 and over-long values.
 */
#include "normalize.h"

#include <stdio.h>
#include <string.h>

#include "mfa/addr.h"
#include "mfa/phone.h"

void
normalize_email(struct contact_rec *r, const char *value)
{
    char reason[128];

    record_set(&r->email_reason, NULL);
    if (value == NULL || value[0] == '\0') {
        record_set(&r->email, NULL);
        record_set(&r->email_status, REC_MISSING);
        return;
    }
    if (addr_email_check(value, reason, sizeof(reason)) != 0) {
        record_set(&r->email, NULL);
        record_set(&r->email_status, REC_INVALID);
        record_set(&r->email_reason, reason);
        return;
    }
    record_set(&r->email, value);
    record_set(&r->email_status, REC_VALID);
}

void
normalize_country(struct contact_rec *r, const char *value)
{
    char up[3] = {0};

    /* The envelope let through exactly two ASCII letters, or nothing. */
    if (value == NULL || strlen(value) != 2) {
        record_set(&r->country, NULL);
        return;
    }
    up[0] = (char)(value[0] & ~0x20);
    up[1] = (char)(value[1] & ~0x20);
    record_set(&r->country, up);
}

int
normalize_phone(struct contact_rec *r, const char *input,
                const char *default_region)
{
    struct phone_result res;
    const char *region = r->country ? r->country : default_region;
    int rc = -1;

    record_set(&r->phone_input, input != NULL && input[0] ? input : NULL);
    record_set(&r->phone_e164, NULL);
    record_set(&r->phone_reason, NULL);
    record_set(&r->phone_type, NULL);
    r->phone_sms_capable = 0;
    if (phone_check(r->phone_input, region, &res) != 0)
        goto out;
    switch (res.status) {
    case PHONE_MISSING:
        /* Whitespace only is no number either: nothing worth keeping. */
        record_set(&r->phone_input, NULL);
        record_set(&r->phone_status, REC_MISSING);
        break;
    case PHONE_INVALID:
        record_set(&r->phone_status, REC_INVALID);
        record_set(&r->phone_reason,
                   res.reason[0] ? res.reason : "invalid number");
        break;
    case PHONE_VALID:
        record_set(&r->phone_status, REC_VALID);
        record_set(&r->phone_e164, res.e164);
        record_set(&r->phone_type, res.type[0] ? res.type : NULL);
        r->phone_sms_capable = res.sms_capable != 0;
        break;
    }
    rc = 0;
out:
    return rc;
}
