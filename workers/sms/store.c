/*
 * store.c - mfa-sms's SQL: the user's phone, and blocking it.
 *
 * The handler's read is shared/runtime/dispatch.c's (the delivery, its
 * code and login, for a whole batch in one statement before the BEGIN);
 * this file adds the user's columns and the SMS settings row to it
 * (store_read_sql, given to dispatch_setup). The completion blocks a
 * number Twilio refused, on the job's connection inside the runtime's
 * transaction. The delivery and code rows are
 * shared/mfa/delivery.c's, audit rows shared/mfa/audit.c's.
 *
 * Security notes: the user's phone number is read to send to it and never
 * logged from here; the caller wipes its copy, and the Twilio secret that
 * sms_settings_use opens into it.
 */
#include "store.h"

#include <stdio.h>
#include <string.h>

/* A phone counts only when valid (the table's checks make phone_e164
 * NULL otherwise). The user's columns are NULL when there is no such
 * user, the settings' when there is no settings row. */
const char store_read_sql[] = DISPATCH_READ_SQL(
    "CASE WHEN u.phone_status = 'valid' THEN u.phone_e164 END, u.locale, "
    "u.enabled, u.phone_sms_blocked, u.contact_id IS NOT NULL, "
    " " SMS_SETTINGS_COLUMNS,
    "LEFT JOIN LATERAL (SELECT * FROM mfa.users WHERE contact_id = r.cid "
    " LIMIT 1) u ON true " SMS_SETTINGS_JOIN);
#define STORE_SETTINGS_COL 5

/* Only the number we sent to: if the CRM changed the phone meanwhile,
 * the new number is not blocked for the old one's sake. */
static const char SQL_BLOCK[] =
    "UPDATE mfa.users SET phone_sms_blocked = $3, updated_at = now() "
    "WHERE contact_id = $1 AND phone_e164 = $2";

static void
store_copy(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
}

int
store_user_from(const struct dispatch_facts *f, const struct mfa_keys *keys,
                struct sms_settings_cache *cache, struct store_user *out)
{
    const PGresult *res = f->res;
    int r = f->row, c = DISPATCH_COL_USER;
    const char *v = db_get(res, r, c + 4);

    memset(out, 0, sizeof(*out));
    if (v == NULL || strcmp(v, "t") != 0)
        return 0;
    store_copy(out->phone, sizeof(out->phone), db_get(res, r, c));
    store_copy(out->locale, sizeof(out->locale), db_get(res, r, c + 1));
    v = db_get(res, r, c + 2);
    out->enabled = v != NULL && strcmp(v, "t") == 0;
    store_copy(out->blocked, sizeof(out->blocked), db_get(res, r, c + 3));
    /* Opened only for a user the handler will send to. */
    if (out->enabled && out->phone[0] != '\0' && out->blocked[0] == '\0')
        out->settings = sms_settings_use(res, r, c + STORE_SETTINGS_COL, keys,
                                         cache, &out->acct, out->settings_why,
                                         sizeof(out->settings_why));
    return 1;
}

int
store_block_phone(struct db *db, const char *contact_id, const char *phone,
                  const char *why)
{
    const char *p[3] = {contact_id, phone, why};

    return db_exec(db, SQL_BLOCK, 3, p);
}
