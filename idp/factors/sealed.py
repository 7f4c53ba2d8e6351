"""Secrets kept at rest encrypted (the authenticator app's key): AES-256-GCM under a key
derived from IDP_SECRET_KEY with HKDF-SHA-256, one key per purpose.

The additional data binds a ciphertext to its row's owner (``context``, e.g. the user id):
a sealed value copied into another person's row does not open. A new nonce (96 random
bits) each time. The stored form is ``v1.<base64url(nonce || ciphertext || tag)>``, so a
later key or algorithm can be told apart. Nothing here logs a secret.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

VERSION = "v1"
NONCE_BYTES = 12


class Unsealable(ValueError):
    """The value was not sealed by this deployment's key for this purpose and owner."""


def _key(purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"idp.sealed.v1",
                info=purpose.encode()).derive(str(current_app.secret_key).encode())


def seal(purpose: str, plaintext: str, context: str) -> str:
    nonce = os.urandom(NONCE_BYTES)
    box = AESGCM(_key(purpose)).encrypt(nonce, plaintext.encode(), context.encode())
    return f"{VERSION}.{base64.urlsafe_b64encode(nonce + box).decode().rstrip('=')}"


def unseal(purpose: str, sealed: str, context: str) -> str:
    version, _, body = str(sealed or "").partition(".")
    if version != VERSION or not body:
        raise Unsealable("unknown format")
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        plain = AESGCM(_key(purpose)).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:],
                                               context.encode())
    except (ValueError, InvalidTag) as exc:
        raise Unsealable("does not open") from exc
    return plain.decode()
