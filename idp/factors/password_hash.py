"""Password hashing: argon2id at OWASP's parameters (m=19 MiB, t=2, p=1).

Unknown accounts are checked against a dummy hash, so an attacker cannot tell
from the timing whether an address exists.
"""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

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
