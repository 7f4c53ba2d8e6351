"""The authorization flow: what stands between an /authorize request and a code.

    START ──► LOGIN ──► SELECT_TENANT ──► CONSENT ──► ISSUE
      │         │  └──────────────┐ ▲        ▲          ▲
      └─────────┴─────────────────┴─┴────────┴──────────┘  (steps are skipped when not needed)

``plan`` looks at the request and the browser session and names the next
state; the views run that step and call ``plan`` again. With ``prompt=none``
a step that needs the person becomes an error instead (OIDC Core 3.1.2.6).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum

from sqlalchemy import select

from idp.extensions import db
from idp.flows.base import Flow
from idp.models import Client, Consent, User
from idp.oauth.claims import requested_user_claims, scope_claims
from idp.services.accounts import memberships_for_client

FLOW_TYPE = "authorization"


class State(Enum):
    START = "start"
    LOGIN = "login"
    SELECT_TENANT = "select_tenant"
    CONSENT = "consent"
    ISSUE = "issue"


TRANSITIONS = {
    "start": ("login", "select_tenant", "consent", "issue"),
    "login": ("select_tenant", "consent", "issue"),
    "select_tenant": ("login", "consent", "issue"),
    "consent": ("login", "select_tenant", "issue"),
}

PROMPT_NONE_ERRORS = {
    State.LOGIN: "login_required",
    State.SELECT_TENANT: "account_selection_required",
    State.CONSENT: "consent_required",
}

LOA_PASSWORD = "urn:idp:loa:1"
LOA_MFA = "urn:idp:loa:2"
ACR_VALUES = [LOA_PASSWORD, LOA_MFA]


class AuthorizationDenied(Exception):
    """End the flow with an OAuth error sent back to the client."""

    def __init__(self, error: str, description: str = ""):
        super().__init__(description or error)
        self.error = error
        self.description = description


@dataclass
class Authentication:
    """What the browser session says about who is signed in."""

    user: User | None
    auth_time: int | None
    amr: list
    acr: str | None
    sid: str | None

    @classmethod
    def from_session(cls, session, user: User | None) -> Authentication:
        if user is None:
            return cls(None, None, [], None, None)
        return cls(user, session.get("auth_time"), session.get("amr") or [],
                   session.get("acr"), session.sid)


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


def _resolve_tenant(flow: Flow, user: User, client: Client) -> State | None:
    """Pick the tenant when it is unambiguous; SELECT_TENANT when the person must choose."""
    if "tenant_id" in flow.data:
        return None
    memberships = memberships_for_client(user, client.tenant_id)
    if not memberships:
        if client.tenant_id is not None:
            raise AuthorizationDenied("access_denied", "The user has no access to this client.")
        flow.data["tenant_id"] = None
        return None
    wanted = flow.params.get("organization")
    if wanted:
        for membership in memberships:
            if membership.tenant.slug == wanted:
                flow.data["tenant_id"] = membership.tenant_id
                return None
    if len(memberships) == 1 and "select_account" not in prompts(flow):
        flow.data["tenant_id"] = memberships[0].tenant_id
        return None
    return State.SELECT_TENANT


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
    if not client.require_consent:
        return False
    consent = db.session.scalar(select(Consent).where(
        Consent.user_id == user.id, Consent.client_id == client.client_id))
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


def plan(flow: Flow, auth: Authentication, client: Client) -> State:
    """The next step of this authorization, or AuthorizationDenied."""
    _bind_to_user(flow, auth.user)
    if auth.user is None or _fresh_login_needed(flow, auth):
        step = State.LOGIN
    else:
        step = _resolve_tenant(flow, auth.user, client)
        if step is None:
            step = State.CONSENT if _consent_needed(flow, auth.user, client) else State.ISSUE
    if step is not State.ISSUE and "none" in prompts(flow):
        raise AuthorizationDenied(PROMPT_NONE_ERRORS[step])
    if step is State.ISSUE:
        required = flow.data.get("essential_acr") or []
        if required and (auth.acr or LOA_PASSWORD) not in required:
            raise AuthorizationDenied(
                "access_denied", "The requested authentication context cannot be met.")
    return step


def acr_for(amr: list) -> str:
    return LOA_MFA if len(set(amr)) > 1 else LOA_PASSWORD


def record_consent(user: User, client: Client, access: RequestedAccess) -> None:
    """Remember what the person allowed (added to what they allowed before)."""
    consent = db.session.scalar(select(Consent).where(
        Consent.user_id == user.id, Consent.client_id == client.client_id))
    if consent is None:
        consent = Consent(user_id=user.id, client_id=client.client_id, scope="", claims="")
        db.session.add(consent)
    consent.scope = " ".join(sorted(set(consent.scope.split()) | set(access.scopes)))
    consent.claims = " ".join(sorted(set(consent.claims.split()) | set(access.claims)))
    consent.granted_at = int(time.time())
