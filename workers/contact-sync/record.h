/*
 * record.h - one portal user's row of mfa.users as mfa-contact-sync sees
 * it: load it locked, insert it, write it back.
 */
#ifndef CONTACT_RECORD_H
#define CONTACT_RECORD_H

#include <stdint.h>

#include "mfa/db.h"

/* phone_status / email_status values (schema CHECK constraints). */
#define REC_VALID "valid"
#define REC_INVALID "invalid"
#define REC_MISSING "missing"

/* Every string is malloc'd or NULL; record_free() releases them. */
struct contact_rec {
    char *contact_id;
    char *organization_id;
    char *display_name;
    char *email;        /* NULL when missing or invalid */
    char *email_status; /* REC_VALID | REC_INVALID | REC_MISSING */
    char *email_reason; /* why invalid; NULL otherwise */
    int email_confirmed;
    char *phone_input;  /* as the CRM sent it, for re-checks by region */
    char *phone_e164;   /* NULL when missing or invalid */
    char *phone_status; /* REC_VALID | REC_INVALID | REC_MISSING */
    char *phone_reason; /* why invalid; NULL otherwise */
    char *phone_type;   /* "mobile", "fixed_line", ... when valid */
    int phone_sms_capable;
    char *phone_sms_blocked; /* why SMS is refused ("21610 ..."), or NULL */
    char *country;           /* ISO 3166 alpha-2, capitals, or NULL */
    char *locale;
    int enabled;
};

/* What record_load() found. */
enum rec_found {
    REC_NONE,  /* no such user */
    REC_FOUND, /* loaded and locked (FOR UPDATE) */
    REC_STALE  /* exists, but the event is older than the last applied */
};

/*
 * Loads and locks contact_id's row. at_us is the event's occurred_at;
 * stale compares it with last_applied_at, or with email_set_at when
 * for_confirm is set (a confirmation only needs to be newer than the
 * address it confirms). 0 with *found set, or -1 on a database error.
 */
int record_load(struct db *db, const char *contact_id, int64_t at_us,
                int for_confirm, struct contact_rec *r, enum rec_found *found)
    __attribute__((warn_unused_result));

/*
 * Inserts r as a new user applied at at_us. 1 inserted, 0 when another
 * worker created the contact first (load it and update instead), -1 on a
 * database error.
 */
int record_insert(struct db *db, const struct contact_rec *r, int64_t at_us)
    __attribute__((warn_unused_result));

/*
 * The UPDATE that writes every field of a record back and sets
 * last_applied_at to $18; $19 (email_changed) moves email_set_at there
 * too. Its parameters come from record_params(); effects_commit() runs it
 * together with the change's consequences.
 */
#define RECORD_UPDATE_SQL                                                      \
    "UPDATE mfa.users SET organization_id = $2, display_name = $3, "           \
    "email = $4, email_status = $5, email_reason = $6, "                       \
    "email_confirmed = $7, phone_input = $8, phone_e164 = $9, "                \
    "phone_status = $10, phone_reason = $11, phone_type = $12, "               \
    "phone_sms_capable = $13, phone_sms_blocked = $14, country = $15, "        \
    "locale = $16, enabled = $17, last_applied_at = $18, "                     \
    "email_set_at = CASE WHEN $19::boolean THEN $18 ELSE email_set_at END, "   \
    "updated_at = now() "                                                      \
    "WHERE contact_id = $1"
#define REC_NPARAMS 19

/* RECORD_UPDATE_SQL's parameters for r applied at at_us; at is their
 * storage (record_time_text). */
void record_params(const struct contact_rec *r, int64_t at_us,
                   int email_changed, char at[40], const char *p[REC_NPARAMS]);

/* Marks the current email confirmed (no ordering field moves). 0 or -1. */
int record_confirm_email(struct db *db, const char *contact_id)
    __attribute__((warn_unused_result));

/* Deep copy (dst must be empty or freed). */
void record_copy(struct contact_rec *dst, const struct contact_rec *src);
void record_free(struct contact_rec *r);
/* Replaces *field with a copy of value (NULL clears). */
void record_set(char **field, const char *value);
/* 1 when a and b are both NULL or equal strings. */
int record_same(const char *a, const char *b);

/* Microseconds since the epoch as PostgreSQL timestamptz text. */
void record_time_text(int64_t us, char out[40]);

#endif
