/*
 * store.h - mfa-sms's own reads and writes on mfa.users: the phone a code
 * goes to (with the SMS settings row, in one query), and the block
 * Twilio's 21610/21614 put on it. The delivery and code rows are shared
 * with mfa-email (mfa/delivery.h), the audit trail with every worker
 * (mfa/audit.h). All run on the job's connection, inside the runtime's
 * transaction.
 */
#ifndef SMS_STORE_H
#define SMS_STORE_H

#include "mfa/db.h"
#include "runtime/dispatch.h"
#include "mfa/sms_settings.h"

/* The user's phone as it is now, and the SMS settings read with it. */
struct store_user {
    char phone[20]; /* E.164; "" when none or not valid */
    char locale[36];
    char blocked[128]; /* phone_sms_blocked; "" when not */
    int enabled;
    /* sms_settings_use's verdict: 1 usable (acct holds the secret), 0
     * incomplete, -2 unusable; settings_why says why when not 1. */
    int settings;
    char settings_why[300];
    struct twilio_account acct;
};

/* 1 found, 0 none, -1 database error. The settings row is read in the
 * same query, and checked through cache when the user can be sent to
 * (enabled, a valid phone, not blocked). Wipe out after use: it holds
 * the Twilio secret. */
/* The dispatch read's statement with the user's columns and the SMS
 * settings row. */
extern const char store_read_sql[];

/* The user of a job's facts, the settings checked and opened (for a user
 * the handler will send to): 1, or 0 no such user. */
int store_user_from(const struct dispatch_facts *f, const struct mfa_keys *keys,
                    struct sms_settings_cache *cache, struct store_user *out);

int store_block_phone(struct db *db, const char *contact_id, const char *phone,
                      const char *why) __attribute__((warn_unused_result));

#endif
