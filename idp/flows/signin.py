"""The sign-in: a sequence of factor steps kept in a flow until the policy is met.

    IDENTIFY ──► SECOND_FACTOR ──► DONE ──► services/sessions.sign_in
    (password:    (emailed code,    (the one place the session
     identifies)   TOTP, recovery    becomes signed in)
                   code; resend,
                   choose another)
       └──────────────────────────► DONE   (policy met by the first factor, or by a
                                            trusted browser's remembered factors)

The flow record (type ``signin``, in the server-side session) holds the pending
user, the completed factors (``{"id", "amr", "at"}``), the factor waiting for an
answer and its private state. Until DONE the person is *pending*: the session
has no ``uid``, so no page (``/account``, ``/oauth/authorize``, consent, the
token endpoint through a code) treats them as signed in; the session id
rotates after each factor and at DONE.

Which second factor: an enrolled one is always asked (a ``fallback``, recovery codes,
only offered: ``alternatives`` / ``choose_factor`` switch the pending factor to another
the person may use); otherwise the level
needed is the strictest MFA policy of the tenants in play (the client's, the
tenant page's, the ``organization`` asked for, else every membership of the
person) and the level the authorization asks for (``acr_values``, an
essential ``acr``, a step-up). Phishing-resistant has no factor yet: the
sign-in fails closed (``PolicyUnmet``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from flask import session

from idp.extensions import db
from idp.factors import assurance
from idp.factors.base import Accepted, Attempt, Factor, FactorUnavailable, Rejected
from idp.factors.registry import FACTORS, get_factor
from idp.flows import base as flows
from idp.flows.authorization import FLOW_TYPE as AUTHORIZATION
from idp.flows.authorization import requested_level
from idp.models import Tenant, User
from idp.services import audit, trusted_browsers
from idp.services.accounts import memberships_for_client
from idp.services.sessions import sign_in

FLOW_TYPE = "signin"
MAX_FIELD = 1024


class State(Enum):
    IDENTIFY = "identify"
    SECOND_FACTOR = "second_factor"
    DONE = "done"


TRANSITIONS = {
    "identify": ("second_factor", "done"),
    "second_factor": ("done",),
}

ENDPOINTS = {State.IDENTIFY: "flows.login", State.SECOND_FACTOR: "flows.login_code"}


class PolicyUnmet(Exception):
    """The policy asks for a factor this person cannot use here (phishing-resistant)."""


@dataclass
class Outcome:
    """Where the sign-in stands after a step: its state (None: it ended), an error code for
    the page, and seconds to wait (throttled sends)."""

    state: State | None
    error: str | None = None
    retry_after: int = 0
    page: dict = field(default_factory=dict)


def start(authorization: flows.Flow | None, tenant_id: int | None,
          user: User | None = None, done: list | None = None) -> flows.Flow:
    """A new sign-in, for an authorization or not; ``user`` and ``done`` for a step-up."""
    params = {"authorization": authorization.id if authorization else None,
              "tenant_id": tenant_id,
              "organization": authorization.params.get("organization") if authorization else None,
              "level": max(requested_level(authorization),
                           int(authorization.data.get("step_up") or 1)) if authorization else 1}
    flow = flows.start(FLOW_TYPE, State.IDENTIFY, params)
    if user is not None:
        flow.data.update(user_id=user.id, done=list(done or []))
    return flow


def start_reauthentication(return_to: str) -> flows.Flow:
    """A fresh sign-in with a second factor before a signed-in person changes their
    factors (the account's security page); ``return_to``: the endpoint to go back to.
    The password is typed again, then a second factor, and ``complete`` signs the
    session in anew (a new ``auth_time``)."""
    flow = start(None, None)
    flow.params.update(level=assurance.LEVELS[assurance.ACR_MFA], return_to=return_to)
    flows.save(flow)
    return flow


def pending(authorization_id: str | None) -> flows.Flow | None:
    """The sign-in of this authorization (any, without one) waiting for a second factor."""
    found = []
    for flow_id, record in (session.get("flows") or {}).items():
        if record.get("type") != FLOW_TYPE or record.get("state") != State.SECOND_FACTOR.value:
            continue
        if authorization_id and (record.get("params") or {}).get("authorization") \
                != authorization_id:
            continue
        try:
            found.append(flows.load(flow_id, FLOW_TYPE))
        except flows.FlowError:
            continue
    return max(found, key=lambda f: f.expires_at) if found else None


def adopt(attempt: flows.Flow, authorization: flows.Flow) -> None:
    """A new authorization request while this sign-in waits for its code: the sign-in
    carries on for it (the plan checks its policy again once the session is signed in)."""
    attempt.params["authorization"] = authorization.id
    attempt.params["level"] = max(int(attempt.params.get("level") or 1),
                                  requested_level(authorization))
    flows.save(attempt)


def expects_second_factor(tenant_id: int | None, level: int = 1) -> bool:
    """Will the step after the password be a second factor? (The button then reads
    "Receive Code".) Known only when the tenant is, or the request asks for it."""
    tenant = db.session.get(Tenant, tenant_id) if tenant_id is not None else None
    if tenant is not None:
        level = max(level, assurance.POLICY_LEVELS[assurance.mfa_policy(tenant)])
    return level >= 2


def _policy_tenants(flow: flows.Flow, user: User) -> list[Tenant]:
    if flow.params.get("tenant_id") is not None:
        tenant = db.session.get(Tenant, flow.params["tenant_id"])
        return [tenant] if tenant is not None else []
    memberships = memberships_for_client(user, None)
    wanted = flow.params.get("organization")
    chosen = [m.tenant for m in memberships if wanted and m.tenant.slug == wanted]
    return chosen or [m.tenant for m in memberships]


def _attempt(flow: flows.Flow, tenants: list[Tenant], ip: str | None) -> Attempt:
    return Attempt(ip=ip, binding=flow.id, tenant=tenants[0] if len(tenants) == 1 else None)


def _second_factors(done: list[dict], tenants: list[Tenant]) -> list[Factor]:
    """The second factors not done yet that the tenant allows, in the registry's order."""
    done_ids = {record["id"] for record in done}
    tenant = tenants[0] if len(tenants) == 1 else None
    return [f for f in FACTORS.values()
            if f.second and f.id not in done_ids and f.is_available(tenant)]


def _enrolled(user: User, factors: list[Factor]) -> list[Factor]:
    """The ones the person set up, a ``fallback`` (recovery codes) after the others."""
    return sorted((f for f in factors if f.is_enrolled(user)),
                  key=lambda f: bool(getattr(f, "fallback", False)))


def _next_factor(user: User, done: list[dict], needed: int, tenants: list[Tenant]) -> Factor | None:
    if needed > assurance.LEVELS[assurance.ACR_MFA]:
        raise PolicyUnmet("phishing-resistant")
    seconds = _second_factors(done, tenants)
    enrolled = _enrolled(user, seconds)
    if enrolled and not any(get_factor(r["id"]).second for r in done if r["id"] in FACTORS):
        return enrolled[0]  # an enrolled factor is always asked, once a second factor
    if assurance.level_of(done) >= needed:
        return None
    if not seconds:
        raise PolicyUnmet("no_second_factor")
    return enrolled[0] if enrolled else seconds[0]


def alternatives(flow: flows.Flow) -> list[str]:
    """The other second factors this person may use instead of the pending one: those
    they set up, and the default that needs none (the first in the registry, the emailed
    code). The same rule as ``_next_factor``; a passkey joins by being enrolled."""
    user = _user(flow)
    if user is None or flow.state != State.SECOND_FACTOR.value:
        return []
    seconds = _second_factors(flow.data.get("done") or [], _policy_tenants(flow, user))
    usable = [f for f in seconds if f is seconds[0] or f.is_enrolled(user)]
    return [f.id for f in usable if f.id != flow.data.get("factor")]


def choose_factor(flow: flows.Flow, factor_id: str, ip: str | None) -> Outcome:
    """Switch the pending second factor ("send the code by email instead", "use a recovery
    code"): only to one of ``alternatives``; its ``begin`` runs (the email is sent)."""
    step = _pending_step(flow, ip)
    if step is None:
        return Outcome(None, "restart")
    _factor, user, _state, attempt = step
    if factor_id not in alternatives(flow):
        return Outcome(State.SECOND_FACTOR, "not_offered")
    factor = get_factor(factor_id)
    flow.data["factor"] = factor.id
    outcome = Outcome(State.SECOND_FACTOR)
    try:
        flow.data["page"] = factor.begin(user, _factor_state(flow, factor), attempt)
    except FactorUnavailable as unavailable:
        flow.data["page"] = {}
        outcome = Outcome(State.SECOND_FACTOR, unavailable.reason, unavailable.retry_after)
    audit.record("login_factor_chosen", user_id=user.id, ip=ip, factor=factor.id)
    db.session.commit()
    flows.save(flow)
    return outcome


def _user(flow: flows.Flow) -> User | None:
    user = db.session.get(User, flow.data.get("user_id") or 0)
    return user if user is not None and user.active else None


def advance(flow: flows.Flow, user: User, ip: str | None) -> Outcome:
    """After a factor (or at a step-up): ask the next factor, or DONE."""
    tenants = _policy_tenants(flow, user)
    needed = max(assurance.POLICY_LEVELS[assurance.strictest_policy(tenants)],
                 int(flow.params.get("level") or 1))
    try:
        factor = _next_factor(user, flow.data.get("done") or [], needed, tenants)
    except PolicyUnmet as unmet:
        audit.record("login_refused", user_id=user.id, ip=ip, reason=str(unmet))
        db.session.commit()
        flows.finish(flow)
        return Outcome(None, "policy")
    if factor is None:
        flow.move(State.DONE, TRANSITIONS)
        flows.save(flow)
        return Outcome(State.DONE)
    flow.move(State.SECOND_FACTOR, TRANSITIONS)
    flow.data["factor"] = factor.id
    state = _factor_state(flow, factor)
    outcome = Outcome(State.SECOND_FACTOR)
    try:
        flow.data["page"] = factor.begin(user, state, _attempt(flow, tenants, ip))
    except FactorUnavailable as unavailable:
        outcome = Outcome(State.SECOND_FACTOR, unavailable.reason, unavailable.retry_after)
        flow.data["notice"] = unavailable.reason  # shown once by the code page
    db.session.commit()
    flows.save(flow)
    return outcome


def _accept(flow: flows.Flow, factor: Factor, result: Accepted, ip: str | None) -> None:
    flow.data.setdefault("done", []).append(assurance.completed(factor.id, result))
    audit.record("login_factor", user_id=result.user_id, ip=ip, factor=factor.id)
    session.rotate()  # a new session id after each factor


def submit_password(flow: flows.Flow, email: str | None, password: str | None,
                    ip: str | None, trusted_cookie: str | None = None) -> Outcome:
    """The first factor: email address and password (same answer for every failure)."""
    if flow.state != State.IDENTIFY.value:
        raise flows.FlowError("not identifying")
    email, password = (email or "").strip(), password or ""
    if not email or not password:
        return Outcome(State.IDENTIFY, "missing")
    if len(email) > MAX_FIELD or len(password) > MAX_FIELD:
        return Outcome(State.IDENTIFY, "invalid")
    factor = get_factor("password")
    result = factor.verify(None, {"email": email, "password": password}, {},
                           Attempt(ip=ip, binding=flow.id))
    if not isinstance(result, Accepted):
        # Counted per account (lockout) inside the factor; the page says the same thing.
        audit.record("login_failed", user_id=getattr(result, "user_id", None), ip=ip,
                     factor=factor.id)
        db.session.commit()
        return Outcome(State.IDENTIFY, "invalid")
    flow.data["user_id"] = result.user_id
    flow.data["done"] = []
    _accept(flow, factor, result, ip)
    if trusted_cookie and _user(flow) is not None:
        _remembered_by_browser(flow, _user(flow), trusted_cookie, ip)
    db.session.commit()
    return advance(flow, _user(flow), ip)


def _remembered_by_browser(flow: flows.Flow, user: User, cookie: str, ip: str | None) -> None:
    """A trusted browser (services/trusted_browsers.py): the second factors of the sign-in
    that trusted it count again, with their own time; the plan asks what they lack."""
    days = trusted_browsers.trust_days(_policy_tenants(flow, user))
    token = trusted_browsers.token_from_cookie(cookie, user.id)
    records = trusted_browsers.remembered(user.id, token, days)
    if records:
        flow.data["done"].extend(records)
        audit.record("login_trusted_browser", user_id=user.id, ip=ip)


def trust_days(flow: flows.Flow) -> int:
    """Days this sign-in's browser may be trusted for (0: the tenants do not allow it)."""
    user = _user(flow)
    return trusted_browsers.trust_days(_policy_tenants(flow, user)) if user else 0


def trust_browser(flow: flows.Flow, label: str | None) -> tuple[str, int] | None:
    """A DONE sign-in's browser becomes trusted: the cookie value and its days."""
    user = _user(flow)
    days = trust_days(flow)
    if user is None or days <= 0 or flow.state != State.DONE.value:
        return None
    seconds = [r for r in flow.data.get("done") or []
               if r.get("id") in FACTORS and get_factor(r["id"]).second
               and not r.get("trusted_browser")]
    if not seconds:
        return None
    token = trusted_browsers.trust(user.id, seconds, days, label)
    audit.record("browser_trusted", user_id=user.id, days=days)
    db.session.commit()
    return trusted_browsers.cookie_value(user.id, token), days


def _factor_state(flow: flows.Flow, factor: Factor) -> dict:
    """The factor's private state in the flow (JSON), created empty."""
    return flow.data.setdefault("state", {}).setdefault(factor.id, {})


def _pending_step(flow: flows.Flow, ip: str | None) -> tuple[Factor, User, dict, Attempt] | None:
    """The second factor waiting, its person, state and attempt; None (the sign-in ended)
    when the person is gone or disabled meanwhile."""
    if flow.state != State.SECOND_FACTOR.value:
        raise flows.FlowError("no factor pending")
    factor, user = get_factor(flow.data["factor"]), _user(flow)
    if user is None:
        flows.finish(flow)
        return None
    return factor, user, _factor_state(flow, factor), _attempt(
        flow, _policy_tenants(flow, user), ip)


def submit_code(flow: flows.Flow, code: str | None, ip: str | None) -> Outcome:
    """The answer to the pending second factor."""
    step = _pending_step(flow, ip)
    if step is None:
        return Outcome(None, "restart")
    factor, user, state, attempt = step
    result = factor.verify(user, {"code": str(code or "")[:MAX_FIELD]}, state, attempt)
    if isinstance(result, Accepted) and result.user_id == user.id:
        _accept(flow, factor, result, ip)
        db.session.commit()
        return advance(flow, user, ip)
    reason = result.reason if isinstance(result, Rejected) else "wrong"
    audit.record("login_failed", user_id=user.id, ip=ip, factor=factor.id, reason=reason)
    db.session.commit()
    if isinstance(result, Rejected) and result.restart:
        flows.finish(flow)
        return Outcome(None, "restart")
    flows.save(flow)
    return Outcome(State.SECOND_FACTOR, reason)


def request_factor_reset(flow: flows.Flow, ip: str | None) -> Outcome:
    """"No access to the app": the pending person asks their tenants' admins for a reset
    (services/factor_reset.py); the sign-in waits on, for another factor."""
    from idp.services import factor_reset

    step = _pending_step(flow, ip)
    if step is None:
        return Outcome(None, "restart")
    _factor, user, _state, _attempt = step
    try:
        factor_reset.request_reset(user, _policy_tenants(flow, user), ip=ip)
    except factor_reset.Throttled as throttled:
        db.session.rollback()
        return Outcome(State.SECOND_FACTOR, "reset_throttled", throttled.retry_after)
    db.session.commit()
    return Outcome(State.SECOND_FACTOR, page={"reset_requested": True})


def resend(flow: flows.Flow, ip: str | None) -> Outcome:
    """A new code replaces the previous one (cooldown and send limits apply)."""
    step = _pending_step(flow, ip)
    if step is None:
        return Outcome(None, "restart")
    factor, user, state, attempt = step
    try:
        flow.data["page"] = factor.begin(user, state, attempt)
    except FactorUnavailable as unavailable:
        return Outcome(State.SECOND_FACTOR, unavailable.reason, unavailable.retry_after)
    db.session.commit()
    flows.save(flow)
    return Outcome(State.SECOND_FACTOR, page={"resent": True})


def take_notice(flow: flows.Flow) -> str | None:
    """The problem the last automatic send met (throttled...), once."""
    notice = flow.data.pop("notice", None)
    if notice:
        flows.save(flow)
    return notice


def cooldown(flow: flows.Flow) -> int:
    factor = get_factor(flow.data["factor"])
    state = (flow.data.get("state") or {}).get(factor.id) or {}
    wait = getattr(factor, "cooldown", None)
    return wait(state) if wait else 0


def complete(flow: flows.Flow, ip: str | None) -> flows.Flow | None:
    """DONE: the session becomes signed in; returns the authorization to resume, if any."""
    if flow.state != State.DONE.value:
        raise flows.FlowError("sign-in not done")
    done = flow.data.get("done") or []
    authorization = None
    if flow.params.get("authorization"):
        try:
            authorization = flows.load(flow.params["authorization"], AUTHORIZATION)
        except flows.FlowError:
            authorization = None
    if authorization is not None:
        authorization.data["login_done"] = True
        authorization.data.pop("step_up", None)
        flows.save(authorization)
    flows.finish(flow)
    audit.record("login", user_id=flow.data["user_id"], ip=ip, amr=assurance.amr_of(done))
    db.session.commit()
    sign_in(session, flow.data["user_id"], done)
    return authorization
