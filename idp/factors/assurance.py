"""amr and acr, computed from the factors a sign-in completed; the tenants' MFA policy.

The only source is the list of completed factors (``{"id", "amr", "at"}``, kept
in the sign-in flow, then in the browser session): amr, acr and the level are
computed from it every time, never stored beside it (Kratos' 2FA bypass came
from a stale level kept next to the list).

acr values (published in discovery as ``acr_values_supported``):

- ``urn:idp:loa:1``: one factor (the password);
- ``urn:idp:loa:2``: two distinct factors (password and emailed code): amr
  gets ``mfa``;
- ``urn:idp:loa:3``: phishing-resistant: two factors one of which is a passkey
  (``PHISHING_RESISTANT_FACTORS``), or a passkey alone whose authenticator
  verified the person (amr ``user``: something you have and something you are
  or know, so it counts as two and amr gets ``mfa``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from idp.factors.base import Accepted

ACR_ONE_FACTOR = "urn:idp:loa:1"
ACR_MFA = "urn:idp:loa:2"
ACR_PHISHING_RESISTANT = "urn:idp:loa:3"
PHISHING_RESISTANT_LEVEL = 3
LEVELS = {ACR_ONE_FACTOR: 1, ACR_MFA: 2, ACR_PHISHING_RESISTANT: PHISHING_RESISTANT_LEVEL}
ACR_VALUES = list(LEVELS)
# Factors bound to the origin (WebAuthn): a phishing site cannot replay their answer.
PHISHING_RESISTANT_FACTORS = frozenset({"webauthn"})
USER_VERIFIED = "user"  # RFC 8176: the authenticator verified the person (PIN, biometrics)

OPTIONAL, REQUIRED, PHISHING_RESISTANT = "optional", "required", "phishing-resistant"
MFA_POLICIES = (OPTIONAL, REQUIRED, PHISHING_RESISTANT)
POLICY_LEVELS = {OPTIONAL: 1, REQUIRED: 2, PHISHING_RESISTANT: PHISHING_RESISTANT_LEVEL}


def completed(factor_id: str, result: Accepted, now: int | None = None) -> dict:
    """The record of one accepted factor, as the flow and the session keep it."""
    return {"id": factor_id, "amr": list(result.amr),
            "at": int(time.time() if now is None else now)}


def _weight(record: dict) -> int:
    """A phishing-resistant factor whose authenticator verified the person counts as two."""
    if record.get("id") in PHISHING_RESISTANT_FACTORS and USER_VERIFIED in (
            record.get("amr") or ()):
        return 2
    return 1


def level_of(done: Iterable[dict]) -> int:
    """0 (nothing), 1 (one factor), 2 (two distinct factors), or 3: two and more with a
    phishing-resistant one among them (a verified passkey is two on its own)."""
    by_id: dict = {}
    for record in done or ():
        by_id[record.get("id")] = max(by_id.get(record.get("id"), 0), _weight(record))
    count = min(sum(by_id.values()), 2)
    if count >= 2 and PHISHING_RESISTANT_FACTORS & set(by_id):
        return PHISHING_RESISTANT_LEVEL
    return count


def amr_of(done: Iterable[dict]) -> list[str]:
    done = list(done or ())
    values: list[str] = []
    for record in done:
        values.extend(value for value in record.get("amr") or () if value not in values)
    if level_of(done) >= 2:
        values.append("mfa")
    return values


def acr_of(done: Iterable[dict]) -> str | None:
    level = level_of(done)
    if level == 0:
        return None
    return {1: ACR_ONE_FACTOR, 2: ACR_MFA}.get(level, ACR_PHISHING_RESISTANT)


def passkey_amr(user_verified: bool, synced: bool) -> tuple[str, ...]:
    """A passkey's amr: ``hwk`` for a key bound to its device, ``swk`` for one synced across
    devices (backup eligible), plus ``user`` when the authenticator verified the person."""
    return ("swk" if synced else "hwk",) + ((USER_VERIFIED,) if user_verified else ())


def wanted_level(acr_values: Iterable[str]) -> int | None:
    """The level that meets one of these acr values (the lowest listed), None if none is ours."""
    levels = [LEVELS[value] for value in acr_values if value in LEVELS]
    return min(levels) if levels else None


def mfa_policy(tenant: Any) -> str:
    value = ((getattr(tenant, "settings", None) or {}) if tenant is not None else {}).get(
        "mfa_policy")
    return value if value in MFA_POLICIES else OPTIONAL


def strictest_policy(tenants: Iterable[Any]) -> str:
    policies = [mfa_policy(t) for t in tenants] or [OPTIONAL]
    return max(policies, key=POLICY_LEVELS.__getitem__)


def set_mfa_policy(tenant: Any, policy: str) -> None:
    """Adds to the session; the caller commits."""
    if policy not in MFA_POLICIES:
        raise ValueError(f"MFA policy must be one of {', '.join(MFA_POLICIES)}")
    tenant.settings = {**(tenant.settings or {}), "mfa_policy": policy}
