/*
 * store.c - mfa-sms's SQL: the user's phone, and blocking it.
 *
 * Called by handler.c on the job's connection, inside the runtime's
 * transaction (the handler's read; the completion's block after Twilio
 * refused a number). The delivery and code rows are
 * shared/mfa/delivery.c's, audit rows shared/mfa/audit.c's.
 *
 * Security notes: the user's phone number is read to send to it and never
 * logged from here; the caller wipes its copy.
 */
#include "store.h"

#include <stdio.h>
#include <string.h>

/* A phone counts only when valid (the table's checks make phone_e164
 * NULL otherwise). */
static const char SQL_USER[] =
    "SELECT CASE WHEN phone_status = 'valid' THEN phone_e164 END, locale, "
    " enabled, phone_sms_blocked FROM mfa.users WHERE contact_id = $1";

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
store_user_get(struct db *db, const char *contact_id, struct store_user *out)
{
    const char *p[1] = {contact_id};
    PGresult *res = db_query(db, SQL_USER, 1, p);
    const char *enabled;
    int rc = 0;

    if (res == NULL)
        return -1;
    memset(out, 0, sizeof(*out));
    if (PQntuples(res) == 1) {
        store_copy(out->phone, sizeof(out->phone), db_get(res, 0, 0));
        store_copy(out->locale, sizeof(out->locale), db_get(res, 0, 1));
        enabled = db_get(res, 0, 2);
        out->enabled = enabled != NULL && strcmp(enabled, "t") == 0;
        store_copy(out->blocked, sizeof(out->blocked), db_get(res, 0, 3));
        rc = 1;
    }
    PQclear(res);
    return rc;
}

int
store_block_phone(struct db *db, const char *contact_id, const char *phone,
                  const char *why)
{
    const char *p[3] = {contact_id, phone, why};

    return db_exec(db, SQL_BLOCK, 3, p);
}
