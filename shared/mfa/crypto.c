/*
 * crypto.c - master key, subkeys, codes, keyed hashes, sealing.
 *
 * Callers: every worker (keys), mfa-codes (codes, hashes, sealing),
 * mfa-email/mfa-sms (unsealing), mfactl (settings secret, keygen).
 * Security: key material lives in sodium_malloc'd memory (guard pages,
 * mlock) and is wiped on free; temporaries are wiped before returning.
 */
#include "mfa/crypto.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#define KDF_CONTEXT "mfa-keys" /* exactly crypto_kdf_CONTEXTBYTES */

enum { SUBKEY_CODE = 1, SUBKEY_SEAL, SUBKEY_SETTINGS, SUBKEY_DEST };

void
crypto_setup(void)
{
    if (sodium_init() < 0)
        fatal("libsodium failed to initialise");
}

static int
keys_decode_b64(const char *s, size_t slen, unsigned char out[MFA_KEY_BYTES])
{
    size_t n = 0;

    while (slen > 0 &&
           (s[slen - 1] == '\n' || s[slen - 1] == '\r' || s[slen - 1] == ' '))
        slen--;
    if (sodium_base642bin(out, MFA_KEY_BYTES, s, slen, NULL, &n, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        n != MFA_KEY_BYTES)
        return -1;
    return 0;
}

static int
keys_read_file(const char *file, unsigned char master[MFA_KEY_BYTES], char *err,
               size_t errlen)
{
    unsigned char raw[128];
    ssize_t n;
    int fd, rc = -1;

    fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "keys.master_key_file: cannot open %s: %s", file,
                 strerror(errno));
        return -1;
    }
    n = read(fd, raw, sizeof(raw));
    if (n == MFA_KEY_BYTES) {
        memcpy(master, raw, MFA_KEY_BYTES);
        rc = 0;
    } else if (n > 0 &&
               keys_decode_b64((const char *)raw, (size_t)n, master) == 0) {
        rc = 0;
    } else {
        snprintf(err, errlen,
                 "keys.master_key_file: %s must hold exactly 32 bytes "
                 "(raw or base64), found %zd bytes",
                 file, n);
    }
    sodium_memzero(raw, sizeof(raw));
    close(fd);
    return rc;
}

struct mfa_keys *
keys_load(const char *file, const char *b64, char *err, size_t errlen)
{
    unsigned char master[MFA_KEY_BYTES];
    unsigned char kid[4];
    struct mfa_keys *k = NULL;

    crypto_setup();
    if (b64 != NULL && b64[0] != '\0') {
        if (keys_decode_b64(b64, strlen(b64), master) != 0) {
            snprintf(err, errlen,
                     "MFA_KEYS_MASTER_KEY: must be the base64 "
                     "of exactly 32 bytes");
            goto out;
        }
    } else if (file == NULL || file[0] == '\0') {
        snprintf(err, errlen,
                 "keys: no master key (set "
                 "keys.master_key_file or MFA_KEYS_MASTER_KEY)");
        goto out;
    } else if (keys_read_file(file, master, err, errlen) != 0) {
        goto out;
    }

    k = sodium_malloc(sizeof(*k));
    if (k == NULL)
        fatal("sodium_malloc failed");
    crypto_kdf_derive_from_key(k->code, MFA_KEY_BYTES, SUBKEY_CODE, KDF_CONTEXT,
                               master);
    crypto_kdf_derive_from_key(k->seal, MFA_KEY_BYTES, SUBKEY_SEAL, KDF_CONTEXT,
                               master);
    crypto_kdf_derive_from_key(k->settings, MFA_KEY_BYTES, SUBKEY_SETTINGS,
                               KDF_CONTEXT, master);
    crypto_kdf_derive_from_key(k->dest, MFA_KEY_BYTES, SUBKEY_DEST, KDF_CONTEXT,
                               master);
    /* The key id is public: a short hash of the master key, so rows hashed
     * under an older key can be recognised after a rotation. */
    crypto_generichash(kid, sizeof(kid), (const unsigned char *)"key-id", 6,
                       master, MFA_KEY_BYTES);
    sodium_bin2hex(k->key_id, sizeof(k->key_id), kid, sizeof(kid));
out:
    sodium_memzero(master, sizeof(master));
    return k;
}

