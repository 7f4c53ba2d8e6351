"""Passkeys and security keys (WebAuthn, py_webauthn): register, list, rename, remove, verify.

The relying party is the issuer: rpId is its host name, the only origin accepted
is its origin (scheme, host and port of IDP_ISSUER). A ceremony's challenge is
kept by the caller in a JSON-able ``state`` (the sign-in flow's factor state, or
the account page's entry in the session) and popped when an answer arrives:
one answer per challenge, and a challenge older than IDP_WEBAUTHN_TIMEOUT is
refused.

Checks beyond py_webauthn's (type, challenge, origin, rpId hash, UP, UV when
asked, signature): a credential id registered to anyone else is refused at
registration; at sign-in the credential must belong to the person expected (a
second factor) and to an active account, its user handle must match, and a
signature counter that does not move forward (when either side is non-zero)
is refused and audited as a possibly cloned authenticator.

No Flask request here: plain arguments in, ``PasskeyError`` (a reason code) out;
the caller commits.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import select
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    options_to_json_dict,
    parse_authentication_credential_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from idp.extensions import db
from idp.models import User, WebAuthnCredential
from idp.models._types import row_id
from idp.models.webauthn import CREDENTIAL_ID_LENGTH, NAME_LENGTH
from idp.services import audit

MAX_CREDENTIAL_JSON = 16 * 1024
MAX_PASSKEYS = 20


class PasskeyError(ValueError):
    """A ceremony or a change refused; ``reason`` is a code for the page and the audit log."""

    def __init__(self, reason: str, detail: str = "", user_id: int | None = None):
        super().__init__(detail or reason)
        self.reason = reason
        self.detail = detail
        self.user_id = user_id  # whose credential it was, when known


@dataclass(frozen=True)
class Verified:
    """A checked assertion: whose credential, and whether the person was verified (UV)."""

    credential: WebAuthnCredential
    user_verified: bool


def relying_party() -> tuple[str, str]:
    """(rpId, origin) from the issuer: ``http://localhost:5000`` -> ``localhost``, itself."""
    parts = urlsplit(current_app.config["IDP_ISSUER"])
    return parts.hostname or "localhost", f"{parts.scheme}://{parts.netloc}"


def _timeout() -> int:
    return int(current_app.config["IDP_WEBAUTHN_TIMEOUT"])


def credentials_of(user: User) -> list[WebAuthnCredential]:
    return list(db.session.scalars(
        select(WebAuthnCredential).where(WebAuthnCredential.user_id == user.id)
        .order_by(WebAuthnCredential.created_at, WebAuthnCredential.id)))


def credentials_query(user_id):
    """A SELECT of the person's passkeys (``user_id``: a value or a bind parameter)."""
    return select(WebAuthnCredential.id).where(WebAuthnCredential.user_id == user_id)


def has_passkey(user: User | None) -> bool:
    if user is None or getattr(user, "id", None) is None:
        return False
    return bool(db.session.scalar(credentials_query(user.id).exists().select()))


def get_credential(user: User, credential_pk: int | str | None) -> WebAuthnCredential:
    """One of this person's passkeys by row id (another person's is not found)."""
    key = row_id(credential_pk)
    row = db.session.get(WebAuthnCredential, key) if key is not None else None
    if row is None or row.user_id != user.id:
        raise PasskeyError("not_found")
    return row


def _descriptors(user: User | None) -> list[PublicKeyCredentialDescriptor]:
    if user is None:
        return []
    out = []
    for row in credentials_of(user):
        transports = []
        for value in row.transports or []:
            try:
                transports.append(AuthenticatorTransport(value))
            except ValueError:
                continue
        out.append(PublicKeyCredentialDescriptor(id=base64url_to_bytes(row.credential_id),
                                                 transports=transports or None))
    return out


def _user_handle(user: User) -> str:
    """The person's WebAuthn user id: the one their passkeys already carry, else a new one."""
    existing = db.session.scalar(select(WebAuthnCredential.user_handle)
                                 .where(WebAuthnCredential.user_id == user.id).limit(1))
    return existing or bytes_to_base64url(secrets.token_bytes(32))


