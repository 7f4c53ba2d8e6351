"""Signing keys: generated into the keys directory, parsed once, published as JWKS.

Each algorithm (ES256, RS256) has three kinds of key:
- ``next``: published in the JWKS, not yet signing, so relying parties that
  cache the JWKS already know it when it starts signing;
- ``active``: signs;
- ``retired``: no longer signs, still published until every token it signed
  has expired (``remove_after``).

``idp keys rotate`` moves next -> active -> retired and creates a new next.
Every node reading the same directory publishes the same JWKS; a running
server notices the manifest changing and reloads without a restart.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

ALGORITHMS = ("ES256", "RS256")
MANIFEST = "keys.json"
RELOAD_CHECK_SECONDS = 2.0
COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
PLAIN_HEADER = frozenset({"typ", "alg", "kid"})
VERIFIED_CACHE_SIZE = 4096  # verified tokens remembered per process (about 4 MiB)


def _generate(alg: str):
    if alg == "ES256":
        return ECKey.generate_key("P-256", private=True)
    if alg == "RS256":
        return RSAKey.generate_key(2048, private=True)
    raise ValueError(alg)


def _import(alg: str, pem: bytes, kid: str):
    cls = ECKey if alg == "ES256" else RSAKey
    return cls.import_key(pem, {"kid": kid, "alg": alg, "use": "sig"})


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def _read_manifest(keys_dir: Path) -> list[dict]:
    path = keys_dir / MANIFEST
    if not path.exists():
        return []
    return json.loads(path.read_text())["keys"]


def _write_manifest(keys_dir: Path, entries: list[dict]) -> None:
    tmp = keys_dir / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps({"keys": entries}, indent=2))
    os.replace(tmp, keys_dir / MANIFEST)


def _new_entry(keys_dir: Path, alg: str, state: str) -> dict:
    key = _generate(alg)
    kid = key.thumbprint()
    _write_private(keys_dir / f"{kid}.pem", key.as_pem(private=True))
    return {"kid": kid, "alg": alg, "state": state, "created_at": int(time.time())}


def ensure_keys(keys_dir: str | Path) -> bool:
    """Create an active and a next key per algorithm when missing. Returns True if it wrote."""
    keys_dir = Path(keys_dir)
    keys_dir.mkdir(parents=True, exist_ok=True)
    entries = _read_manifest(keys_dir)
    changed = False
    for alg in ALGORITHMS:
        states = {e["state"] for e in entries if e["alg"] == alg}
        for state in ("active", "next"):
            if state not in states:
                entries.append(_new_entry(keys_dir, alg, state))
                changed = True
    if changed:
        _write_manifest(keys_dir, entries)
    return changed


def rotate_keys(keys_dir: str | Path, retain_seconds: int) -> list[dict]:
    """next -> active, active -> retired (kept ``retain_seconds``), new next; prune expired."""
    keys_dir = Path(keys_dir)
    ensure_keys(keys_dir)
    now = int(time.time())
    entries = []
    for entry in _read_manifest(keys_dir):
        if entry["state"] == "retired" and entry.get("remove_after", 0) <= now:
            (keys_dir / f"{entry['kid']}.pem").unlink(missing_ok=True)
            continue
        if entry["state"] == "active":
            entry = {**entry, "state": "retired", "retired_at": now,
                     "remove_after": now + retain_seconds}
        elif entry["state"] == "next":
            entry = {**entry, "state": "active", "activated_at": now}
        entries.append(entry)
    for alg in ALGORITHMS:
        entries.append(_new_entry(keys_dir, alg, "next"))
    _write_manifest(keys_dir, entries)
    return entries


def _signature(path: Path) -> tuple[int, int, int]:
    """Identity of one version of the manifest. The mtime alone misses a rewrite within the
    file system's timestamp granularity; the manifest is replaced, so the inode changes."""
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_ino, stat.st_size


@dataclass(frozen=True)
class _Loaded:
    signature: tuple[int, int, int]
    signing: dict  # alg -> (kid, key)
    verify_set: KeySet
    public_jwks: dict
    public_json: bytes  # serialised once: the JWKS endpoint is hot
    es256_public: dict  # kid -> cryptography public key, for verify_es256


