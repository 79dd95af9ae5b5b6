/*
 * store.h - mfa-email's own read: the user a code goes to (mfa.users).
 * The delivery and code rows are shared with mfa-sms (mfa/delivery.h),
 * the audit trail with every worker (mfa/audit.h). Runs on the job's
 * connection, inside the runtime's transaction.
 */
#ifndef EMAIL_STORE_H
#define EMAIL_STORE_H

#include "mfa/db.h"

/* Strings are malloc'd or NULL; store_user_free() wipes and frees. */
struct store_user {
    char *email;
    char *display_name;
    char *locale;
    int email_confirmed;
    int enabled;
};

/* 1 found, 0 none, -1 database error. */
int store_user_get(struct db *db, const char *contact_id,
                   struct store_user *out) __attribute__((warn_unused_result));
void store_user_free(struct store_user *u);

#endif