def _take_challenge(state: dict, purpose: str) -> bytes:
    """Pop the challenge (single use); refuse a missing, expired or other ceremony's one."""
    challenge, expires_at = state.pop("challenge", None), int(state.pop("expires_at", 0) or 0)
    kind = state.pop("purpose", None)
    if not challenge or kind != purpose:
        raise PasskeyError("no_challenge")
    if expires_at <= int(time.time()):
        raise PasskeyError("expired")
    return base64url_to_bytes(challenge)


def _keep_challenge(state: dict, challenge: bytes, purpose: str, **extra) -> None:
    state.clear()
    state.update(challenge=bytes_to_base64url(challenge), purpose=purpose,
                 expires_at=int(time.time()) + _timeout(), **extra)


def registration_options(user: User, state: dict) -> dict:
    """Options for navigator.credentials.create(): security keys and platform passkeys,
    a discoverable credential and user verification preferred, existing ones excluded."""
    rp_id, _origin = relying_party()
    handle = _user_handle(user)
    options = generate_registration_options(
        rp_id=rp_id, rp_name=current_app.config["IDP_BRAND_NAME"], user_name=user.email,
        user_id=base64url_to_bytes(handle), user_display_name=user.name or user.email,
        timeout=_timeout() * 1000, exclude_credentials=_descriptors(user),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.PREFERRED))
    _keep_challenge(state, options.challenge, "register", handle=handle)
    return options_to_json_dict(options)


def _credential_json(credential: str | dict | None) -> str | dict:
    if isinstance(credential, dict):
        return credential
    if not credential or len(credential) > MAX_CREDENTIAL_JSON:
        raise PasskeyError("invalid", "no credential or too large")
    return credential


def clean_name(name: str | None) -> str:
    """A passkey's name as shown: printable, trimmed, at most NAME_LENGTH characters."""
    text = " ".join(str(name or "").split())  # tabs, newlines: one space
    return "".join(ch for ch in text if ch.isprintable())[:NAME_LENGTH].strip()


def register(user: User, credential: str | dict | None, state: dict, *, name: str | None,
             default_name: str, ip: str | None = None) -> WebAuthnCredential:
    """Check navigator.credentials.create()'s answer against the challenge in ``state`` and
    attach the credential to ``user`` (audited; the caller commits and notifies)."""
    challenge = _take_challenge(state, "register")
    handle = state.pop("handle", None) or _user_handle(user)
    raw = _credential_json(credential)
    rp_id, origin = relying_party()
    try:
        parsed = parse_registration_credential_json(raw)
        verified = verify_registration_response(
            credential=parsed, expected_challenge=challenge, expected_rp_id=rp_id,
            expected_origin=origin, require_user_presence=True)
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        audit.record("passkey_refused", user_id=user.id, ip=ip, step="register",
                     reason="invalid", detail=str(exc)[:200])
        raise PasskeyError("invalid", str(exc)) from None
    credential_id = bytes_to_base64url(verified.credential_id)
    if len(credential_id) > CREDENTIAL_ID_LENGTH:
        raise PasskeyError("invalid", "credential id too long")
    owner = db.session.scalar(select(WebAuthnCredential.user_id)
                              .where(WebAuthnCredential.credential_id == credential_id))
    if owner is not None:
        reason = "already_registered" if owner == user.id else "taken"
        audit.record("passkey_refused", user_id=user.id, ip=ip, step="register", reason=reason)
        raise PasskeyError(reason)
    if len(credentials_of(user)) >= MAX_PASSKEYS:
        raise PasskeyError("too_many")
    transports = [t.value for t in (parsed.response.transports or [])]
    row = WebAuthnCredential(
        user_id=user.id, credential_id=credential_id,
        public_key=verified.credential_public_key, sign_count=verified.sign_count,
        transports=transports, name=clean_name(name) or clean_name(default_name),
        user_handle=handle, aaguid=verified.aaguid, user_verified=verified.user_verified,
        backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
        backed_up=verified.credential_backed_up)
    db.session.add(row)
    db.session.flush()
    audit.record("passkey_added", user_id=user.id, ip=ip, passkey=row.id)
    return row


