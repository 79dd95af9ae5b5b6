/* test_sms_settings.c - the SMS settings row as mfa-sms uses it
 * (sms_settings_use): incomplete, unusable and good rows, and the cache
 * that skips the checks for an unchanged row and never keeps the secret.
 * Rows are built with libpq's result functions: no server needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "mfa/sms_settings.h"

#define AC "AC0123456789abcdef0123456789abcdef"
#define SK "SK0123456789abcdef0123456789abcdef"

static struct mfa_keys keys;

/* One row of SMS_SETTINGS_COLUMNS, after a leading column of the
 * caller's (so col 1, as when folded into another query). NULL = SQL
 * NULL. */
static PGresult *
row(const char *cid, const char *sid, const char *from, const char *sealed)
{
    PGresAttDesc att[1 + SMS_SETTINGS_NCOLUMNS];
    const char *v[1 + SMS_SETTINGS_NCOLUMNS] = {"x", cid, sid, from, sealed};
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);

    assert_non_null(res);
    memset(att, 0, sizeof(att));
    for (int i = 0; i <= SMS_SETTINGS_NCOLUMNS; i++) {
        att[i].name = (char *)"c";
        att[i].typid = 25; /* text */
        att[i].typlen = -1;
        att[i].atttypmod = -1;
    }
    assert_int_equal(PQsetResultAttrs(res, 1 + SMS_SETTINGS_NCOLUMNS, att), 1);
    for (int i = 0; i <= SMS_SETTINGS_NCOLUMNS; i++)
        assert_int_equal(
            PQsetvalue(res, 0, i, (char *)v[i], v[i] ? (int)strlen(v[i]) : -1),
            1);
    return res;
}

static char *
sealed_secret(const char *secret, const unsigned char *key)
{
    return seal_b64(key, SMS_SETTINGS_AD, secret, strlen(secret));
}

static char why[300];

/* sms_settings_use on a row of those fields. */
static int
use(struct sms_settings_cache *cache, struct twilio_account *a, const char *cid,
    const char *sid, const char *from, const char *sealed)
{
    PGresult *res = row(cid, sid, from, sealed);
    int rc = sms_settings_use(res, 0, 1, &keys, cache, a, why, sizeof(why));

    PQclear(res);
    return rc;
}

static void
test_incomplete(void **state)
{
    struct sms_settings_cache cache;
    struct twilio_account a;
    char *s = sealed_secret("s3cr3t", keys.settings);

    (void)state;
    memset(&cache, 0, sizeof(cache));
    assert_int_equal(use(&cache, &a, NULL, NULL, NULL, NULL), 0);
    assert_string_equal(why, "sms settings incomplete");
    assert_int_equal(use(&cache, &a, AC, " ", "+15005550006", s), 0);
    assert_int_equal(use(&cache, &a, AC, AC, "+15005550006", NULL), 0);
    free(s);
}

static void
test_unusable(void **state)
{
    unsigned char other[MFA_KEY_BYTES];
    struct twilio_account a;
    char *s;

    (void)state;
    randombytes_buf(other, sizeof(other));
    s = sealed_secret("s3cr3t", other);
    assert_int_equal(use(NULL, &a, AC, AC, "+15005550006", s), -2);
    assert_non_null(strstr(why, "does not open with this master key"));
    free(s);
    s = sealed_secret("s3cr3t", keys.settings);
    assert_int_equal(use(NULL, &a, AC, AC, "+1500", s), -2);
    assert_int_equal(strncmp(why, "sms settings invalid: from:", 27), 0);
    /* Only the From number's form counts here: mfactl checked its
     * validity (libphonenumber) before storing it. */
    assert_int_equal(use(NULL, &a, AC, AC, "+15551234567", s), 1);
    twilio_account_wipe(&a);
    assert_int_equal(use(NULL, &a, SK, "AC12", "+15005550006", s), -2);
    assert_int_equal(strncmp(why, "sms settings invalid: account sid", 33), 0);
    free(s);
}

static void
test_cache(void **state)
{
    struct sms_settings_cache cache;
    struct twilio_account a;
    char *s = sealed_secret("s3cr3t", keys.settings);
    char *s2 = sealed_secret("other", keys.settings);

    (void)state;
    memset(&cache, 0, sizeof(cache));
    assert_int_equal(use(&cache, &a, SK, AC, "+15005550006", s), 1);
    assert_string_equal(a.client_id, SK);
    assert_string_equal(a.account_sid, AC);
    assert_string_equal(a.from, "+15005550006");
    assert_string_equal(a.secret, "s3cr3t");
    /* Remembered without the secret. */
    assert_true(cache.valid);
    assert_string_equal(cache.acct.from, "+15005550006");
    assert_string_equal(cache.acct.secret, "");

    /* The same row: the remembered checks are used (marked here to see
     * it), the secret is opened again. */
    memcpy(cache.acct.from, "+1CACHED", 9);
    assert_int_equal(use(&cache, &a, SK, AC, "+15005550006", s), 1);
    assert_string_equal(a.from, "+1CACHED");
    assert_string_equal(a.secret, "s3cr3t");

    /* Any field changed, the sealed secret included: checked again. */
    assert_int_equal(use(&cache, &a, SK, AC, "+15005550006", s2), 1);
    assert_string_equal(a.from, "+15005550006");
    assert_string_equal(a.secret, "other");
    assert_int_equal(use(&cache, &a, SK, AC, "+3161", s2), -2);
    assert_false(cache.valid);
    /* mfactl stores the Account SID twice for an AC... client id: an
     * empty one makes an incomplete row, as mfa-codes' offer sees it. */
    assert_int_equal(use(&cache, &a, AC, "", "+15005550006", s), 0);
    assert_int_equal(use(&cache, &a, AC, AC, "+15005550006", s), 1);
    assert_string_equal(a.client_id, AC);
    twilio_account_wipe(&a);
    free(s);
    free(s2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_incomplete),
        cmocka_unit_test(test_unusable),
        cmocka_unit_test(test_cache),
    };

    crypto_setup();
    randombytes_buf(keys.settings, sizeof(keys.settings));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