class KeyStore:
    """Parsed keys, cached per process; reloaded when the manifest changes."""

    def __init__(self, keys_dir: str | Path):
        self.keys_dir = Path(keys_dir)
        self._lock = threading.Lock()
        self._loaded: _Loaded | None = None
        self._checked_at = 0.0
        # token string -> (header, claims) of tokens verify_es256 accepted, for the key set
        # they were checked against (a reload empties it). A resource server introspects
        # the same token on each call it serves: its signature is checked once.
        self._verified: dict[str, tuple[dict, dict]] = {}
        self._verified_for: _Loaded | None = None

    def _load(self) -> _Loaded:
        signature = _signature(self.keys_dir / MANIFEST)
        signing, keys, public, es256 = {}, [], [], {}
        for entry in _read_manifest(self.keys_dir):
            pem = (self.keys_dir / f"{entry['kid']}.pem").read_bytes()
            key = _import(entry["alg"], pem, entry["kid"])
            public.append(key.as_dict(private=False))
            keys.append(key)
            if entry["alg"] == "ES256":
                es256[entry["kid"]] = key.public_key
            if entry["state"] == "active":
                signing[entry["alg"]] = (entry["kid"], key)
        jwks = {"keys": public}
        return _Loaded(signature, signing, KeySet(keys), jwks, json.dumps(jwks).encode(), es256)

    def _current(self) -> _Loaded:
        now = time.monotonic()
        loaded = self._loaded
        if loaded is not None and now - self._checked_at < RELOAD_CHECK_SECONDS:
            return loaded
        with self._lock:
            self._checked_at = now
            try:
                signature = _signature(self.keys_dir / MANIFEST)
            except FileNotFoundError as exc:
                raise RuntimeError(
                    f"no signing keys in {self.keys_dir}: run `idp init` first"
                ) from exc
            if self._loaded is None or self._loaded.signature != signature:
                self._loaded = self._load()
            return self._loaded

    def jwks(self) -> dict:
        return self._current().public_jwks

    def jwks_json(self) -> bytes:
        return self._current().public_json

    def verification_keys(self) -> KeySet:
        return self._current().verify_set

    def signing_key(self, alg: str):
        kid, key = self._current().signing[alg]
        return kid, key

    def sign(self, claims: dict, alg: str = "ES256", typ: str = "JWT") -> str:
        """A compact JWS (RFC 7515) of ``claims``, signed with the parsed private key.

        The same token joserfc's ``jwt.encode`` makes, without its per-call registry and
        header checks (a third of an ES256 token's cost): the header is ours and fixed."""
        return self.signer(alg)(claims, typ)

    def signer(self, alg: str = "ES256") -> Callable[[dict, str], str]:
        """``sign`` with the current key of ``alg`` taken now: what is left to do, the
        signature itself, cannot fail for want of a key (a key store reloaded meanwhile
        does not change it)."""
        kid, key = self.signing_key(alg)

        def sign(claims: dict, typ: str = "JWT") -> str:
            signing_input = (_b64_json({"typ": typ, "alg": alg, "kid": kid}) + b"."
                             + _b64_json(claims))
            if alg == "ES256":
                r, s = decode_dss_signature(key.private_key.sign(signing_input,
                                                                 ec.ECDSA(hashes.SHA256())))
                signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
            elif alg == "RS256":
                signature = key.private_key.sign(signing_input, padding.PKCS1v15(),
                                                 hashes.SHA256())
            else:
                return jwt.encode({"alg": alg, "kid": kid, "typ": typ}, claims, key,
                                  algorithms=[alg])
            return (signing_input + b"." + _b64(signature)).decode("ascii")

        return sign

    def verify_es256(self, token: str) -> tuple[dict, dict] | None:
        """(header, claims) of a compact ES256 JWS with a plain header (typ, alg, kid only)
        signed by one of our published ES256 keys, checked with the parsed public key.

        Only a positive answer is final: None means "not decided here" (another header,
        an unknown kid, a bad signature, anything odd), and the caller then asks joserfc,
        which refuses or accepts it by its own rules."""
        loaded = self._current()
        if self._verified_for is not loaded:
            self._verified, self._verified_for = {}, loaded
        hit = self._verified.get(token)
        if hit is not None:
            return dict(hit[0]), dict(hit[1])
        if not COMPACT_JWS.fullmatch(token):
            return None
        head, body, signature = token.split(".")
        try:
            header = json.loads(_unb64(head))
            if not isinstance(header, dict) or header.get("alg") != "ES256" \
                    or not PLAIN_HEADER.issuperset(header):
                return None
            key = loaded.es256_public.get(header.get("kid"))
            raw = _unb64(signature)
            if key is None or len(raw) != 64 or _b64(raw) != signature.encode("ascii"):
                return None  # the last character's spare bits set: not the one encoding
            key.verify(encode_dss_signature(int.from_bytes(raw[:32], "big"),
                                            int.from_bytes(raw[32:], "big")),
                       f"{head}.{body}".encode("ascii"), ec.ECDSA(hashes.SHA256()))
            claims = json.loads(_unb64(body))
        except (InvalidSignature, ValueError, TypeError, binascii.Error):
            return None
        if not isinstance(claims, dict):
            return None
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (header, claims)
        return dict(header), dict(claims)


def _unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _b64_json(value: dict) -> bytes:
    return _b64(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))