def authentication_options(user: User | None, state: dict, *, require_uv: bool) -> dict:
    """Options for navigator.credentials.get(): this person's credentials (second factor),
    or none listed (passwordless: the authenticator offers its discoverable ones)."""
    rp_id, _origin = relying_party()
    options = generate_authentication_options(
        rp_id=rp_id, timeout=_timeout() * 1000, allow_credentials=_descriptors(user),
        user_verification=UserVerificationRequirement.REQUIRED if require_uv
        else UserVerificationRequirement.PREFERRED)
    _keep_challenge(state, options.challenge, "authenticate", uv=bool(require_uv))
    return options_to_json_dict(options)


def authenticate(credential: str | dict | None, state: dict, *, user: User | None = None,
                 ip: str | None = None) -> Verified:
    """Check navigator.credentials.get()'s answer against the challenge in ``state``.

    ``user``: the person this sign-in already knows (the credential must be theirs);
    None for a passwordless sign-in (the credential names its owner). UV is required
    when the options asked for it. The counter and last use are updated; the caller
    commits, refusals included (they are audited)."""
    require_uv = bool(state.get("uv"))
    challenge = _take_challenge(state, "authenticate")
    state.pop("uv", None)
    raw = _credential_json(credential)
    try:
        parsed = parse_authentication_credential_json(raw)
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise PasskeyError("invalid", str(exc)) from None
    row = db.session.scalar(select(WebAuthnCredential)
                            .where(WebAuthnCredential.credential_id == parsed.id[:CREDENTIAL_ID_LENGTH]))
    if row is None:
        raise PasskeyError("unknown")
    if user is not None and row.user_id != user.id:
        audit.record("passkey_refused", user_id=user.id, ip=ip, step="authenticate",
                     reason="other_user", passkey=row.id)
        raise PasskeyError("other_user", user_id=user.id)
    owner = db.session.get(User, row.user_id)
    if owner is None or not owner.active:
        raise PasskeyError("disabled", user_id=row.user_id)
    handle = parsed.response.user_handle
    if handle is not None and handle != base64url_to_bytes(row.user_handle):
        raise PasskeyError("invalid", "user handle does not match", row.user_id)
    rp_id, origin = relying_party()
    try:
        # The counter is compared below, once the signature is known to be the key's own.
        verified = verify_authentication_response(
            credential=parsed, expected_challenge=challenge, expected_rp_id=rp_id,
            expected_origin=origin, credential_public_key=row.public_key,
            credential_current_sign_count=0, require_user_verification=require_uv)
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        audit.record("passkey_refused", user_id=row.user_id, ip=ip, step="authenticate",
                     reason="invalid", passkey=row.id, detail=str(exc)[:200])
        raise PasskeyError("invalid", str(exc), row.user_id) from None
    new_count = int(verified.new_sign_count)
    if (new_count > 0 or row.sign_count > 0) and new_count <= row.sign_count:
        audit.record("passkey_sign_count", user_id=row.user_id, ip=ip, passkey=row.id,
                     stored=row.sign_count, received=new_count)
        raise PasskeyError("sign_count", user_id=row.user_id)
    row.sign_count = new_count
    row.last_used_at = int(time.time())
    row.user_verified = row.user_verified or verified.user_verified
    row.backed_up = verified.credential_backed_up
    return Verified(row, verified.user_verified)


def rename(user: User, credential_pk: int | str | None, name: str | None) -> WebAuthnCredential:
    row = get_credential(user, credential_pk)
    cleaned = clean_name(name)
    if not cleaned:
        raise PasskeyError("name_missing")
    row.name = cleaned
    return row


def remove(user: User, credential_pk: int | str | None, ip: str | None = None) -> str:
    """Detach one passkey (audited); returns its name for the notice. The caller commits."""
    row = get_credential(user, credential_pk)
    name = row.name
    db.session.delete(row)
    audit.record("passkey_removed", user_id=user.id, ip=ip, passkey=row.id)
    return name


def remove_all(user: User) -> None:
    """Every passkey of the person (an admin's factor reset); the caller commits."""
    for row in credentials_of(user):
        db.session.delete(row)


def notify(user: User, kind: str, name: str, tenant=None) -> None:
    """Tell the person a passkey was added to or removed from their account (outbox)."""
    from idp.mail import enqueue_message

    enqueue_message(kind, user.email, locale=user.locale, tenant=tenant,
                    bilingual=not user.locale, passkey_name=name, when=int(time.time()))
