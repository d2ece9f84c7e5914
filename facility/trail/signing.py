"""The installation's Ed25519 key that signs case exports, and checking such a signature.

The private key is derived from the site secret (`audit.key`) under a label of its own, as the
chain key is (`trail.keys`): every host that shares the secret signs with the same key, nothing
new has to be backed up or copied between hosts, and no value anybody sees is the secret itself.
The public key (`facility export key`) is given to whoever receives exports, who can check a
manifest's signature with it without facility (OpenSSL 3: `openssl pkeyutl -verify`).

Ed25519 from `cryptography` (PyCA), the library Python projects use for it: small signatures and
keys, deterministic, no parameters to get wrong.
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from facility.errors import InputError
from facility.trail import keys

__all__ = ["Ed25519PrivateKey", "Ed25519PublicKey"]
ALGORITHM = "Ed25519"
_LABEL = b"facility export signing v1"


def private_key(secret: bytes | None = None) -> Ed25519PrivateKey:
    """The installation's signing key (from the site's `audit.key` unless `secret` is given)."""
    seed = keys.derived_key(keys.site_key() if secret is None else secret, _LABEL)
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_pem(key: Ed25519PublicKey) -> bytes:
    """A public key as PEM (SubjectPublicKeyInfo), as OpenSSL reads it."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def fingerprint(key: Ed25519PublicKey) -> str:
    """SHA-256 of the raw public key, hex: what people compare."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def load_public(pem: bytes, *, what: str) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM; InputError naming `what` if it is not one."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as err:
        raise InputError(f"{what}: not a PEM public key") from err
    if not isinstance(key, Ed25519PublicKey):
        raise InputError(f"{what}: not an {ALGORITHM} public key")
    return key


def sign(key: Ed25519PrivateKey, data: bytes) -> bytes:
    """The 64-byte signature of `data`."""
    return key.sign(data)


def valid(key: Ed25519PublicKey, data: bytes, signature: bytes) -> bool:
    """Whether `signature` is `key`'s signature of `data`."""
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True
