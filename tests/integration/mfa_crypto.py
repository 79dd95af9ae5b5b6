"""The code seal of shared/mfa/crypto.c, in Python, for the tests.

mfa-codes seals each code for the dispatch workers with XChaCha20-Poly1305
(IETF), a random 24-byte nonce in front of the ciphertext, base64, and the
associated data "<login_id>:<delivery_id>" (docs/internals.md). The key is
the master key's subkey 2 under context "mfa-keys", which is what
crypto_kdf_derive_from_key computes: BLAKE2b-256 keyed with the master key,
salt = the subkey id (8 bytes little-endian) padded to 16, personal =
the context padded to 16.

Tests use open_code() to read the clear code out of a dispatch job (as
mfa-email / mfa-sms would) and seal_code() to forge jobs of their own.
Needs Debian's python3-nacl (scripts/deps.sh installs it).
"""
import base64
import hashlib
import os
import struct

try:
    import nacl.bindings as sodium
except ImportError:  # pragma: no cover - Debian: python3-nacl
    sodium = None

from conftest import MASTER_KEY, record_code

SUBKEY_CODE = 1
SUBKEY_SEAL = 2
SUBKEY_SETTINGS = 3
SUBKEY_DEST = 4
NONCE_BYTES = 24


def subkey(subkey_id, master_b64=None):
    """crypto_kdf_derive_from_key(32, subkey_id, "mfa-keys", master)."""
    master = base64.b64decode(master_b64 or MASTER_KEY)
    return hashlib.blake2b(digest_size=32, key=master,
                           salt=struct.pack("<Q", subkey_id) + b"\0" * 8,
                           person=b"mfa-keys" + b"\0" * 8).digest()


def seal_key(master_b64=None):
    return subkey(SUBKEY_SEAL, master_b64)


def _ad(login_id, delivery_id):
    return ("%s:%s" % (login_id, delivery_id)).encode()


def open_code(sealed, login_id, delivery_id, master_b64=None):
    """The clear code of a dispatch.code job; raises if it does not open
    (wrong key, wrong login/delivery binding, tampered)."""
    raw = base64.b64decode(sealed)
    nonce, ct = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
    pt = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
        ct, _ad(login_id, delivery_id), nonce, seal_key(master_b64))
    record_code(pt.decode())    # for the leak search (test_zz_secrets)
    return pt.decode()


def seal_code(code, login_id, delivery_id, master_b64=None):
    record_code(code)           # for the leak search (test_zz_secrets)
    nonce = os.urandom(NONCE_BYTES)
    ct = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
        code.encode(), _ad(login_id, delivery_id), nonce,
        seal_key(master_b64))
    return base64.b64encode(nonce + ct).decode()


def dest_hash(dest, master_b64=None):
    """dest_hash(): BLAKE2b-256 of the destination keyed with subkey 4."""
    return hashlib.blake2b(dest.encode(), digest_size=32,
                           key=subkey(SUBKEY_DEST, master_b64)).digest()
