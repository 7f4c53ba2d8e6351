"""The authenticator app (TOTP, RFC 6238), seeds 000/001: "use the code from your
authenticator app (Google Authenticator, 30 s)".

What every authenticator app reads: SHA-1, 6 digits, a 30-second step, a 160-bit key
(base32). A code of the current step or of one step either side is accepted (clock
drift), and each step at most once: the credential row keeps ``last_step``, the last
step a code was accepted for, and accepting moves it with one conditional
``UPDATE ... SET last_step = :step WHERE id = :id AND last_step < :step``. The database
decides which of two concurrent answers wins, so a replayed code fails on every worker
and node, and an older step's code is refused once a newer one was used.

The key is encrypted at rest (factors/sealed.py, bound to the user id), in the
credential row and in the enrolment state alike, and never logged. Attempts are capped
per sign-in and per account (factors/attempts.py), like the emailed code's.

Enrolment is ``enrol_start`` (a new key, the ``otpauth://`` URI, its QR code as inline
SVG, the key for typing in) then ``enrol_confirm`` with a first code from the app; the
confirmed step is stored as used, so that code cannot sign in afterwards.
"""

from __future__ import annotations

import hmac
import time
from typing import Any
from urllib.parse import quote

import pyotp
from flask import current_app
from sqlalchemy import select, update

from idp.extensions import db
from idp.factors import sealed
from idp.factors.attempts import account_retry_after, wrong_try
from idp.factors.base import Accepted, Attempt, FactorUnavailable, NotMine, Rejected, Result
from idp.models import Membership, TotpCredential

DIGITS = 6
STEP_SECONDS = 30
WINDOW = 1  # steps accepted either side of the current one
KEY_BYTES = 20  # 160 bits: RFC 4226's recommended length for HMAC-SHA-1
PURPOSE = "totp-secret"


def _context(user_id: int) -> str:
    return f"user:{user_id}"


def _now() -> float:
    return time.time()


def current_step(now: float | None = None) -> int:
    return int((_now() if now is None else now) // STEP_SECONDS)


def new_secret() -> str:
    return pyotp.random_base32(length=32)  # 32 base32 characters: 160 bits


def code_at(secret: str, step: int) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).generate_otp(step)


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The step (now, or one either side) whose code this is; None if none."""
    if len(code) != DIGITS or not code.isdigit():
        return None
    step = current_step(now)
    found = None
    for candidate in range(step - WINDOW, step + WINDOW + 1):
        if hmac.compare_digest(code_at(secret, candidate), code):
            found = candidate  # compare all three: no early exit to time
    return found


def _normalize(value: Any) -> str:
    return "".join(str(value or "").split())[:32]


def issuer_for(user: Any) -> str:
    """The label an app shows above the code: the person's one organisation, else the
    deployment's brand (IDP_BRAND_NAME)."""
    from idp.mail.messages import branding

    tenants = [m.tenant for m in db.session.scalars(
        select(Membership).where(Membership.user_id == user.id))]
    return branding(tenants[0] if len(tenants) == 1 else None)["brand"]


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    label = quote(f"{issuer}:{account}", safe="@:")
    return (f"otpauth://totp/{label}?secret={secret}&issuer={quote(issuer, safe='')}"
            f"&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}")


def qr_svg(uri: str, title: str) -> str:
    """The URI as a QR code, an inline SVG (no script, no style: the CSP allows it)."""
    import segno

    return segno.make(uri, error="m").svg_inline(scale=4, title=title, border=4)


def credential_of(user: Any) -> TotpCredential | None:
    if user is None or getattr(user, "id", None) is None:
        return None
    return db.session.scalar(select(TotpCredential).where(TotpCredential.user_id == user.id))


def credential_query(user_id: Any):
    """A SELECT of the person's authenticator app (``user_id``: a value or a bind
    parameter): the row ``credential_of`` returns."""
    return select(TotpCredential.id).where(TotpCredential.user_id == user_id)


