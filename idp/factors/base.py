"""The interface every factor implements, and the results it answers with.

A factor either identifies the person itself (``identifies``: the password with
its email address, later a passkey or Google) or checks a person the sign-in
already knows (the emailed code, later TOTP). Whatever a factor must remember
between two requests (a code's hash, a WebAuthn challenge, an upstream
state/nonce) lives in ``state``: a JSON-able dict the sign-in flow keeps for it
in the server-side session, private to that factor.

``verify`` answers one of three results:

- ``Accepted``: the person proved it; ``amr`` are the RFC 8176 values it adds;
- ``Rejected``: it is this factor's input but it is wrong; ``reason`` is for the
  page and the audit log; ``restart`` ends the sign-in (too many tries);
- ``NotMine``: the submission is not for this factor (the next one may take it).

amr and acr are computed from the accepted results (factors/assurance.py),
never written by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Attempt:
    """Where a factor runs: the request's address, the tenant whose policy applies (if
    known), and ``binding``, the id of this sign-in (a code is good for it only)."""

    ip: str | None
    binding: str
    tenant: Any = None


@dataclass(frozen=True)
class Accepted:
    user_id: int
    amr: tuple[str, ...]


@dataclass(frozen=True)
class Rejected:
    reason: str
    user_id: int | None = None
    restart: bool = False


@dataclass(frozen=True)
class NotMine:
    pass


Result = Accepted | Rejected | NotMine


class FactorUnavailable(Exception):
    """The factor cannot run now; ``retry_after`` seconds (0: not for this person)."""

    def __init__(self, reason: str, retry_after: int = 0):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class NotEnrollable(Exception):
    """This factor has nothing to set up (the emailed code uses the verified address)."""


@runtime_checkable
class Factor(Protocol):
    id: str
    amr: tuple[str, ...]
    identifies: bool  # finds the user from what was submitted (may start a sign-in)
    second: bool  # may be the second step of a sign-in

    def is_enrolled(self, user: Any) -> bool:
        """The person set this factor up; an enrolled second factor is always asked."""

    def is_available(self, tenant: Any) -> bool:
        """The tenant (None: no tenant known) allows this factor."""

    def begin(self, user: Any, state: dict, attempt: Attempt) -> dict:
        """Prepare a challenge (send a code...), keep what it needs in ``state``; returns
        page data. Raises FactorUnavailable when it cannot (throttled, no address)."""

    def verify(self, user: Any, submitted: dict, state: dict, attempt: Attempt) -> Result:
        """Check what the person submitted; ``user`` is None for a factor that identifies."""

    def enrol_start(self, user: Any, state: dict) -> dict:
        """First half of setting the factor up; returns page data (NotEnrollable)."""

    def enrol_confirm(self, user: Any, submitted: dict, state: dict) -> Result:
        """Second half: Accepted once the factor is attached to the account."""

    def remove(self, user: Any) -> None:
        """Detach the factor from the account (the caller commits)."""


# The one SELECT per tuple of factors (``enrolled_ids``), built once with a ``uid`` parameter.
_ENROLMENT_QUERIES: dict[tuple[str, ...], Any] = {}


def enrolled_ids(user: Any, factors: list) -> set[str]:
    """The ids of ``factors`` this person set up. Factors whose set-up is rows of a table
    say which (``enrolled_rows(user_id)``, a SELECT of them) and are asked in one
    statement together; the others answer ``is_enrolled`` themselves."""
    from sqlalchemy import bindparam, select

    from idp.extensions import db

    found = {f.id for f in factors if not hasattr(f, "enrolled_rows") and f.is_enrolled(user)}
    kept = tuple(f for f in factors if hasattr(f, "enrolled_rows"))
    if not kept or user is None or getattr(user, "id", None) is None:
        return found
    key = tuple(f.id for f in kept)
    query = _ENROLMENT_QUERIES.get(key)
    if query is None:
        uid = bindparam("uid")
        query = _ENROLMENT_QUERIES[key] = select(
            *(f.enrolled_rows(uid).exists().label(f"e{i}") for i, f in enumerate(kept)))
    answers = db.session.execute(query, {"uid": user.id}).one()
    return found | {factor_id for factor_id, yes in zip(key, answers, strict=True) if yes}
