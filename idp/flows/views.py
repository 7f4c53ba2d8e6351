"""Hosted pages. Views stay thin: load the flow, call the step, render or redirect."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _

from idp.extensions import db
from idp.flows import base as flows
from idp.flows import login as login_step
from idp.flows.authorization import FLOW_TYPE as AUTHORIZATION
from idp.flows.authorization import record_consent, requested_access
from idp.flows.logout import FLOW_TYPE as LOGOUT
from idp.oauth.authorize import deliver_error, error_page
from idp.oauth.claims import SCOPE_CLAIMS
from idp.oauth.logout import finish_logout
from idp.oauth.server import authorization_server
from idp.services.accounts import memberships_for_client
from idp.services.logout import end_session

bp = Blueprint("flows", __name__)

LOGIN_ERRORS = {
    "missing": lambda: _("Enter your email address and your password."),
    "invalid": lambda: _("Incorrect email address or password."),
}


def _authorization_flow(required: bool = True):
    flow_id = request.values.get("flow")
    if not flow_id and not required:
        return None
    try:
        return flows.load(flow_id, AUTHORIZATION)
    except flows.FlowExpired:
        abort(make_response(error_page(_("This sign-in attempt has expired. Go back to the "
                                         "application and start again."))))
    except flows.FlowError:
        abort(make_response(error_page(_("This sign-in attempt is no longer valid. Go back to "
                                         "the application and start again."))))


def _client_of(flow):
    return authorization_server().query_client(flow.params.get("client_id")) if flow else None


def _continue(flow):
    if flow is None:
        return redirect(url_for("flows.home"), code=303)
    return redirect(url_for("authorize.resume", flow=flow.id), code=303)


@bp.route("/")
def home():
    return render_template("flows/home.html", user=g.user)


@bp.route("/login", methods=["GET", "POST"])
def login():
    flow = _authorization_flow(required=False)
    client = _client_of(flow)
    email = (flow.params.get("login_hint") if flow else None) or ""
    if request.method == "GET":
        return render_template("flows/login.html", flow=flow, client=client, email=email)
    email = request.form.get("email", "")
    outcome = login_step.submit(email, request.form.get("password"), request.remote_addr)
    if outcome.user is None:
        return render_template("flows/login.html", flow=flow, client=client,
                               email=email[:320], error=LOGIN_ERRORS[outcome.error]()), 400
    login_step.establish_session(session, outcome.user, ["pwd"])
    if flow is not None:
        flow.data["login_done"] = True
        flows.save(flow)
    return _continue(flow)


@bp.route("/select-tenant", methods=["GET", "POST"])
def select_tenant():
    flow = _authorization_flow()
    if g.user is None:
        return _continue(flow)
    client = _client_of(flow)
    memberships = memberships_for_client(g.user, client.tenant_id if client else None)
    if request.method == "POST":
        chosen = request.form.get("tenant", "")
        match = next((m for m in memberships if str(m.tenant_id) == chosen), None)
        if match is None:
            return render_template("flows/select_tenant.html", flow=flow, client=client,
                                   memberships=memberships,
                                   error=_("Choose one of the listed organisations.")), 400
        flow.data["tenant_id"] = match.tenant_id
        flows.save(flow)
        return _continue(flow)
    return render_template("flows/select_tenant.html", flow=flow, client=client,
                           memberships=memberships)


@bp.route("/consent", methods=["GET", "POST"])
def consent():
    flow = _authorization_flow()
    client = _client_of(flow)
    if g.user is None or client is None:
        return _continue(flow)  # the plan asks for a login, or ends a client gone meanwhile
    access = requested_access(flow, client)
    scopes = [s for s in access.scopes if s in SCOPE_CLAIMS or s == "offline_access"]
    page = {"flow": flow, "client": client, "scopes": scopes, "claims": access.claims}
    if request.method == "POST":
        decision = request.form.get("decision")
        if decision == "allow":
            record_consent(g.user, client, access)
            db.session.commit()
            flow.data["consented"] = True
            flows.save(flow)
            return _continue(flow)
        if decision == "deny":
            flows.finish(flow)
            return deliver_error(flow.params, flow.data["redirect_uri"], "access_denied",
                                 "The user denied the request.")
        return render_template("flows/consent.html", **page,
                               error=_("Choose whether to allow access.")), 400
    return render_template("flows/consent.html", **page)


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    flow = None
    if request.values.get("flow"):
        try:
            flow = flows.load(request.values["flow"], LOGOUT)
        except flows.FlowError:
            flow = None
    if request.method == "GET":
        if g.user is None:
            return finish_logout(None, None) if flow is None else finish_logout(
                flow.params.get("redirect_uri"), flow.params.get("state"))
        return render_template("flows/logout_confirm.html", flow=flow)
    redirect_uri = flow.params.get("redirect_uri") if flow else None
    state = flow.params.get("state") if flow else None
    if request.form.get("decision") == "stay":
        if flow:
            flows.finish(flow)
        return redirect(url_for("flows.home"), code=303)
    end_session(session, g.user, request.remote_addr)
    return finish_logout(redirect_uri, state)