def consume(credential_id: int, step: int) -> bool:
    """Mark ``step`` used if it is newer than the last used one: True for the one winner."""
    result = db.session.execute(
        update(TotpCredential)
        .where(TotpCredential.id == credential_id, TotpCredential.last_step < step)
        .values(last_step=step, last_used_at=int(_now()))
        .execution_options(synchronize_session=False))
    return result.rowcount == 1


class TotpFactor:
    id = "totp"
    amr = ("otp",)  # RFC 8176: one-time password
    identifies = False
    second = True

    def is_enrolled(self, user: Any) -> bool:
        return credential_of(user) is not None

    def enrolled_rows(self, user_id: Any):
        """The person's authenticator app (``base.enrolled_ids``)."""
        return credential_query(user_id)

    def is_available(self, tenant: Any) -> bool:
        return True

    def begin(self, user: Any, state: dict, attempt: Attempt) -> dict:
        if credential_of(user) is None:
            raise FactorUnavailable("not_enrolled")
        return {}  # nothing to send: the app shows the code

    def verify(self, user: Any, submitted: dict, state: dict, attempt: Attempt) -> Result:
        if user is None or "code" not in submitted:
            return NotMine()
        credential = credential_of(user)
        if credential is None:
            return Rejected("not_enrolled", user_id=user.id)
        if account_retry_after(user.id):
            return Rejected("attempts_capped", user_id=user.id)
        try:
            secret = sealed.unseal(PURPOSE, credential.secret_encrypted, _context(user.id))
        except sealed.Unsealable:
            current_app.logger.error("the TOTP key of user %s does not decrypt", user.id)
            return Rejected("not_enrolled", user_id=user.id)
        step = matching_step(secret, _normalize(submitted["code"]))
        if step is None:
            return wrong_try(state, user.id)
        if not consume(credential.id, step):
            return wrong_try(state, user.id, "replayed")
        return Accepted(user.id, self.amr)

    def enrol_start(self, user: Any, state: dict) -> dict:
        state.clear()
        state.update(secret=sealed.seal(PURPOSE, new_secret(), _context(user.id)),
                     started_at=int(_now()))
        return self.enrolment_page(user, state)

    def enrolment_page(self, user: Any, state: dict) -> dict:
        """The page of an enrolment under way (shown again after a wrong first code);
        empty when there is none or it expired."""
        ttl = current_app.config["IDP_TOTP_ENROL_TTL"]
        if not state.get("secret") or int(state.get("started_at") or 0) + ttl < int(_now()):
            return {}
        try:
            secret = sealed.unseal(PURPOSE, state["secret"], _context(user.id))
        except sealed.Unsealable:
            return {}
        issuer = issuer_for(user)
        uri = provisioning_uri(secret, user.email, issuer)
        grouped = " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
        return {"secret": secret, "secret_grouped": grouped, "uri": uri, "issuer": issuer,
                "qr_svg": qr_svg(uri, f"{issuer}: {user.email}")}

    def enrol_confirm(self, user: Any, submitted: dict, state: dict) -> Result:
        ttl = current_app.config["IDP_TOTP_ENROL_TTL"]
        if not state.get("secret") or int(state.get("started_at") or 0) + ttl < int(_now()):
            state.clear()
            return Rejected("expired", user_id=user.id)
        try:
            secret = sealed.unseal(PURPOSE, state["secret"], _context(user.id))
        except sealed.Unsealable:
            state.clear()
            return Rejected("expired", user_id=user.id)
        if account_retry_after(user.id):
            return Rejected("attempts_capped", user_id=user.id)
        step = matching_step(secret, _normalize(submitted.get("code")))
        if step is None:
            return Rejected("wrong", user_id=user.id)
        credential = credential_of(user)
        if credential is None:
            credential = TotpCredential(user_id=user.id)
            db.session.add(credential)
        credential.secret_encrypted = sealed.seal(PURPOSE, secret, _context(user.id))
        credential.last_step = step  # the confirming code is used up
        credential.created_at = int(_now())
        credential.last_used_at = None
        db.session.flush()
        state.clear()
        return Accepted(user.id, self.amr)

    def remove(self, user: Any) -> None:
        credential = credential_of(user)
        if credential is not None:
            db.session.delete(credential)
