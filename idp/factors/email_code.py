"""The emailed one-time code (seeds 000/001): the second step for anyone with no other factor.

Six digits from ``secrets`` (a CSPRNG), valid IDP_LOGIN_CODE_TTL (10 minutes),
single use. Only an HMAC of the code is kept, in the factor's state inside this
sign-in's flow record, keyed with the secret key and the sign-in's id: a code
is good for the sign-in it was sent for and no other. A resend replaces the
code; IDP_LOGIN_CODE_TRIES (5) wrong tries end the sign-in (``restart``), and answers
are capped per account too (factors/attempts.py, shared with TOTP and recovery codes).
Sends wait IDP_LOGIN_CODE_COOLDOWN seconds between two, and are limited per
account and per IP in a sliding window (services/throttle.py). The email goes
through the outbox in the person's language, English and French when unknown.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any

from flask import current_app

from idp.factors.attempts import account_retry_after, wrong_try
from idp.factors.base import (
    Accepted,
    Attempt,
    FactorUnavailable,
    NotEnrollable,
    NotMine,
    Rejected,
    Result,
)

CODE_DIGITS = 6


def new_code() -> str:
    return f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"


def _digest(binding: str, code: str) -> str:
    key = str(current_app.secret_key).encode()
    return hmac.new(key, f"login-code:{binding}:{code}".encode(), hashlib.sha256).hexdigest()


def _normalize(value: Any) -> str:
    return "".join(str(value or "").split())[:32]


class EmailCodeFactor:
    id = "email_code"
    amr = ("otp",)
    identifies = False
    second = True

    def is_enrolled(self, user: Any) -> bool:
        # Nothing is set up: the policy asks it of people with no other second factor.
        return False

    def is_available(self, tenant: Any) -> bool:
        return True

    def cooldown(self, state: dict, now: int | None = None) -> int:
        """Seconds before another code may be sent (0: now)."""
        now = int(time.time() if now is None else now)
        wait = current_app.config["IDP_LOGIN_CODE_COOLDOWN"]
        return max(0, int(state.get("sent_at") or 0) + wait - now)

    def begin(self, user: Any, state: dict, attempt: Attempt) -> dict:
        from idp.flows.throttling import client_key
        from idp.mail import enqueue_message
        from idp.mail.headers import mask_email
        from idp.services.throttle import counter_for

        if user is None or not getattr(user, "email_verified", False):
            raise FactorUnavailable("no_address")
        config = current_app.config
        now = int(time.time())
        wait = self.cooldown(state, now)
        if wait:
            raise FactorUnavailable("cooldown", wait)
        counter = counter_for(current_app)
        window = config["IDP_LOGIN_CODE_WINDOW"]
        for key, limit in ((f"code:acct:{user.id}", config["IDP_LOGIN_CODE_ACCOUNT_LIMIT"]),
                           (f"ip:code:{client_key(attempt.ip)}", config["IDP_LOGIN_CODE_IP_LIMIT"])):
            decision = counter.hit(key, limit, window, now=now)
            if not decision.allowed:
                raise FactorUnavailable("throttled", decision.retry_after)
        code = new_code()
        ttl = config["IDP_LOGIN_CODE_TTL"]
        state.clear()
        state.update(digest=_digest(attempt.binding, code), expires_at=now + ttl, tries=0,
                     sent_at=now)
        enqueue_message("login_code", user.email, locale=user.locale, tenant=attempt.tenant,
                        bilingual=not user.locale, code=code, expires_minutes=max(1, ttl // 60))
        return {"sent_to": mask_email(user.email)}

    def verify(self, user: Any, submitted: dict, state: dict, attempt: Attempt) -> Result:
        if user is None or "code" not in submitted:
            return NotMine()
        if not state.get("digest"):
            return Rejected("no_code", user_id=user.id)
        if int(state.get("expires_at") or 0) <= int(time.time()):
            return Rejected("expired", user_id=user.id)
        if account_retry_after(user.id):
            return Rejected("attempts_capped", user_id=user.id)
        code = _normalize(submitted["code"])
        if hmac.compare_digest(_digest(attempt.binding, code), state["digest"]):
            state.clear()  # single use
            return Accepted(user.id, self.amr)
        return wrong_try(state, user.id)

    def enrol_start(self, user: Any, state: dict) -> dict:
        raise NotEnrollable("the emailed code uses the verified address")

    def enrol_confirm(self, user: Any, submitted: dict, state: dict) -> Result:
        raise NotEnrollable("the emailed code uses the verified address")

    def remove(self, user: Any) -> None:
        raise NotEnrollable("the emailed code uses the verified address")
