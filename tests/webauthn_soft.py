"""A software WebAuthn authenticator for the tests: an EC P-256 key (cryptography), hand-built
authenticatorData and clientDataJSON, CBOR through py_webauthn's encoder (cbor2).

``create(options)`` answers navigator.credentials.create() ("none" attestation) and
``get(options)`` navigator.credentials.get(), as the JSON a browser's ``toJSON()`` gives.
Every check the server makes can be broken on purpose by a keyword: ``origin``,
``rp_id``, ``client_type``, ``up``, ``uv``, ``sign_count``, ``challenge``,
``credential_type``, ``user_handle``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn.helpers import bytes_to_base64url, encode_cbor

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40


class SoftAuthenticator:
    """One credential on one authenticator (a passkey with a counter, user verification on)."""

    def __init__(self, rp_id: str, origin: str, *, uv: bool = True, synced: bool = False,
                 credential_id: bytes | None = None):
        self.rp_id, self.origin, self.uv, self.synced = rp_id, origin, uv, synced
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = credential_id or secrets.token_bytes(32)
        self.sign_count = 0
        self.user_handle: str | None = None

    @property
    def id(self) -> str:
        return bytes_to_base64url(self.credential_id)

    def _cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return encode_cbor({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"),
                            -3: numbers.y.to_bytes(32, "big")})

    def _flags(self, up: bool, uv: bool | None, attested: bool = False) -> int:
        flags = (UP if up else 0) | (UV if (self.uv if uv is None else uv) else 0)
        if self.synced:
            flags |= BE | BS
        return flags | (AT if attested else 0)

    def _client_data(self, kind: str, options: dict, origin: str | None,
                     challenge: str | None) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge or options["challenge"],
                           "origin": origin or self.origin, "crossOrigin": False}).encode()

    def _rp_hash(self, rp_id: str | None) -> bytes:
        return hashlib.sha256((rp_id or self.rp_id).encode()).digest()

    def create(self, options: dict, *, origin: str | None = None, rp_id: str | None = None,
               up: bool = True, uv: bool | None = None, client_type: str = "webauthn.create",
               challenge: str | None = None, credential_type: str = "public-key") -> dict:
        client_data = self._client_data(client_type, options, origin, challenge)
        auth_data = (self._rp_hash(rp_id) + bytes([self._flags(up, uv, attested=True)])
                     + struct.pack(">I", self.sign_count) + bytes(16)
                     + struct.pack(">H", len(self.credential_id)) + self.credential_id
                     + self._cose_key())
        attestation = encode_cbor({"fmt": "none", "attStmt": {}, "authData": auth_data})
        self.user_handle = options["user"]["id"]
        return {"id": self.id, "rawId": self.id, "type": credential_type,
                "authenticatorAttachment": "platform", "clientExtensionResults": {},
                "response": {"clientDataJSON": bytes_to_base64url(client_data),
                             "attestationObject": bytes_to_base64url(attestation),
                             "transports": ["internal"]}}

    def get(self, options: dict, *, origin: str | None = None, rp_id: str | None = None,
            up: bool = True, uv: bool | None = None, client_type: str = "webauthn.get",
            challenge: str | None = None, sign_count: int | None = None,
            credential_type: str = "public-key", user_handle: str | None = None) -> dict:
        self.sign_count = self.sign_count + 1 if sign_count is None else sign_count
        client_data = self._client_data(client_type, options, origin, challenge)
        auth_data = (self._rp_hash(rp_id) + bytes([self._flags(up, uv)])
                     + struct.pack(">I", self.sign_count))
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(),
                                  ec.ECDSA(hashes.SHA256()))
        return {"id": self.id, "rawId": self.id, "type": credential_type,
                "authenticatorAttachment": "platform", "clientExtensionResults": {},
                "response": {"clientDataJSON": bytes_to_base64url(client_data),
                             "authenticatorData": bytes_to_base64url(auth_data),
                             "signature": bytes_to_base64url(signature),
                             "userHandle": user_handle or self.user_handle}}


def for_app(app, **kwargs) -> SoftAuthenticator:
    """An authenticator for this app's relying party (rpId and origin from IDP_ISSUER)."""
    from urllib.parse import urlsplit

    parts = urlsplit(app.config["IDP_ISSUER"])
    return SoftAuthenticator(parts.hostname, f"{parts.scheme}://{parts.netloc}", **kwargs)
