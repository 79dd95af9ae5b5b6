/*
 * crypto.h - keys, verification codes, keyed hashes and sealing.
 *
 * Everything secret in Portal MFA goes through here, on libsodium:
 *   - the master key (32 bytes) from a file or MFA_KEYS_MASTER_KEY (base64),
 *     from which purpose-bound subkeys are derived (crypto_kdf);
 *   - codes drawn with randombytes_uniform (no modulo bias);
 *   - codes stored only as keyed BLAKE2b hashes, bound to their login and
 *     tagged with a key id so the master key can rotate;
 *   - codes in transit sealed with XChaCha20-Poly1305, the associated data
 *     binding login and delivery so a sealed code cannot be replayed for
 *     another delivery.
 */
#ifndef MFA_CRYPTO_H
#define MFA_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define MFA_KEY_BYTES 32
#define MFA_HASH_BYTES 32
#define MFA_CODE_MAX 10

struct mfa_keys {
    unsigned char code[MFA_KEY_BYTES];     /* code hashes */
    unsigned char seal[MFA_KEY_BYTES];     /* dispatch jobs */
    unsigned char settings[MFA_KEY_BYTES]; /* secrets at rest (Twilio) */
    unsigned char dest[MFA_KEY_BYTES];     /* destination fingerprints */
    char key_id[9];                        /* hex, names the master key */
};

/* libsodium init; fatal on failure. Idempotent. */
void crypto_setup(void);

/*
 * Load the master key: b64 (MFA_KEYS_MASTER_KEY) wins over file. The file
 * holds exactly 32 raw bytes or their base64. Returns guarded memory that
 * keys_free() wipes, or NULL with err set.
 */
struct mfa_keys *keys_load(const char *file, const char *b64, char *err,
                           size_t errlen) __attribute__((warn_unused_result));
void keys_free(struct mfa_keys *k);
/* Creates a new random master key file (mode 0600); fails if it exists. */
int keys_generate_file(const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* A random source for digits: returns a uniform value in [0, upper). */
typedef uint32_t (*code_uniform_fn)(uint32_t upper);
/* out gets `digits` digits and a NUL. uniform NULL = randombytes_uniform. */
void code_generate(char *out, int digits, code_uniform_fn uniform);
void code_hash(const struct mfa_keys *k, const char *login_id, const char *code,
               unsigned char out[MFA_HASH_BYTES]);
/* 1 when equal; constant time. */
int code_hash_equal(const unsigned char a[MFA_HASH_BYTES],
                    const unsigned char b[MFA_HASH_BYTES]);
/* Keyed fingerprint of an email address or phone number (rate limits). */
void dest_hash(const struct mfa_keys *k, const char *dest,
               unsigned char out[MFA_HASH_BYTES]);

/* Seal plaintext to base64 (malloc'd). */
char *seal_b64(const unsigned char key[MFA_KEY_BYTES], const char *ad,
               const void *pt, size_t ptlen);
/* Open; out gets the plaintext and a NUL (cap includes it). 0 or -1. */
int unseal_b64(const unsigned char key[MFA_KEY_BYTES], const char *ad,
               const char *b64, char *out, size_t cap, size_t *outlen)
    __attribute__((warn_unused_result));

#endif
