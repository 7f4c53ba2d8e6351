"""Password factor: argon2id at OWASP's parameters (m=19 MiB, t=2, p=1).

Unknown accounts are checked against a dummy hash, so an attacker cannot tell
from the timing whether an address exists.
"""

from __future__ import annotations

from typing import Any

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from idp.factors.base import Accepted, Attempt, NotMine, Rejected, Result

# Stay at or under 32 MiB: above it glibc returns the buffer to the OS after every
# hash and the time doubles (NOTES.md).
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID)
MAX_PASSWORD_BYTES = 4096
_DUMMY_HASH = HASHER.hash("dummy password to spend the same time")


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant-work check; a missing hash spends the time of a real one."""
    if not isinstance(password, str) or len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        password = ""
    try:
        return HASHER.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return HASHER.check_needs_rehash(password_hash)


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
