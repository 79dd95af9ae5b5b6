/*
 * sms_settings.c - load, save, clear and show the SMS settings row.
 *
 * Callers: mfa-sms (sms_settings_load for every job, inside the job's
 * transaction: no cache to go stale), mfactl settings (all four).
 *
 * Security notes: the client secret is stored only sealed with the
 * settings subkey of the master key (XChaCha20-Poly1305, associated data
 * "settings:sms" so a sealed value cannot be moved to another purpose).
 * The clear secret lives in the caller's struct twilio_account, which the
 * caller wipes; temporaries here are wiped. Operators' mfactl reads the
 * public part through mfa.settings_state and never needs secret_sealed,
 * except for `settings sms test`, which must be able to open it.
 */
#include "mfa/sms_settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <sodium.h>

static const char SQL_LOAD[] =
    "SELECT value->>'client_id', value->>'account_sid', value->>'from', "
    " secret_sealed FROM mfa.settings WHERE name = '" SMS_SETTINGS_NAME "'";

/* The update repeats the parameters instead of reading EXCLUDED: that
 * would count as reading secret_sealed, which operators may not. */
static const char SQL_SAVE[] =
    "INSERT INTO mfa.settings (name, value, secret_sealed, updated_at, "
    " updated_by) VALUES ('" SMS_SETTINGS_NAME "', $1::jsonb, $2, now(), $3) "
    "ON CONFLICT (name) DO UPDATE SET value = $1::jsonb, "
    " secret_sealed = $2, updated_at = now(), updated_by = $3";

static const char SQL_CLEAR[] =
    "DELETE FROM mfa.settings WHERE name = '" SMS_SETTINGS_NAME "'";

static const char SQL_SHOW[] =
    "SELECT value->>'client_id', value->>'account_sid', value->>'from', "
    " secret_set, "
    " to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS\"Z\"'), "
    " updated_by FROM mfa.settings_state "
    "WHERE name = '" SMS_SETTINGS_NAME "'";

static int
sms_blank(const char *s)
{
    return s == NULL || s[strspn(s, " \t\r\n")] == '\0';
}

int
sms_settings_load(struct db *db, const struct mfa_keys *keys,
                  struct twilio_account *out, char *why, size_t whylen)
{
    char secret[TWILIO_SECRET_MAX + 1], err[200];
    const char *cid, *sid, *from, *sealed;
    PGresult *res;
    size_t n = 0;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    res = db_query(db, SQL_LOAD, 0, NULL);
    if (res == NULL) {
        snprintf(why, whylen, "sms settings: %s", db->errmsg);
        return -1;
    }
    if (PQntuples(res) != 1) {
        snprintf(why, whylen, "sms settings incomplete");
        goto out;
    }
    cid = db_get(res, 0, 0);
    sid = db_get(res, 0, 1);
    from = db_get(res, 0, 2);
    sealed = db_get(res, 0, 3);
    /* The same rule as mfa-codes' offer (methods.h). */
    if (sms_blank(cid) || sms_blank(sid) || sms_blank(from) || sealed == NULL) {
        snprintf(why, whylen, "sms settings incomplete");
        goto out;
    }
    if (unseal_b64(keys->settings, SMS_SETTINGS_AD, sealed, secret,
                   sizeof(secret), &n) != 0) {
        snprintf(why, whylen,
                 "sms settings: the stored client secret does "
                 "not open with this master key (set it again)");
        rc = -2;
        goto out;
    }
    if (twilio_account_check(cid, sid, from, secret, out, err, sizeof(err)) !=
        0) {
        snprintf(why, whylen, "sms settings invalid: %s", err);
        rc = -2;
        goto out;
    }
    rc = 1;
out:
    sodium_memzero(secret, sizeof(secret));
    PQclear(res);
    return rc;
}

int
sms_settings_save(struct db *db, const struct mfa_keys *keys,
                  const struct twilio_account *a, const char *by)
{
    struct json_object *v = json_object_new_object();
    const char *p[3];
    char *sealed;
    int rc;

    json_object_object_add(v, "client_id",
                           json_object_new_string(a->client_id));
    json_object_object_add(v, "account_sid",
                           json_object_new_string(a->account_sid));
    json_object_object_add(v, "from", json_object_new_string(a->from));
    sealed =
        seal_b64(keys->settings, SMS_SETTINGS_AD, a->secret, strlen(a->secret));
    p[0] = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
    p[1] = sealed;
    p[2] = by;
    rc = db_exec(db, SQL_SAVE, 3, p);
    free(sealed);
    json_object_put(v);
    return rc;
}

int
sms_settings_clear(struct db *db)
{
    PGresult *res = db_query(db, SQL_CLEAR, 0, NULL);
    int rc;

    if (res == NULL)
        return -1;
    rc = strtol(PQcmdTuples(res), NULL, 10) > 0 ? 1 : 0;
    PQclear(res);
    return rc;
}

static void
sms_copy(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
}

int
sms_settings_show(struct db *db, struct sms_settings_view *out)
{
    PGresult *res = db_query(db, SQL_SHOW, 0, NULL);

    memset(out, 0, sizeof(*out));
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 1) {
        out->found = 1;
        sms_copy(out->client_id, sizeof(out->client_id), db_get(res, 0, 0));
        sms_copy(out->account_sid, sizeof(out->account_sid), db_get(res, 0, 1));
        sms_copy(out->from, sizeof(out->from), db_get(res, 0, 2));
        out->secret_set =
            db_get(res, 0, 3) != NULL && strcmp(db_get(res, 0, 3), "t") == 0;
        sms_copy(out->updated_at, sizeof(out->updated_at), db_get(res, 0, 4));
        sms_copy(out->updated_by, sizeof(out->updated_by), db_get(res, 0, 5));
    }
    PQclear(res);
    return 0;
}
