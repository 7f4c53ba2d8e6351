"""Flow records kept in the server-side session.

A flow is a small JSON record: id, type, state, expiry, the parameters that
started it and data private to its steps. Views load it, ask it for the next
state, and save it; a flow checks its own expiry and refuses transitions its
table does not allow.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass, field
from enum import Enum

from flask import current_app, session

MAX_FLOWS_PER_SESSION = 8


class FlowError(Exception):
    """The flow is unknown, expired, or cannot move to the requested state."""


class FlowExpired(FlowError):
    pass


@dataclass
class Flow:
    id: str
    type: str
    state: str
    expires_at: int
    params: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)

    @property
    def expired(self) -> bool:
        return self.expires_at <= int(time.time())

    def move(self, new_state: Enum, transitions: dict) -> None:
        allowed = transitions.get(self.state, ())
        if new_state.value != self.state and new_state.value not in allowed:
            raise FlowError(f"{self.type}: {self.state} -> {new_state.value} is not allowed")
        self.state = new_state.value


def start(flow_type: str, state: Enum, params: dict) -> Flow:
    flow = Flow(id=secrets.token_urlsafe(16), type=flow_type, state=state.value,
                expires_at=int(time.time()) + current_app.config["IDP_FLOW_TTL"],
                params=params)
    save(flow)
    return flow


def load(flow_id: str | None, flow_type: str) -> Flow:
    record = (session.get("flows") or {}).get(flow_id or "")
    if not record or record.get("type") != flow_type:
        raise FlowError("unknown flow")
    flow = Flow(**record)
    if flow.expired:
        finish(flow)
        raise FlowExpired("flow expired")
    return flow


def save(flow: Flow) -> None:
    flows = dict(session.get("flows") or {})
    flows[flow.id] = asdict(flow)
    if len(flows) > MAX_FLOWS_PER_SESSION:
        for old in sorted(flows, key=lambda k: flows[k]["expires_at"])[:-MAX_FLOWS_PER_SESSION]:
            flows.pop(old)
    session["flows"] = flows


def finish(flow: Flow) -> None:
    flows = dict(session.get("flows") or {})
    flows.pop(flow.id, None)
    session["flows"] = flows
