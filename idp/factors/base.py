"""The interface every factor implements.

A factor ``verify``s what the person submitted and answers with a
``FactorResult``: accepted (with the AMR value it contributes), rejected, or
"not mine" so the flow can try the next factor.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol, runtime_checkable


class Outcome(Enum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    NOT_MINE = "not_mine"


@dataclass(frozen=True)
class FactorResult:
    outcome: Outcome
    amr: str | None = None

    @property
    def accepted(self) -> bool:
        return self.outcome is Outcome.ACCEPTED


@runtime_checkable
class Factor(Protocol):
    id: str
    amr: str

    def begin(self, user: Any, context: dict) -> dict:
        """Prepare a challenge (send a code, create WebAuthn options); returns page data."""

    def verify(self, user: Any, submitted: dict, context: dict) -> FactorResult:
        """Check what the person submitted."""

    def enrol(self, user: Any, submitted: dict) -> None:
        """Attach this factor to the account."""
