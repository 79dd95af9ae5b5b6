/*
 * store.h - mfa-sms's own reads and writes on mfa.users: the phone a code
 * goes to, and the block Twilio's 21610/21614 put on it. The delivery and
 * code rows are shared with mfa-email (mfa/delivery.h), the audit trail
 * with every worker (mfa/audit.h). All run on the job's connection,
 * inside the runtime's transaction.
 */
#ifndef SMS_STORE_H
#define SMS_STORE_H

#include "mfa/db.h"

/* The user's phone as it is now. */
struct store_user {
    char phone[20]; /* E.164; "" when none or not valid */
    char locale[36];
    char blocked[128]; /* phone_sms_blocked; "" when not */
    int enabled;
};

/* 1 found, 0 none, -1 database error. Wipe out after use. */
int store_user_get(struct db *db, const char *contact_id,
                   struct store_user *out) __attribute__((warn_unused_result));

/* Records on the user that SMS to phone must not be offered (Twilio
 * 21610/21614), only while phone is still the user's number. */
int store_block_phone(struct db *db, const char *contact_id, const char *phone,
                      const char *why) __attribute__((warn_unused_result));

#endif