void
keys_free(struct mfa_keys *k)
{
    if (k != NULL)
        sodium_free(k); /* wipes */
}

int
keys_generate_file(const char *path, char *err, size_t errlen)
{
    unsigned char master[MFA_KEY_BYTES];
    int fd, rc = -1;

    crypto_setup();
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    randombytes_buf(master, sizeof(master));
    if (write(fd, master, sizeof(master)) != (ssize_t)sizeof(master)) {
        snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
        goto out;
    }
    if (fsync(fd) != 0) {
        snprintf(err, errlen, "%s: fsync failed: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    sodium_memzero(master, sizeof(master));
    close(fd);
    if (rc != 0)
        unlink(path);
    return rc;
}

void
code_generate(char *out, int digits, code_uniform_fn uniform)
{
    if (uniform == NULL)
        uniform = randombytes_uniform;
    for (int i = 0; i < digits; i++)
        out[i] = (char)('0' + uniform(10));
    out[digits] = '\0';
}

void
code_hash(const struct mfa_keys *k, const char *login_id, const char *code,
          unsigned char out[MFA_HASH_BYTES])
{
    crypto_generichash_state st;

    /* Bound to the login: the same digits in another login hash apart. */
    crypto_generichash_init(&st, k->code, MFA_KEY_BYTES, MFA_HASH_BYTES);
    crypto_generichash_update(&st, (const unsigned char *)login_id,
                              strlen(login_id));
    crypto_generichash_update(&st, (const unsigned char *)"\0", 1);
    crypto_generichash_update(&st, (const unsigned char *)code, strlen(code));
    crypto_generichash_final(&st, out, MFA_HASH_BYTES);
    sodium_memzero(&st, sizeof(st));
}

int
code_hash_equal(const unsigned char a[MFA_HASH_BYTES],
                const unsigned char b[MFA_HASH_BYTES])
{
    return sodium_memcmp(a, b, MFA_HASH_BYTES) == 0;
}

void
dest_hash(const struct mfa_keys *k, const char *dest,
          unsigned char out[MFA_HASH_BYTES])
{
    crypto_generichash(out, MFA_HASH_BYTES, (const unsigned char *)dest,
                       strlen(dest), k->dest, MFA_KEY_BYTES);
}

char *
seal_b64(const unsigned char key[MFA_KEY_BYTES], const char *ad, const void *pt,
         size_t ptlen)
{
    const size_t nb = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
    const size_t ab = crypto_aead_xchacha20poly1305_ietf_ABYTES;
    size_t clen = nb + ptlen + ab;
    unsigned char *c = xmalloc(clen);
    unsigned long long outl = 0;
    size_t b64len =
        sodium_base64_ENCODED_LEN(clen, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = xmalloc(b64len);

    randombytes_buf(c, nb);
    crypto_aead_xchacha20poly1305_ietf_encrypt(c + nb, &outl, pt, ptlen,
                                               (const unsigned char *)ad,
                                               strlen(ad), NULL, c, key);
    sodium_bin2base64(b64, b64len, c, nb + (size_t)outl,
                      sodium_base64_VARIANT_ORIGINAL);
    free(c);
    return b64;
}

int
unseal_b64(const unsigned char key[MFA_KEY_BYTES], const char *ad,
           const char *b64, char *out, size_t cap, size_t *outlen)
{
    const size_t nb = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
    const size_t ab = crypto_aead_xchacha20poly1305_ietf_ABYTES;
    unsigned char c[1024];
    unsigned long long ptl = 0;
    size_t clen = 0;
    int rc = -1;

    if (sodium_base642bin(c, sizeof(c), b64, strlen(b64), NULL, &clen, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        clen < nb + ab || clen - nb - ab + 1 > cap)
        goto out;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            (unsigned char *)out, &ptl, NULL, c + nb, clen - nb,
            (const unsigned char *)ad, strlen(ad), c, key) != 0)
        goto out;
    out[ptl] = '\0';
    if (outlen)
        *outlen = (size_t)ptl;
    rc = 0;
out:
    sodium_memzero(c, sizeof(c));
    return rc;
}
