/*
 * sms_settings.h - the system-wide SMS settings row (mfa.settings 'sms').
 *
 * Layout (mfa-codes' methods_sms_settings_complete reads the same row):
 *   value          jsonb {"client_id": "AC…|SK…", "account_sid": "AC…",
 *                         "from": "+E.164"}
 *   secret_sealed  seal_b64(keys->settings, "settings:sms", secret)
 * Written by `mfactl settings sms set|clear`, read by mfa-sms for every
 * job (so an operator's change applies without a restart; the checks of
 * an unchanged row are remembered, see struct sms_settings_cache).
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

/*
 * For mfa-sms, which reads the row in the query that reads the user's
 * phone (one round trip instead of two): the join to add to that query
 * and its four columns, in the order sms_settings_use takes them.
 */
#define SMS_SETTINGS_JOIN                                                      \
    "LEFT JOIN mfa.settings s ON s.name = '" SMS_SETTINGS_NAME "'"
#define SMS_SETTINGS_COLUMNS                                                   \
    "s.value->>'client_id', s.value->>'account_sid', s.value->>'from', "       \
    "s.secret_sealed"
#define SMS_SETTINGS_NCOLUMNS 4

/*
 * The last row that passed the checks, by a digest of its fields: the row
 * is still read for every job, but the checks (twilio_account_check: the
 * SIDs, the From number's E.164 form) run again only when a field
 * changed. The secret is not kept: it is opened for every job. Zero it
 * before the first use.
 */
struct sms_settings_cache {
    unsigned char digest[32];
    int valid;
    struct twilio_account acct; /* secret always "" */
};

/*
 * sms_settings_load's work on a row already read: row `row` of res, the
 * SMS_SETTINGS_COLUMNS from column `col` on (all NULL when there is no
 * row). cache may be NULL. Returns 1, 0 or -2 as sms_settings_load does.
 */
int sms_settings_use(const PGresult *res, int row, int col,
                     const struct mfa_keys *keys,
                     struct sms_settings_cache *cache,
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
