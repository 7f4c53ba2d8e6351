"""Company sign-up, the pages' state machine (seed 004).

Two flow records in the server-side session::

    company_signup_request:  (email accepted) --> sent --resend--> sent

    company_signup (started from the emailed link):
        company --details ok--> account --person ok--> (done: flow finished, signed in)
                                  ^   |
                                  +---+ details changed (back to step 2 and sent again)

The second flow is keyed by the link it came from: opening the same link in
another tab of the same browser finds the flow in progress instead of starting
over, and the back button to step 2 shows the details typed so far. The link
itself is used only by the final step, so another browser can start again
until someone finishes; then every other flow of that link, and every other
link of the address (asking again never kills the links already sent), ends
with a clear "already used" page.
"""

from __future__ import annotations

import time
from enum import Enum

from flask import session

from idp.flows import base as flows
from idp.models import AccountToken
from idp.services import company_signup

REQUEST_FLOW = "company_signup_request"
FLOW_TYPE = "company_signup"
MAX_FLOW_TTL = 2 * 3600


class RequestState(Enum):
    SENT = "sent"


class State(Enum):
    COMPANY = "company"
    ACCOUNT = "account"


REQUEST_TRANSITIONS = {RequestState.SENT.value: (RequestState.SENT.value,)}
# Going back to step 2 (link or back button) keeps the state: step 2 can be sent
# again from ``account`` (account -> account), step 3 still needs step 2 done.
TRANSITIONS = {
    State.COMPANY.value: (State.ACCOUNT.value,),
    State.ACCOUNT.value: (State.ACCOUNT.value,),
}


def start_request(email: str) -> flows.Flow:
    flow = flows.start(REQUEST_FLOW, RequestState.SENT, {})
    flow.data["email"] = email
    flows.save(flow)
    return flow


def resend(flow: flows.Flow, locale: str | None) -> None:
    flow.move(RequestState.SENT, REQUEST_TRANSITIONS)
    email = flow.data.get("email")
    company_signup.request_signup(email, email, locale=locale)
    flow.data["resent"] = int(flow.data.get("resent") or 0) + 1
    flows.save(flow)


def _flow_for_token(token_id: int) -> flows.Flow | None:
    for flow_id, record in (session.get("flows") or {}).items():
        if record.get("type") == FLOW_TYPE and record.get("data", {}).get("token_id") == token_id:
            try:
                return flows.load(flow_id, FLOW_TYPE)
            except flows.FlowError:
                return None
    return None


def resume(row: AccountToken) -> flows.Flow:
    """The flow of this link in this browser, or a new one at step 2."""
    existing = _flow_for_token(row.id)
    if existing is not None:
        return existing
    flow = flows.start(FLOW_TYPE, State.COMPANY, {})
    flow.expires_at = min(row.expires_at, int(time.time()) + MAX_FLOW_TTL)
    flow.data.update({"token_id": row.id, "email": row.email,
                      "locale": (row.data or {}).get("locale")})
    flows.save(flow)
    return flow


def load(flow_id: str | None) -> flows.Flow:
    """The flow, whose link must still be usable (else SignupLinkError, and the flow ends)."""
    flow = flows.load(flow_id, FLOW_TYPE)
    try:
        company_signup.live_link(int(flow.data["token_id"]))
    except company_signup.SignupLinkError:
        flows.finish(flow)
        raise
    return flow


def submit_company(flow: flows.Flow, form) -> company_signup.Company:
    """Step 2. SignupError leaves the flow where it was."""
    company = company_signup.check_company(
        form.get("company_name"), form.get("identification_type"),
        form.get("identification_number"), form.get("contact_phone"))
    flow.data["company"] = company.as_dict()
    flow.move(State.ACCOUNT, TRANSITIONS)
    flows.save(flow)
    return company


def submit_account(flow: flows.Flow, form, ip: str | None):
    """Step 3: create everything; the caller signs the person in. Returns (user, tenant).

    SignupError (form), SignupLinkError or EmailTaken (the flow is over).
    """
    if flow.state != State.ACCOUNT.value or not flow.data.get("company"):
        raise flows.FlowError("company details missing")
    password = form.get("new_password", "")
    person = company_signup.check_person(
        flow.data["email"], form.get("given_name"), form.get("family_name"), password,
        form.get("confirm_password", ""), form.get("locale"))
    company = company_signup.Company(**flow.data["company"])
    try:
        user, tenant = company_signup.complete(int(flow.data["token_id"]), company, person,
                                               password, ip=ip)
    except (company_signup.SignupLinkError, company_signup.EmailTaken):
        flows.finish(flow)
        raise
    flows.finish(flow)
    return user, tenant
