"""The authorization flow: what stands between an /authorize request and a code.

    START ──► LOGIN ──► SELECT_TENANT ──► TERMS ──► CONSENT ──► ISSUE
      │         ▲  └──────────────┐ ▲        ▲        ▲          ▲
      └─────────┴─────────────────┴─┴────────┴────────┴──────────┘  (steps are skipped when not needed)

LOGIN is the sign-in (flows/signin.py: password, the company when the person
must pick one, then the second factor that company's policy asks for); it is
also the step-up when a signed-in session does not meet the tenant's MFA policy
or the ``acr_values`` / essential ``acr`` asked for: the sign-in then asks only
for the missing factor. ``max_age`` and ``prompt=login``
ask every factor again. ``plan`` looks at the request and the browser session
and names the next state; the views run that step (``ENDPOINTS``) and call
``plan`` again. With ``prompt=none`` a step that needs the person becomes an
error instead (OIDC Core 3.1.2.6): ``PROMPT_NONE_ERRORS``, else
``interaction_required``.

SELECT_TENANT is the picker for a person already signed in: ``prompt=select_account``,
**Switch account** (``reselect``), or a client that serves several of their
companies but not the one the session uses. flows/tenant_pick.py holds the rule;
the pick can then step up (LOGIN) when the company's policy asks for more than the
session has. A tenant picked earlier that the client no longer serves (the tenant
was disabled, the membership ended) is picked again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum

from idp.extensions import db
from idp.factors import assurance
from idp.flows import tenant_pick
from idp.flows.base import Flow
from idp.models import Client, Tenant, User
from idp.oauth.claims import requested_user_claims, scope_claims
from idp.services import clients, consents, memberships
from idp.services.accounts import memberships_for_client
from idp.services.sessions import completed_factors
from idp.services.terms import pending_terms

FLOW_TYPE = "authorization"


class State(Enum):
    START = "start"
    LOGIN = "login"
    SELECT_TENANT = "select_tenant"
    TERMS = "terms"
    CONSENT = "consent"
    ISSUE = "issue"


TRANSITIONS = {
    "start": ("login", "select_tenant", "consent", "issue", "terms"),
    "login": ("select_tenant", "consent", "issue", "terms"),
    "select_tenant": ("login", "consent", "issue", "terms"),
    "terms": ("login", "select_tenant", "consent", "issue"),
    "consent": ("login", "select_tenant", "issue", "terms"),
}

# The view that runs each step a person takes (ISSUE is the code, no page).
ENDPOINTS = {
    State.LOGIN: "flows.login",
    State.SELECT_TENANT: "flows.select_tenant",
    State.CONSENT: "flows.consent",
    State.TERMS: "terms.step",
}

PROMPT_NONE_ERRORS = {
    State.LOGIN: "login_required",
    State.SELECT_TENANT: "account_selection_required",
    State.CONSENT: "consent_required",
    State.TERMS: "interaction_required",
}

ACR_VALUES = assurance.ACR_VALUES  # published in discovery


def prompt_none_error(step: State) -> str:
    """The error a step gives under prompt=none; a step with none of its own needs the person."""
    return PROMPT_NONE_ERRORS.get(step, "interaction_required")


class AuthorizationDenied(Exception):
    """End the flow with an OAuth error sent back to the client."""

    def __init__(self, error: str, description: str = ""):
        super().__init__(description or error)
        self.error = error
        self.description = description


@dataclass
class Authentication:
    """What the browser session says about who is signed in: amr and acr are computed
    from the factors it completed (factors/assurance.py)."""

    user: User | None
    auth_time: int | None
    sid: str | None
    factors: list = field(default_factory=list)
    tenant_id: int | None = None  # the company the session works for (flows/tenant_pick.py)

    @classmethod
    def from_session(cls, session, user: User | None) -> Authentication:
        if user is None:
            return cls(None, None, None, [])
        return cls(user, session.get("auth_time"), session.sid, completed_factors(session),
                   tenant_pick.in_use(session))

    @property
    def amr(self) -> list[str]:
        return assurance.amr_of(self.factors)

    @property
    def acr(self) -> str | None:
        return assurance.acr_of(self.factors)

    @property
    def level(self) -> int:
        return assurance.level_of(self.factors)


def prompts(flow: Flow) -> set[str]:
    return set((flow.params.get("prompt") or "").split())


def _fresh_login_needed(flow: Flow, auth: Authentication) -> bool:
    if flow.data.get("login_done"):
        return False
    if "login" in prompts(flow):
        return True
    max_age = flow.params.get("max_age")
    if max_age is not None:
        # max_age=0 is prompt=login (OIDC Core 3.1.2.1), even within the second of a login.
        if int(max_age) == 0 or auth.auth_time is None:
            return True
        if int(time.time()) - auth.auth_time > int(max_age):
            return True
    hint_sub = flow.data.get("id_token_hint_sub")
    return bool(hint_sub and auth.user is not None and hint_sub != auth.user.sub)


def choosing(flow: Flow) -> bool:
    """Did the request (``prompt=select_account``) or the person (Switch account) ask to
    pick the company again?"""
    return "select_account" in prompts(flow) or bool(flow.data.get("reselect"))


def _resolve_tenant(flow: Flow, auth: Authentication, client: Client) -> State | None:
    """Pick the tenant when it is unambiguous; SELECT_TENANT when the person must choose."""
    served = memberships.served_memberships(auth.user, client)
    if "tenant_id" in flow.data:
        picked = flow.data["tenant_id"]
        if picked is None or any(m.tenant_id == picked for m in served):
            return None
        flow.data.pop("tenant_id")  # no longer served: disabled, or the membership ended
    if not served:
        # Only a person of no company at all may use a client shared with every tenant
        # without one; a company disabled is no company to sign in to.
        if client.tenant_id is not None or clients.shared_with(client) \
                or memberships_for_client(auth.user, None):
            raise AuthorizationDenied("access_denied", "The user has no access to this client.")
        flow.data["tenant_id"] = None
        return None
    decision = tenant_pick.decide(served, organization=flow.params.get("organization"),
                                  in_use=auth.tenant_id, select_account=choosing(flow))
    if decision.pick:
        return State.SELECT_TENANT
    flow.data["tenant_id"] = decision.membership.tenant_id
    return None


@dataclass
class RequestedAccess:
    """What an authorization would release: the scopes the client may have among those
    requested, and the claims requested one by one (``claims``) that they do not cover."""

    scopes: list[str]
    claims: list[str]


def requested_access(flow: Flow, client: Client) -> RequestedAccess:
    scope = client.get_allowed_scope(flow.params.get("scope"))
    covered = scope_claims(scope)
    claims = [c for c in requested_user_claims(flow.data.get("claims")) if c not in covered]
    return RequestedAccess(scope.split(), claims)


def _consent_needed(flow: Flow, user: User, client: Client) -> bool:
    if flow.data.get("consented"):
        return False
    if "consent" in prompts(flow):
        return True
    if not client.third_party:
        return False
    consent = consents.find(user.id, client.client_id)
    if consent is None:
        return True
    wanted = requested_access(flow, client)
    granted_claims = set(consent.claims.split()) | scope_claims(consent.scope)
    return not (set(wanted.scopes) <= set(consent.scope.split())
                and set(wanted.claims) <= granted_claims)


USER_DECISIONS = ("tenant_id", "consented")


def _bind_to_user(flow: Flow, user: User | None) -> None:
    """The organisation and the consent chosen in a flow belong to the person who chose
    them: if someone else is signed in when the flow resumes (a sign-out and sign-in in
    another tab keeps the flows), they decide again."""
    if user is None:
        return
    if flow.data.get("user_id") not in (None, user.id):
        for key in USER_DECISIONS:
            flow.data.pop(key, None)
    flow.data["user_id"] = user.id


def requested_level(flow: Flow) -> int:
    """The level the request asks for: ``acr_values`` (voluntary: only our values count) and
    an essential ``acr`` claim; 1 when neither names one of ours."""
    voluntary = assurance.wanted_level((flow.params.get("acr_values") or "").split()) or 1
    essential = assurance.wanted_level(flow.data.get("essential_acr") or []) or 1
    return max(voluntary, essential)


def needed_level(flow: Flow, tenant_id: int | None, user: User) -> int:
    """The level this authorization needs: the tenant's MFA policy and the request's (no
    tenant: no company policy applies, the person has none the client serves)."""
    tenant = db.session.get(Tenant, tenant_id) if tenant_id is not None else None
    policy = assurance.strictest_policy([tenant] if tenant is not None else [])
    return max(assurance.POLICY_LEVELS[policy], requested_level(flow))


def _essential_acr_unreachable(flow: Flow) -> bool:
    required = flow.data.get("essential_acr") or []
    return bool(required) and assurance.wanted_level(required) is None


def plan(flow: Flow, auth: Authentication, client: Client) -> State:
    """The next step of this authorization, or AuthorizationDenied."""
    _bind_to_user(flow, auth.user)
    if _essential_acr_unreachable(flow):
        raise AuthorizationDenied(
            "access_denied", "The requested authentication context cannot be met.")
    flow.data.pop("step_up", None)
    if auth.user is None or _fresh_login_needed(flow, auth):
        step = State.LOGIN
    else:
        step = _resolve_tenant(flow, auth, client)
        if step is None:
            needed = needed_level(flow, flow.data.get("tenant_id"), auth.user)
            if auth.level < needed:
                flow.data["step_up"] = needed  # the sign-in asks for the missing factor
                step = State.LOGIN
            elif pending_terms(auth.user, flow.data.get("tenant_id"), client):
                step = State.TERMS
            else:
                step = State.CONSENT if _consent_needed(flow, auth.user, client) \
                    else State.ISSUE
    if step is not State.ISSUE and "none" in prompts(flow):
        raise AuthorizationDenied(prompt_none_error(step))
    return step


def record_consent(user: User, client: Client, access: RequestedAccess) -> None:
    """Remember what the person allowed (added to what they allowed before)."""
    consents.grant(user.id, client.client_id, access.scopes, access.claims)
