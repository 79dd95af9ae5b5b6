/*
 * record.c - the mfa.users row of one contact: load (locked), insert,
 * update (the statement is in record.h: effects.c runs it with the
 * change's consequences), confirm.
 *
 * Called by handler.c inside the runtime's transaction. The row is read
 * FOR UPDATE so two workers applying events of the same contact take turns
 * and the occurred_at comparison (ordering) cannot race. Values travel as
 * query parameters only. Email and phone columns are writable by mfa_worker
 * alone (schema/006_contacts.sql); this file and record.h hold the
 * statements that write them.
 */
#include "record.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/xalloc.h"

/* $2: the event's occurred_at; $3: compare with email_set_at instead. */
static const char SQL_LOAD[] =
    "SELECT organization_id, display_name, email, email_status, "
    "email_reason, email_confirmed, phone_input, phone_e164, phone_status, "
    "phone_reason, phone_type, phone_sms_capable, phone_sms_blocked, "
    "country, locale, enabled, "
    "CASE WHEN $3::boolean THEN email_set_at IS NOT NULL AND "
    "$2::timestamptz < email_set_at "
    "ELSE last_applied_at IS NOT NULL AND $2::timestamptz < last_applied_at "
    "END AS stale "
    "FROM mfa.users WHERE contact_id = $1 FOR UPDATE";

static const char SQL_INSERT[] =
    "INSERT INTO mfa.users (contact_id, organization_id, display_name, "
    "email, email_status, email_reason, email_confirmed, phone_input, "
    "phone_e164, phone_status, phone_reason, phone_type, phone_sms_capable, "
    "phone_sms_blocked, country, locale, enabled, last_applied_at, "
    "email_set_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, "
    "$15, $16, $17, $18, $18) "
    "ON CONFLICT (contact_id) DO NOTHING RETURNING 1";

static const char SQL_CONFIRM[] =
    "UPDATE mfa.users SET email_confirmed = true, updated_at = now() "
    "WHERE contact_id = $1";

