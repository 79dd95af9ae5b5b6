/* test_crypto.c - keys, codes, keyed hashes and sealing (mfa/crypto). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "mfa/crypto.h"

/* base64 of 32 bytes 0x01..0x20 */
static const char KEY_B64[] = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";

static struct mfa_keys *
load_b64(const char *b64)
{
    char err[256];

    return keys_load(NULL, b64, err, sizeof(err));
}

static void
test_keys_from_env(void **state)
{
    struct mfa_keys *k = load_b64(KEY_B64);

    (void)state;
    assert_non_null(k);
    assert_int_equal(strlen(k->key_id), 8);
    /* subkeys are distinct */
    assert_memory_not_equal(k->code, k->seal, MFA_KEY_BYTES);
    assert_memory_not_equal(k->seal, k->settings, MFA_KEY_BYTES);
    keys_free(k);
}

static void
test_keys_bad(void **state)
{
    char err[256];

    (void)state;
    assert_null(keys_load(NULL, "AQID", err, sizeof(err)));
    assert_non_null(strstr(err, "MFA_KEYS_MASTER_KEY"));
    assert_null(keys_load(NULL, "not base64 at all!!", err, sizeof(err)));
    assert_null(keys_load(NULL, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "no master key"));
    assert_null(keys_load("/nonexistent/master.key", NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "keys.master_key_file"));
}

static void
test_keys_file(void **state)
{
    char path[] = "/tmp/mfa-key-XXXXXX";
    char err[256];
    struct mfa_keys *a, *b;
    int fd;

    (void)state;
    fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    assert_int_equal(keys_generate_file(path, err, sizeof(err)), 0);
    /* refuses to overwrite */
    assert_int_not_equal(keys_generate_file(path, err, sizeof(err)), 0);
    a = keys_load(path, NULL, err, sizeof(err));
    assert_non_null(a);
    b = keys_load(path, NULL, err, sizeof(err));
    assert_non_null(b);
    assert_string_equal(a->key_id, b->key_id);
    keys_free(a);
    keys_free(b);
    unlink(path);

    /* a base64 file works too; a short one is refused with its size */
    memcpy(path + strlen(path) - 6, "XXXXXX", 6);
    fd = mkstemp(path);
    assert_int_equal(write(fd, KEY_B64, strlen(KEY_B64)),
                     (ssize_t)strlen(KEY_B64));
    close(fd);
    a = keys_load(path, NULL, err, sizeof(err));
    assert_non_null(a);
    b = load_b64(KEY_B64);
    assert_string_equal(a->key_id, b->key_id);
    keys_free(a);
    keys_free(b);
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "short", 5), 5);
    close(fd);
    assert_null(keys_load(path, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "exactly 32 bytes"));
    unlink(path);
}

static uint32_t seq_next;
static uint32_t
seq_uniform(uint32_t upper)
{
    return seq_next++ % upper;
}

static void
test_code_generate(void **state)
{
    char code[MFA_CODE_MAX + 1];
    int counts[10] = {0};

    (void)state;
    seq_next = 3;
    code_generate(code, 6, seq_uniform);
    assert_string_equal(code, "345678");
    code_generate(code, 10, NULL);
    assert_int_equal(strlen(code), 10);
    for (int i = 0; i < 10; i++)
        assert_true(code[i] >= '0' && code[i] <= '9');
    /* every digit shows up with the real source (20000 draws) */
    for (int r = 0; r < 2000; r++) {
        code_generate(code, 10, NULL);
        for (int i = 0; i < 10; i++)
            counts[code[i] - '0']++;
    }
    for (int d = 0; d < 10; d++)
        assert_true(counts[d] > 1500 && counts[d] < 2500);
}

static void
test_code_hash(void **state)
{
    struct mfa_keys *k = load_b64(KEY_B64);
    unsigned char a[MFA_HASH_BYTES], b[MFA_HASH_BYTES], c[MFA_HASH_BYTES];

    (void)state;
    code_hash(k, "11111111-1111-4111-8111-111111111111", "123456", a);
    code_hash(k, "11111111-1111-4111-8111-111111111111", "123456", b);
    assert_true(code_hash_equal(a, b));
    /* bound to the login */
    code_hash(k, "22222222-2222-4222-8222-222222222222", "123456", c);
    assert_false(code_hash_equal(a, c));
    code_hash(k, "11111111-1111-4111-8111-111111111111", "123457", c);
    assert_false(code_hash_equal(a, c));
    /* keyed: not the plain hash */
    crypto_generichash(c, sizeof(c), (const unsigned char *)"123456", 6, NULL,
                       0);
    assert_false(code_hash_equal(a, c));
    keys_free(k);
}

static void
test_seal(void **state)
{
    struct mfa_keys *k = load_b64(KEY_B64);
    char out[32];
    size_t n = 0;
    char *s, *t;

    (void)state;
    s = seal_b64(k->seal, "login:delivery", "654321", 6);
    t = seal_b64(k->seal, "login:delivery", "654321", 6);
    assert_string_not_equal(s, t); /* random nonce */
    assert_null(strstr(s, "654321"));
    assert_int_equal(
        unseal_b64(k->seal, "login:delivery", s, out, sizeof(out), &n), 0);
    assert_int_equal(n, 6);
    assert_string_equal(out, "654321");
    /* wrong associated data (another delivery), wrong key, tampering */
    assert_int_not_equal(
        unseal_b64(k->seal, "login:other", s, out, sizeof(out), &n), 0);
    assert_int_not_equal(
        unseal_b64(k->code, "login:delivery", s, out, sizeof(out), &n), 0);
    s[10] = s[10] == 'A' ? 'B' : 'A';
    assert_int_not_equal(
        unseal_b64(k->seal, "login:delivery", s, out, sizeof(out), &n), 0);
    assert_int_not_equal(
        unseal_b64(k->seal, "login:delivery", "!!", out, sizeof(out), &n), 0);
    /* too small an output buffer is an error, not an overflow */
    assert_int_not_equal(unseal_b64(k->seal, "login:delivery", t, out, 4, &n),
                         0);
    free(s);
    free(t);
    keys_free(k);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_from_env),
        cmocka_unit_test(test_keys_bad),
        cmocka_unit_test(test_keys_file),
        cmocka_unit_test(test_code_generate),
        cmocka_unit_test(test_code_hash),
        cmocka_unit_test(test_seal),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
