"""Setting up and removing second factors from the account page, with what must follow
each change: the audit event, the email to the person (services/factor_notices.py) and
the recovery codes (issued with the first strong factor, dropped with the last).

The step-up (a recent sign-in with a second factor) is the page's to check: it holds
the browser session (account/security_views.py).
"""

from __future__ import annotations

from typing import Any

from idp.factors.base import Accepted, NotEnrollable
from idp.factors.registry import FACTORS, get_factor
from idp.services import audit, recovery_codes
from idp.services.factor_notices import notify

# Factors set up on the account page here (the passkey has its own page).
MANAGED = ("totp",)


class FactorChangeError(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _managed(factor_id: str):
    if factor_id not in MANAGED or factor_id not in FACTORS:
        raise FactorChangeError("unknown_factor")
    return get_factor(factor_id)


def enrol_start(user: Any, factor_id: str, state: dict) -> dict:
    return _managed(factor_id).enrol_start(user, state)


def enrol_confirm(user: Any, factor_id: str, submitted: dict, state: dict, *,
                  ip: str | None = None) -> list[str] | None:
    """Attach the factor; the recovery codes to show once if it is the first strong one.
    The caller commits."""
    result = _managed(factor_id).enrol_confirm(user, submitted, state)
    if not isinstance(result, Accepted):
        raise FactorChangeError(getattr(result, "reason", "wrong"))
    audit.record("factor_added", user_id=user.id, ip=ip, factor=factor_id)
    notify(user, f"{factor_id}_added")
    return recovery_codes.issue_if_first_strong_factor(user)


def remove(user: Any, factor_id: str, *, ip: str | None = None) -> None:
    factor = _managed(factor_id)
    if not factor.is_enrolled(user):
        raise FactorChangeError("not_enrolled")
    try:
        factor.remove(user)
    except NotEnrollable as exc:
        raise FactorChangeError("not_enrolled") from exc
    dropped = recovery_codes.drop_if_no_strong_factor(user)
    audit.record("factor_removed", user_id=user.id, ip=ip, factor=factor_id,
                 recovery_codes_dropped=dropped)
    notify(user, f"{factor_id}_removed")


def regenerate_recovery_codes(user: Any, *, ip: str | None = None) -> list[str]:
    """New codes, the old ones dead; only with a strong factor to back up."""
    if not recovery_codes.strong_factors(user):
        raise FactorChangeError("no_strong_factor")
    codes = recovery_codes.issue(user)
    audit.record("recovery_codes_issued", user_id=user.id, ip=ip)
    notify(user, "recovery_codes_issued")
    return codes
