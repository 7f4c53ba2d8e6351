"""Password factor: the email address and password identify the person.

The hashing itself (argon2id, the dummy hash for unknown accounts) is in
``password_hash.py``, which services/accounts.py uses too without importing a factor.
"""

from __future__ import annotations

from typing import Any

from idp.factors.base import Accepted, Attempt, NotMine, Rejected, Result


class PasswordFactor:
    """Email address and password: identifies the person (services/accounts.authenticate:
    same answer and cost for every failure, lockout counted per account)."""

    id = "password"
    amr = ("pwd",)
    identifies = True
    second = False

    def is_enrolled(self, user: Any) -> bool:
        return bool(getattr(user, "password_hash", None))

    def is_available(self, tenant: Any) -> bool:
        return True

    def begin(self, user: Any, state: dict, attempt: Attempt) -> dict:
        return {}

    def verify(self, user: Any, submitted: dict, state: dict, attempt: Attempt) -> Result:
        from idp.services import accounts

        if "password" not in submitted:
            return NotMine()
        email = user.email if user is not None else str(submitted.get("email") or "")
        try:
            found = accounts.authenticate(email, str(submitted["password"]), ip=attempt.ip)
        except accounts.InvalidCredentials as failure:
            return Rejected("invalid", user_id=failure.user_id)
        if user is not None and found.id != user.id:
            return Rejected("invalid", user_id=user.id)
        return Accepted(found.id, self.amr)

    def enrol_start(self, user: Any, state: dict) -> dict:
        from idp.services import accounts

        return {"policy": accounts.password_policy_for(user)}

    def enrol_confirm(self, user: Any, submitted: dict, state: dict) -> Result:
        from idp.services import accounts

        try:
            accounts.set_password(user, str(submitted.get("password") or ""))
        except accounts.WeakPassword as weak:
            return Rejected(",".join(weak.problems), user_id=user.id)
        return Accepted(user.id, self.amr)

    def remove(self, user: Any) -> None:
        user.password_hash = None
