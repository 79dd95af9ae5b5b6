/*
 * sms_settings.h - the system-wide SMS settings row (mfa.settings 'sms').
 *
 * Layout (mfa-codes' methods_sms_settings_complete reads the same row):
 *   value          jsonb {"client_id": "AC…|SK…", "account_sid": "AC…",
 *                         "from": "+E.164"}
 *   secret_sealed  seal_b64(keys->settings, "settings:sms", secret)
 * Written by `mfactl settings sms set|clear`, read by mfa-sms for every
 * job (so an operator's change applies without a restart).
 */
#ifndef MFA_SMS_SETTINGS_H
#define MFA_SMS_SETTINGS_H

#include <stddef.h>

#include "mfa/crypto.h"
#include "mfa/db.h"
#include "mfa/twilio.h"

#define SMS_SETTINGS_NAME "sms"
#define SMS_SETTINGS_AD "settings:sms" /* associated data of the seal */

/*
 * Reads the row and opens the secret into out (wipe it with
 * twilio_account_wipe). Returns 1 when complete and usable; 0 when
 * absent or incomplete (why: "sms settings incomplete"); -2 when stored
 * but unusable (why says which: the secret does not open with this
 * master key, a malformed field); -1 on a database error (db->errmsg; a
 * role without SELECT on secret_sealed gets this too).
 */
int sms_settings_load(struct db *db, const struct mfa_keys *keys,
                      struct twilio_account *out, char *why, size_t whylen)
    __attribute__((warn_unused_result));

/* Inserts or replaces the row, the secret sealed; by -> updated_by.
 * 0 or -1 (db->errmsg). */
int sms_settings_save(struct db *db, const struct mfa_keys *keys,
                      const struct twilio_account *a, const char *by)
    __attribute__((warn_unused_result));

/* Deletes the row: 1 deleted, 0 there was none, -1 database error. */
int sms_settings_clear(struct db *db) __attribute__((warn_unused_result));

/* What operators may see (mfa.settings_state, no secret needed). */
struct sms_settings_view {
    int found;
    int secret_set;
    char client_id[TWILIO_SID_LEN + 1];
    char account_sid[TWILIO_SID_LEN + 1];
    char from[20];
    char updated_at[40];
    char updated_by[64];
};

/* 0 (out->found says whether there is a row) or -1. */
int sms_settings_show(struct db *db, struct sms_settings_view *out)
    __attribute__((warn_unused_result));

#endif
