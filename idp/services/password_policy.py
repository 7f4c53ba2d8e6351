"""Password policy, per tenant (seeds 000/001: >= 8 characters, upper, lower, digit, symbol).

On top of composition rules: a list of 30,000 common passwords (shipped with
zxcvbn) is refused, as is a password containing the email's local part.
Passwords are never truncated (argon2id has no 72-byte limit); 128+ characters
are accepted up to MAX_LENGTH.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from functools import lru_cache

MAX_LENGTH = 1024
SYMBOL_RE = re.compile(r"[^A-Za-z0-9\s]")


@dataclass(frozen=True)
class PasswordPolicy:
    min_length: int = 8
    require_upper: bool = True
    require_lower: bool = True
    require_digit: bool = True
    require_symbol: bool = True

    @classmethod
    def for_tenant(cls, tenant) -> PasswordPolicy:
        settings = ((tenant.settings or {}) if tenant is not None else {}).get("password_policy")
        if not isinstance(settings, dict):
            return cls()
        known = {k: v for k, v in settings.items() if k in cls.__dataclass_fields__}
        length = known.get("min_length", cls.min_length)
        flags = [v for k, v in known.items() if k != "min_length"]
        # An admin's typo ("12", "yes") falls back to the default, never to a weaker policy.
        if not isinstance(length, int) or isinstance(length, bool) or not 8 <= length <= 128 \
                or not all(isinstance(v, bool) for v in flags):
            return cls()
        return cls(**known)

    def as_dict(self) -> dict:
        return asdict(self)


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def _base_word(password: str) -> str:
    """'Dragon2024!' -> 'dragon': the word people decorate to pass composition rules."""
    return re.sub(r"^[^a-z]+|[^a-z]+$", "", password.lower())


def violations(password: str, policy: PasswordPolicy, email: str | None = None) -> list[str]:
    """Rule codes the password breaks, in the order the page lists the rules."""
    problems = []
    if len(password) < policy.min_length:
        problems.append("min_length")
    if len(password) > MAX_LENGTH:
        problems.append("max_length")
    if policy.require_upper and not any(c.isupper() for c in password):
        problems.append("upper")
    if policy.require_lower and not any(c.islower() for c in password):
        problems.append("lower")
    if policy.require_digit and not any(c.isdigit() for c in password):
        problems.append("digit")
    if policy.require_symbol and not SYMBOL_RE.search(password):
        problems.append("symbol")
    common = _common_passwords()
    lowered = password.lower()
    base = _base_word(password)
    if lowered in common or (len(base) >= 4 and base in common):
        problems.append("common")
    local = (email or "").split("@")[0].lower()
    if len(local) >= 3 and local in lowered:
        problems.append("contains_email")
    return problems
