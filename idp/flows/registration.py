"""Self-registration at a tenant, and the tenant's branded entry pages (seed 002).

Flow ``registration`` (server-side session), started once the form is accepted::

    (form accepted) --> sent --resend--> sent

The form itself needs no flow: it is one POST. The ``sent`` page keeps the
address the person typed so "Resend" needs nothing typed again; the link
itself (``/verify-email``) works in any browser, flow or not.

The tenant's branding (name, logo, colour, support contact) is
services/branding.py's, shown by flows/branding_views.py.
"""

from __future__ import annotations

from enum import Enum

from idp.flows import base as flows
from idp.models import Tenant
from idp.services import registration

FLOW_TYPE = "registration"


class State(Enum):
    SENT = "sent"


TRANSITIONS = {State.SENT.value: (State.SENT.value,)}


def start(tenant: Tenant, email: str) -> flows.Flow:
    flow = flows.start(FLOW_TYPE, State.SENT, {"slug": tenant.slug})
    flow.data["email"] = email
    flows.save(flow)
    return flow


def load(flow_id: str | None, tenant: Tenant) -> flows.Flow:
    flow = flows.load(flow_id, FLOW_TYPE)
    if flow.params.get("slug") != tenant.slug:
        raise flows.FlowError("flow of another tenant")
    return flow


def resend(flow: flows.Flow, tenant: Tenant) -> str:
    flow.move(State.SENT, TRANSITIONS)
    outcome = registration.resend(tenant, flow.data.get("email"))
    flow.data["resent"] = int(flow.data.get("resent") or 0) + 1
    flows.save(flow)
    return outcome
