"""Recovery codes: ten single-use codes, the way back in without the app (or passkey).

Each code is 12 characters from a 32-letter alphabet without look-alikes (60 random bits
from ``secrets``), shown once as ``xxxx-xxxx-xxxx``. Only an HMAC-SHA-256 of each is
stored, keyed with a key derived from IDP_SECRET_KEY and bound to the user id. A slow
password hash (argon2) is not needed: it exists to protect low-entropy secrets chosen by
people, while these are random with 60 bits, and the key is not in the database, so a
copy of the table alone cannot even be searched offline. The HMAC also makes the check
one indexed lookup and one conditional UPDATE (``... WHERE used_at IS NULL``): a code
works once, also when two workers receive it at the same moment.

amr: ``otp`` (RFC 8176 has no value for a recovery code; it is a one-time password
printed in advance). It is a second factor distinct from the password, so with the
password it meets the ``required`` policy (acr ``urn:idp:loa:2``); it is not
phishing-resistant (it can be typed into any page) and never meets that level.

``fallback``: never the factor a sign-in asks first; it is offered as "use a recovery
code" wherever a second factor is asked (flows/signin.py ``alternatives``).
Enrolment: ``enrol_start`` draws ten new codes (kept hashed in the state until
``enrol_confirm`` replaces the old ones with them: all old codes die at once).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any

from flask import current_app
from sqlalchemy import delete, func, select, update

from idp.extensions import db
from idp.factors.attempts import account_retry_after, wrong_try
from idp.factors.base import Accepted, Attempt, FactorUnavailable, NotMine, Rejected, Result
from idp.models import RecoveryCode

COUNT = 10
ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"  # no 0/o, 1/l/i
LENGTH = 12
GROUP = 4


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return "-".join(raw[i:i + GROUP] for i in range(0, LENGTH, GROUP))


def normalize(value: Any) -> str:
    return "".join(c for c in str(value or "").lower()[:64] if c.isalnum())


def digest(user_id: int, code: str) -> str:
    key = hashlib.sha256(b"idp.recovery-code.v1:" + str(current_app.secret_key).encode()).digest()
    return hmac.new(key, f"{user_id}:{normalize(code)}".encode(), hashlib.sha256).hexdigest()


def unused_query(user_id: Any):
    """A SELECT of the person's unused codes (``user_id``: a value or a bind parameter)."""
    return select(RecoveryCode.id).where(RecoveryCode.user_id == user_id,
                                         RecoveryCode.used_at.is_(None))


def remaining(user: Any) -> int:
    if user is None or getattr(user, "id", None) is None:
        return 0
    return db.session.scalar(
        select(func.count()).select_from(unused_query(user.id).subquery())) or 0


class RecoveryCodeFactor:
    id = "recovery_code"
    amr = ("otp",)
    identifies = False
    second = True
    fallback = True

    def is_enrolled(self, user: Any) -> bool:
        return remaining(user) > 0

    def enrolled_rows(self, user_id: Any):
        """The person's unused codes (``base.enrolled_ids``)."""
        return unused_query(user_id)

    def is_available(self, tenant: Any) -> bool:
        return True

    def begin(self, user: Any, state: dict, attempt: Attempt) -> dict:
        if remaining(user) == 0:
            raise FactorUnavailable("not_enrolled")
        return {}

    def verify(self, user: Any, submitted: dict, state: dict, attempt: Attempt) -> Result:
        if user is None or "code" not in submitted:
            return NotMine()
        if account_retry_after(user.id):
            return Rejected("attempts_capped", user_id=user.id)
        code = normalize(submitted["code"])
        if len(code) != LENGTH:
            return wrong_try(state, user.id)
        used = db.session.execute(
            update(RecoveryCode)
            .where(RecoveryCode.user_id == user.id,
                   RecoveryCode.code_hash == digest(user.id, code),
                   RecoveryCode.used_at.is_(None))
            .values(used_at=int(time.time()))
            .execution_options(synchronize_session=False))
        if used.rowcount != 1:
            return wrong_try(state, user.id)
        from idp.services.factor_notices import notify

        notify(user, "recovery_code_used")  # committed with the sign-in's step
        return Accepted(user.id, self.amr)

    def enrol_start(self, user: Any, state: dict) -> dict:
        codes = [new_code() for _ in range(COUNT)]
        state.clear()
        state["digests"] = [digest(user.id, code) for code in codes]
        return {"codes": codes}

    def enrol_confirm(self, user: Any, submitted: dict, state: dict) -> Result:
        digests = list(state.get("digests") or ())
        if len(digests) != COUNT:
            return Rejected("expired", user_id=user.id)
        self.remove(user)
        db.session.add_all(RecoveryCode(user_id=user.id, code_hash=value) for value in digests)
        db.session.flush()
        state.clear()
        return Accepted(user.id, self.amr)

    def remove(self, user: Any) -> None:
        db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
