/*
 * sms_settings.c - load, save, clear and show the SMS settings row.
 *
 * Callers: mfa-sms (sms_settings_use for every job, on the row read with
 * the user's phone inside the job's transaction: the row itself is never
 * cached, only the verdict of its checks, keyed by a digest of all its
 * fields), mfactl settings (load, save, clear, show). The checks are
 * twilio_account_check's: the From number's form, not its validity, which
 * mfactl checked with libphonenumber before it stored the row.
 *
 * Security notes: the client secret is stored only sealed with the
 * settings subkey of the master key (XChaCha20-Poly1305, associated data
 * "settings:sms" so a sealed value cannot be moved to another purpose).
 * The clear secret lives in the caller's struct twilio_account, which the
 * caller wipes; temporaries here are wiped. mfa-sms's cache holds no
 * secret, only the public fields and a digest that covers the sealed
 * value. Operators' mfactl reads the public part through
 * mfa.settings_state and never needs secret_sealed, except for `settings
 * sms test`, which must be able to open it.
 */
#include "mfa/sms_settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <sodium.h>

static const char SQL_LOAD[] =
    "SELECT " SMS_SETTINGS_COLUMNS " FROM mfa.settings s "
    "WHERE s.name = '" SMS_SETTINGS_NAME "'";

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

/* A digest of the row's fields as read, NULL told apart from "". */
static void
sms_digest(const char *const f[SMS_SETTINGS_NCOLUMNS], unsigned char out[32])
{
    crypto_generichash_state st;

    crypto_generichash_init(&st, NULL, 0, 32);
    for (int i = 0; i < SMS_SETTINGS_NCOLUMNS; i++) {
        unsigned char len[9] = {f[i] != NULL};
        size_t n = f[i] ? strlen(f[i]) : 0;

        for (int b = 0; b < 8; b++)
            len[1 + b] = (unsigned char)(n >> (8 * b));
        crypto_generichash_update(&st, len, sizeof(len));
        if (n)
            crypto_generichash_update(&st, (const unsigned char *)f[i], n);
    }
    crypto_generichash_final(&st, out, 32);
}

int
sms_settings_use(const PGresult *res, int row, int col,
                 const struct mfa_keys *keys, struct sms_settings_cache *cache,
                 struct twilio_account *out, char *why, size_t whylen)
{
    char secret[TWILIO_SECRET_MAX + 1], err[200];
    const char *f[SMS_SETTINGS_NCOLUMNS];
    unsigned char digest[32];
    size_t n = 0;
    int rc = 0, hit;

    memset(out, 0, sizeof(*out));
    for (int i = 0; i < SMS_SETTINGS_NCOLUMNS; i++)
        f[i] = db_get(res, row, col + i);
    /* client_id, account_sid, from, secret_sealed. The same rule as
     * mfa-codes' offer (methods.h). */
    if (sms_blank(f[0]) || sms_blank(f[1]) || sms_blank(f[2]) || f[3] == NULL) {
        snprintf(why, whylen, "sms settings incomplete");
        return 0;
    }
    sms_digest(f, digest);
    hit = cache != NULL && cache->valid &&
          sodium_memcmp(cache->digest, digest, sizeof(digest)) == 0;
    if (unseal_b64(keys->settings, SMS_SETTINGS_AD, f[3], secret,
                   sizeof(secret), &n) != 0) {
        snprintf(why, whylen,
                 "sms settings: the stored client secret does "
                 "not open with this master key (set it again)");
        rc = -2;
        goto out;
    }
    if (hit) {
        /* The same fields passed every check before, the same secret
         * included (the same sealed value and key open to it). */
        *out = cache->acct;
        memcpy(out->secret, secret, strlen(secret) + 1);
        rc = 1;
        goto out;
    }
    rc = twilio_account_check(f[0], f[1], f[2], secret, out, err, sizeof(err));
    if (rc != 0) {
        snprintf(why, whylen, "sms settings invalid: %s", err);
        rc = -2;
        goto out;
    }
    if (cache != NULL) {
        memcpy(cache->digest, digest, sizeof(digest));
        cache->acct = *out;
        sodium_memzero(cache->acct.secret, sizeof(cache->acct.secret));
        cache->valid = 1;
    }
    rc = 1;
out:
    if (rc != 1 && cache != NULL)
        cache->valid = 0;
    sodium_memzero(secret, sizeof(secret));
    return rc;
}

int
sms_settings_load(struct db *db, const struct mfa_keys *keys,
                  struct twilio_account *out, char *why, size_t whylen)
{
    PGresult *res = db_query(db, SQL_LOAD, 0, NULL);
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (res == NULL) {
        snprintf(why, whylen, "sms settings: %s", db->errmsg);
        return -1;
    }
    if (PQntuples(res) != 1)
        snprintf(why, whylen, "sms settings incomplete");
    else
        rc = sms_settings_use(res, 0, 0, keys, NULL, out, why, whylen);
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
