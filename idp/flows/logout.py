"""The sign-out confirmation flow: CONFIRM -> (signed out, back to the client or a page)."""

from __future__ import annotations

from enum import Enum

FLOW_TYPE = "logout"


class State(Enum):
    CONFIRM = "confirm"
