"""Recovery codes as a service: issue (replacing the old ones), and issue them once when a
person's first strong factor is set up (the authenticator app now, a passkey later).

A *strong* factor is a second factor the person sets up and that is not a fallback:
TOTP, a passkey. The passkey registration calls ``issue_if_first_strong_factor(user)``
after it attached the credential, and shows the codes it returns (None: none issued).
"""

from __future__ import annotations

from typing import Any

from idp.factors.base import Accepted
from idp.factors.recovery_code import remaining
from idp.factors.registry import FACTORS, get_factor

FACTOR_ID = "recovery_code"


def strong_factors(user: Any) -> list[str]:
    """Ids of the strong factors this person has set up."""
    return [f.id for f in FACTORS.values()
            if f.second and not getattr(f, "fallback", False) and f.is_enrolled(user)]


def issue(user: Any) -> list[str]:
    """Ten new codes; every older code dies (the caller commits, then shows them once)."""
    factor = get_factor(FACTOR_ID)
    state: dict = {}
    codes = factor.enrol_start(user, state)["codes"]
    result = factor.enrol_confirm(user, {}, state)
    assert isinstance(result, Accepted)
    return codes


def issue_if_first_strong_factor(user: Any) -> list[str] | None:
    """Codes when the person has a strong factor and no codes left yet, else None."""
    if not strong_factors(user) or remaining(user):
        return None
    return issue(user)


def drop_if_no_strong_factor(user: Any) -> bool:
    """After a strong factor is removed: with none left, the codes go too (they are its
    backup; kept alone they would be asked at sign-in as the only factor set up)."""
    if strong_factors(user) or not remaining(user):
        return False
    get_factor(FACTOR_ID).remove(user)
    return True
