/*
 * store.h - mfa-email's own read: the user a code goes to (mfa.users),
 * read with the delivery and its code (runtime/dispatch.h), shared with
 * mfa-sms, in one statement per batch; the audit trail is every
 * worker's (mfa/audit.h).
 */
#ifndef EMAIL_STORE_H
#define EMAIL_STORE_H

#include "runtime/dispatch.h"

/* Strings are malloc'd or NULL; store_user_free() wipes and frees. */
struct store_user {
    char *email;
    char *display_name;
    char *locale;
    int email_confirmed;
    int enabled;
};

/* The dispatch read's statement with the user's columns. */
extern const char store_read_sql[];

/* The user of a job's facts: 1 (store_user_free after), 0 no such user. */
int store_user_from(const struct dispatch_facts *f, struct store_user *out);
void store_user_free(struct store_user *u);

#endif
