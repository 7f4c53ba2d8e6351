"""The sign-in: a sequence of factor steps kept in a flow until the policy is met.

    IDENTIFY ──► SELECT_TENANT ──► SECOND_FACTOR ──► DONE ──► services/sessions.sign_in
    (password,    (which company:   (emailed code,    (the one place the session
     or a passkey  flows/tenant_     TOTP, recovery    becomes signed in)
     passwordless) pick.py)          code, passkey;
       │                             resend, choose
       │                             another)
       │                                 │    ▲
       │                                 ▼    │
       │                               ENROL ─┴───► DONE  (phishing-resistant policy, no
       │                                                   passkey yet: register one, then
       │                                                   signed in)
       ├──────────────────────────► SECOND_FACTOR     (one company, or none to pick)
       └─────────────────────────────────────────────► DONE (policy met by the first factor,
                                                            or by a trusted browser's
                                                            remembered factors)

The flow record (type ``signin``, in the server-side session) holds the pending
user, the completed factors (``{"id", "amr", "at"}``), the factor waiting for an
answer and its private state. Until DONE the person is *pending*: the session
has no ``uid``, so no page (``/account``, ``/oauth/authorize``, consent, the
token endpoint through a code) treats them as signed in; the session id
rotates after each factor and at DONE.

Which company: for an authorization, after the first factor the person picks
among their memberships the client serves (skipped for one, for an
``organization`` that names one, or when the client's tenant or the tenant page
fixes it); the pick is the authorization's tenant once the sign-in is done.
The pending person picks without being signed in (the picker page checks the
flow, not a session).

Which second factor: an enrolled one is always asked (a ``fallback``, recovery
codes, only offered: ``alternatives`` / ``choose_factor`` switch the pending factor
to another the person may use); otherwise the level
needed is the MFA policy of the tenant in play (the one picked, the client's,
the tenant page's; a sign-in outside any authorization: the strictest of every
membership of the person) and the level the authorization asks for
(``acr_values``, an essential ``acr``, a step-up). Phishing-resistant asks for a
passkey; a person without one, once the password and the emailed code are done,
is walked through registering one (ENROL: the only place a session that is not
signed in may register a factor, and it is signed in only once the passkey is
attached).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum

from flask import current_app, g, session

from idp.extensions import db
from idp.factors import assurance
from idp.factors.base import (
    Accepted,
    Attempt,
    Factor,
    FactorUnavailable,
    Rejected,
    enrolled_ids,
)
from idp.factors.registry import FACTORS, get_factor
from idp.flows import base as flows
from idp.flows import tenant_pick
from idp.flows.authorization import FLOW_TYPE as AUTHORIZATION
from idp.flows.authorization import requested_level
from idp.models import Tenant, User
from idp.services import audit, memberships, trusted_browsers
from idp.services.accounts import memberships_for_client
from idp.services.sessions import sign_in

FLOW_TYPE = "signin"
MAX_FIELD = 1024


class State(Enum):
    IDENTIFY = "identify"
    SELECT_TENANT = "select_tenant"
    SECOND_FACTOR = "second_factor"
    ENROL = "enrol"
    DONE = "done"


TRANSITIONS = {
    "identify": ("select_tenant", "second_factor", "enrol", "done"),
    "select_tenant": ("second_factor", "enrol", "done"),
    "second_factor": ("enrol", "done"),
    "enrol": ("done",),
}

ENDPOINTS = {State.IDENTIFY: "flows.login", State.SELECT_TENANT: "flows.login_tenant",
             State.SECOND_FACTOR: "flows.login_code", State.ENROL: "flows.login_passkey_enrol"}
# Second factors with a page of their own (the others are answered on the code page).
FACTOR_ENDPOINTS = {"webauthn": "flows.login_passkey"}


class PolicyUnmet(Exception):
    """The policy asks for a factor this person cannot use here."""


class EnrolmentNeeded(Exception):
    """The policy asks for a factor the person has not set up (a passkey): ENROL."""

    def __init__(self, factor_id: str):
        super().__init__(factor_id)
        self.factor_id = factor_id


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
    """A new sign-in, for an authorization or not; ``user`` and ``done`` for a step-up (whose
    tenant is the one the authorization chose)."""
    if user is not None and authorization is not None \
            and authorization.data.get("tenant_id") is not None:
        tenant_id = authorization.data["tenant_id"]
    params = {"authorization": authorization.id if authorization else None,
              "tenant_id": tenant_id,
              "client_id": authorization.params.get("client_id") if authorization else None,
              "select_account": bool(authorization and "select_account" in (
                  authorization.params.get("prompt") or "").split()),
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
        if record.get("type") != FLOW_TYPE or record.get("state") not in (
                State.SECOND_FACTOR.value, State.ENROL.value):
            continue
        if authorization_id and (record.get("params") or {}).get("authorization") \
                != authorization_id:
            continue
        try:
            found.append(flows.load(flow_id, FLOW_TYPE))
        except flows.FlowError:
            continue
    return max(found, key=lambda f: f.expires_at) if found else None


def discard_unanswered(authorization_id: str | None, keep: int = 1) -> None:
    """End this authorization's passwordless sign-ins that no passkey answered, but the
    newest ``keep`` (another tab's): each page load's autofill starts one, and piled up
    they would push the authorization itself out of the session's few flows
    (flows/base.py MAX_FLOWS_PER_SESSION)."""
    unanswered = sorted(
        (record for record in (session.get("flows") or {}).values()
         if record.get("type") == FLOW_TYPE and record.get("state") == State.IDENTIFY.value
         and not (record.get("data") or {}).get("user_id")
         and (record.get("params") or {}).get("authorization") == authorization_id
         and not (record.get("params") or {}).get("return_to")),
        key=lambda record: record["expires_at"])
    for record in unanswered[:max(0, len(unanswered) - keep)]:
        flows.finish(flows.Flow(**record))


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
    fixed = flow.data.get("tenant_id", flow.params.get("tenant_id"))
    if fixed is not None:
        tenant = db.session.get(Tenant, fixed)
        return [tenant] if tenant is not None else []
    if flow.params.get("authorization"):
        return []  # the tenant step found nothing to pick: no membership the client serves
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
    """The ones the person set up (one SELECT), a ``fallback`` (recovery codes) after the
    others."""
    ids = enrolled_ids(user, factors)
    return sorted((f for f in factors if f.id in ids),
                  key=lambda f: bool(getattr(f, "fallback", False)))


def _next_factor(user: User, done: list[dict], needed: int, tenants: list[Tenant]) -> Factor | None:
    level = assurance.level_of(done)
    if level >= max(needed, 2):
        return None  # two factors (or a verified passkey) already: nothing more to ask
    seconds = _second_factors(done, tenants)
    enrolled = _enrolled(user, seconds)
    if needed >= assurance.PHISHING_RESISTANT_LEVEL:  # a passkey first, when there is one
        enrolled.sort(key=lambda f: f.id not in assurance.PHISHING_RESISTANT_FACTORS)
    if enrolled and not any(get_factor(r["id"]).second for r in done if r["id"] in FACTORS):
        return enrolled[0]  # an enrolled factor is always asked, once a second factor
    if level >= needed:
        return None
    if needed >= assurance.PHISHING_RESISTANT_LEVEL and level >= 2:
        strong = [f for f in seconds if f.id in assurance.PHISHING_RESISTANT_FACTORS]
        if not strong:
            raise PolicyUnmet("phishing-resistant")
        mine = [f for f in strong if f in enrolled]
        if mine:  # another second factor was done first (chosen instead): now the passkey
            return mine[0]
        raise EnrolmentNeeded(strong[0].id)
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
    tenants = _policy_tenants(flow, user)
    seconds = _second_factors(flow.data.get("done") or [], tenants)
    enrolled = _enrolled(user, seconds)
    usable = [f for f in seconds if f is seconds[0] or f in enrolled]
    if _needed(flow, tenants) >= assurance.PHISHING_RESISTANT_LEVEL:
        # Only a passkey meets the policy: any other way would lead back to it.
        usable = [f for f in usable if f.id in assurance.PHISHING_RESISTANT_FACTORS]
    return [f.id for f in usable if f.id != flow.data.get("factor")]


def _needed(flow: flows.Flow, tenants: list[Tenant]) -> int:
    """The level this sign-in must reach: the tenants' policy and what the request asks."""
    return max(assurance.POLICY_LEVELS[assurance.strictest_policy(tenants)],
               int(flow.params.get("level") or 1))


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
    # Held for the rest of the request: the session's identity map keeps its objects weakly,
    # and each step of a sign-in asks for the same person again (no second SELECT).
    g.signin_user = user
    return user if user is not None and user.active else None


def _tenant_step(flow: flows.Flow, user: User) -> bool:
    """Settle the company before the second factor; True when the person must pick."""
    if "tenant_id" in flow.data or not flow.params.get("authorization") \
            or flow.params.get("tenant_id") is not None:
        return False
    decision = tenant_pick.decide(
        memberships.served_at(user, flow.params.get("client_id")),
        organization=flow.params.get("organization"),
        select_account=bool(flow.params.get("select_account")))
    if decision.pick:
        return True
    if decision.membership is not None:
        flow.data["tenant_id"] = decision.membership.tenant_id
    return False


def candidates(flow: flows.Flow) -> list:
    """The memberships the pending person may pick at SELECT_TENANT."""
    user = _user(flow)
    return memberships.served_at(user, flow.params.get("client_id")) if user else []


def pending_email(flow: flows.Flow) -> str:
    """The address of the person this sign-in is for (the picker says whose account)."""
    user = _user(flow)
    return user.email if user is not None else ""


def submit_tenant(flow: flows.Flow, raw: str | None, ip: str | None) -> Outcome:
    """The pending person's pick (tenant_pick.InvalidChoice for one not offered)."""
    if flow.state != State.SELECT_TENANT.value:
        raise flows.FlowError("no tenant to pick")
    user = _user(flow)
    if user is None:
        flows.finish(flow)
        return Outcome(None, "restart")
    membership = tenant_pick.chosen(candidates(flow), raw)
    flow.data["tenant_id"] = membership.tenant_id
    audit.record("login_tenant", user_id=user.id, tenant_id=membership.tenant_id, ip=ip)
    return advance(flow, user, ip)


def advance(flow: flows.Flow, user: User, ip: str | None) -> Outcome:
    """After a factor, a pick (or at a step-up): ask the company, the next factor, or DONE."""
    if flow.state == State.IDENTIFY.value and _tenant_step(flow, user):
        flow.move(State.SELECT_TENANT, TRANSITIONS)
        flows.save(flow)
        return Outcome(State.SELECT_TENANT)
    tenants = _policy_tenants(flow, user)
    needed = _needed(flow, tenants)
    try:
        factor = _next_factor(user, flow.data.get("done") or [], needed, tenants)
    except EnrolmentNeeded as missing:
        if not _recent(flow.data.get("done") or []):
            # A step-up of an old session: a factor is added only right after a second
            # factor (as on the account page, recent_strong_login): ask one again first.
            flow.data["done"] = [record for record in flow.data.get("done") or []
                                 if not get_factor(record["id"]).second]
            return advance(flow, user, ip)
        flow.move(State.ENROL, TRANSITIONS)
        flow.data["factor"] = missing.factor_id
        _factor_state(flow, get_factor(missing.factor_id)).clear()
        flows.save(flow)
        return Outcome(State.ENROL)
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


def _recent(done: list[dict]) -> bool:
    """Was the latest factor done within the step-up window (IDP_STEP_UP_MAX_AGE)?"""
    latest = max((int(record.get("at") or 0) for record in done), default=0)
    return time.time() - latest <= current_app.config["IDP_STEP_UP_MAX_AGE"]


def _accept(flow: flows.Flow, factor: Factor, result: Accepted, ip: str | None) -> None:
    flow.data.setdefault("done", []).append(assurance.completed(factor.id, result))
    audit.record("login_factor", user_id=result.user_id, ip=ip, factor=factor.id)
    session.rotate()  # a new session id after each factor


def submit_password(flow: flows.Flow, email: str | None, password: str | None,
                    ip: str | None, trusted_cookie: str | None = None) -> Outcome:
    """The first factor: email address and password (same answer for every failure).

    A DONE outcome is left uncommitted for ``complete``, which the caller runs next."""
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
    return _identified(flow, factor, result, ip, trusted_cookie)


def _identified(flow: flows.Flow, factor: Factor, result: Accepted, ip: str | None,
                trusted_cookie: str | None = None) -> Outcome:
    """A factor that identifies named the person: their first factor; what comes next (a
    trusted browser's cookie brings back the second factors it remembers)."""
    flow.data["user_id"] = result.user_id
    flow.data["done"] = []
    _accept(flow, factor, result, ip)
    user = _user(flow)
    if trusted_cookie and user is not None:
        _remembered_by_browser(flow, user, trusted_cookie, ip)
    outcome = advance(flow, user, ip)
    if outcome.state is not State.DONE:
        db.session.commit()
    # DONE: ``complete`` commits this step's audit entry and counters with the sign-in's
    # own, in one transaction (one commit for a one-factor sign-in, the user kept loaded).
    return outcome


PASSKEY = "webauthn"


def step_endpoint(flow: flows.Flow) -> str:
    """The page of the step this sign-in waits on (a passkey has its own)."""
    if flow.state == State.SECOND_FACTOR.value:
        return FACTOR_ENDPOINTS.get(flow.data.get("factor"), ENDPOINTS[State.SECOND_FACTOR])
    return ENDPOINTS[State(flow.state)]


def passkey_options(flow: flows.Flow, ip: str | None) -> dict | None:
    """Options for the browser's passkey prompt with a new challenge bound to this sign-in:
    passwordless (IDENTIFY), the pending passkey (SECOND_FACTOR), or registering one
    (ENROL). None when this sign-in has no passkey step (or the person is gone)."""
    factor = get_factor(PASSKEY)
    if flow.state == State.IDENTIFY.value:
        page = factor.begin(None, _factor_state(flow, factor), Attempt(ip=ip, binding=flow.id))
    elif flow.state in (State.SECOND_FACTOR.value, State.ENROL.value) \
            and flow.data.get("factor") == PASSKEY:
        user = _user(flow)
        if user is None:
            flows.finish(flow)
            return None
        state = _factor_state(flow, factor)
        if flow.state == State.ENROL.value:
            page = factor.enrol_start(user, state)
        else:
            page = factor.begin(user, state, _attempt(flow, _policy_tenants(flow, user), ip))
    else:
        return None
    flows.save(flow)
    return page["options"]


def submit_passkey(flow: flows.Flow, credential: str | None, ip: str | None) -> Outcome:
    """Passwordless: a discoverable passkey with user verification names the person."""
    if flow.state != State.IDENTIFY.value:
        raise flows.FlowError("not identifying")
    factor = get_factor(PASSKEY)
    result = factor.verify(None, {"credential": credential or ""}, _factor_state(flow, factor),
                           Attempt(ip=ip, binding=flow.id))
    if not isinstance(result, Accepted):
        audit.record("login_failed", user_id=getattr(result, "user_id", None), ip=ip,
                     factor=factor.id, reason=getattr(result, "reason", "wrong"))
        db.session.commit()
        flows.save(flow)
        return Outcome(State.IDENTIFY, "passkey")
    return _identified(flow, factor, result, ip)


def submit_enrolment(flow: flows.Flow, credential: str | None, name: str | None,
                     ip: str | None) -> Outcome:
    """ENROL: the new passkey's registration; signed in (DONE) once it is attached."""
    if flow.state != State.ENROL.value:
        raise flows.FlowError("not enrolling")
    user = _user(flow)
    if user is None or not _recent(flow.data.get("done") or []):
        # Gone, or the step left open past the step-up window: sign in again.
        flows.finish(flow)
        return Outcome(None, "restart")
    factor = get_factor(flow.data["factor"])
    result = factor.enrol_confirm(user, {"credential": credential, "name": name, "ip": ip},
                                  _factor_state(flow, factor))
    if isinstance(result, Accepted) and result.user_id == user.id:
        _accept(flow, factor, result, ip)
        db.session.commit()
        return advance(flow, user, ip)
    reason = result.reason if isinstance(result, Rejected) else "invalid"
    db.session.commit()  # the refusal's audit entry
    flows.save(flow)
    return Outcome(State.ENROL, reason)


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
    return submit_answer(flow, {"code": str(code or "")[:MAX_FIELD]}, ip)


def submit_answer(flow: flows.Flow, submitted: dict, ip: str | None) -> Outcome:
    """What the person submitted for the pending second factor (a code, a passkey's answer)."""
    step = _pending_step(flow, ip)
    if step is None:
        return Outcome(None, "restart")
    factor, user, state, attempt = step
    result = factor.verify(user, submitted, state, attempt)
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
    chosen = flow.data.get("tenant_id")
    if authorization is not None:
        authorization.data["login_done"] = True
        authorization.data.pop("step_up", None)
        if chosen is not None:  # the company picked before the second factor
            authorization.data.update(tenant_id=chosen, user_id=flow.data["user_id"])
        flows.save(authorization)
    flows.finish(flow)
    company = _company_in_use(flow, chosen)
    audit.record("login", user_id=flow.data["user_id"], ip=ip, amr=assurance.amr_of(done))
    # Committed with the new session row as the response is saved (sessions.sign_in).
    sign_in(session, flow.data["user_id"], done)
    tenant_pick.use(session, company)
    return authorization


def _company_in_use(flow: flows.Flow, chosen: int | None) -> int | None:
    """The company the new session works for: the one picked, else the only one possible
    (the client's or the tenant page's, or the person's only membership)."""
    if chosen is not None:
        return chosen
    user = _user(flow)
    usable = memberships.served_at(user, flow.params.get("client_id")) if user else []
    fixed = flow.params.get("tenant_id")
    if fixed is not None:
        return fixed if any(m.tenant_id == fixed for m in usable) else None
    return usable[0].tenant_id if len(usable) == 1 else None