void
record_time_text(int64_t us, char out[40])
{
    time_t s = (time_t)(us / 1000000);
    long frac = (long)(us % 1000000);
    struct tm tm;
    size_t n;

    /* Before 1970 the remainder is negative: borrow a second. */
    if (frac < 0) {
        frac += 1000000;
        s--;
    }
    gmtime_r(&s, &tm);
    n = strftime(out, 40, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(out + n, 40 - n, ".%06ld+00", frac);
}

void
record_set(char **field, const char *value)
{
    /* Copy before freeing: value may be *field itself. */
    char *copy = value != NULL ? xstrdup(value) : NULL;

    free(*field);
    *field = copy;
}

int
record_same(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

void
record_copy(struct contact_rec *dst, const struct contact_rec *src)
{
    *dst = *src;
    dst->contact_id = NULL;
    dst->organization_id = NULL;
    dst->display_name = NULL;
    dst->email = NULL;
    dst->email_status = NULL;
    dst->email_reason = NULL;
    dst->phone_input = NULL;
    dst->phone_e164 = NULL;
    dst->phone_status = NULL;
    dst->phone_reason = NULL;
    dst->phone_type = NULL;
    dst->phone_sms_blocked = NULL;
    dst->country = NULL;
    dst->locale = NULL;
    record_set(&dst->contact_id, src->contact_id);
    record_set(&dst->organization_id, src->organization_id);
    record_set(&dst->display_name, src->display_name);
    record_set(&dst->email, src->email);
    record_set(&dst->email_status, src->email_status);
    record_set(&dst->email_reason, src->email_reason);
    record_set(&dst->phone_input, src->phone_input);
    record_set(&dst->phone_e164, src->phone_e164);
    record_set(&dst->phone_status, src->phone_status);
    record_set(&dst->phone_reason, src->phone_reason);
    record_set(&dst->phone_type, src->phone_type);
    record_set(&dst->phone_sms_blocked, src->phone_sms_blocked);
    record_set(&dst->country, src->country);
    record_set(&dst->locale, src->locale);
}

void
record_free(struct contact_rec *r)
{
    free(r->contact_id);
    free(r->organization_id);
    free(r->display_name);
    free(r->email);
    free(r->email_status);
    free(r->email_reason);
    free(r->phone_input);
    free(r->phone_e164);
    free(r->phone_status);
    free(r->phone_reason);
    free(r->phone_type);
    free(r->phone_sms_blocked);
    free(r->country);
    free(r->locale);
    memset(r, 0, sizeof(*r));
}

/* PostgreSQL's boolean text. */
static int
record_bool(const char *v)
{
    return v != NULL && v[0] == 't';
}

int
record_load(struct db *db, const char *contact_id, int64_t at_us,
            int for_confirm, struct contact_rec *r, enum rec_found *found)
{
    char at[40];
    const char *p[3] = {contact_id, at, for_confirm ? "true" : "false"};
    PGresult *res;
    int rc = -1;

    *found = REC_NONE;
    record_time_text(at_us, at);
    res = db_query(db, SQL_LOAD, 3, p);
    if (res == NULL)
        goto out;
    rc = 0;
    if (PQntuples(res) != 1)
        goto out;
    record_set(&r->contact_id, contact_id);
    record_set(&r->organization_id, db_get(res, 0, 0));
    record_set(&r->display_name, db_get(res, 0, 1));
    record_set(&r->email, db_get(res, 0, 2));
    record_set(&r->email_status, db_get(res, 0, 3));
    record_set(&r->email_reason, db_get(res, 0, 4));
    r->email_confirmed = record_bool(db_get(res, 0, 5));
    record_set(&r->phone_input, db_get(res, 0, 6));
    record_set(&r->phone_e164, db_get(res, 0, 7));
    record_set(&r->phone_status, db_get(res, 0, 8));
    record_set(&r->phone_reason, db_get(res, 0, 9));
    record_set(&r->phone_type, db_get(res, 0, 10));
    r->phone_sms_capable = record_bool(db_get(res, 0, 11));
    record_set(&r->phone_sms_blocked, db_get(res, 0, 12));
    record_set(&r->country, db_get(res, 0, 13));
    record_set(&r->locale, db_get(res, 0, 14));
    r->enabled = record_bool(db_get(res, 0, 15));
    *found = record_bool(db_get(res, 0, 16)) ? REC_STALE : REC_FOUND;
out:
    PQclear(res);
    return rc;
}

/* The parameters shared by INSERT and UPDATE, in RECORD_UPDATE_SQL's
 * order. */
void
record_params(const struct contact_rec *r, int64_t at_us, int email_changed,
              char at[40], const char *p[REC_NPARAMS])
{
    record_time_text(at_us, at);
    p[0] = r->contact_id;
    p[1] = r->organization_id;
    p[2] = r->display_name;
    p[3] = r->email;
    p[4] = r->email_status;
    p[5] = r->email_reason;
    p[6] = r->email_confirmed ? "true" : "false";
    p[7] = r->phone_input;
    p[8] = r->phone_e164;
    p[9] = r->phone_status;
    p[10] = r->phone_reason;
    p[11] = r->phone_type;
    p[12] = r->phone_sms_capable ? "true" : "false";
    p[13] = r->phone_sms_blocked;
    p[14] = r->country;
    p[15] = r->locale;
    p[16] = r->enabled ? "true" : "false";
    p[17] = at;
    p[18] = email_changed ? "true" : "false";
}

int
record_insert(struct db *db, const struct contact_rec *r, int64_t at_us)
{
    const char *p[REC_NPARAMS];
    char at[40];
    PGresult *res;
    int rc = -1;

    record_params(r, at_us, 1, at, p);
    res = db_query(db, SQL_INSERT, REC_NPARAMS - 1, p);
    if (res == NULL)
        goto out;
    rc = PQntuples(res) == 1;
out:
    PQclear(res);
    return rc;
}

int
record_confirm_email(struct db *db, const char *contact_id)
{
    const char *p[1] = {contact_id};

    return db_exec(db, SQL_CONFIRM, 1, p);
}
