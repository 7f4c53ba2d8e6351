"""Hosted pages. Views stay thin: load the flow, call the step, render or redirect."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _

from idp.extensions import db
from idp.factors.assurance import level_of
from idp.flows import base as flows
from idp.flows import signin, tenant_pick, tenant_views
from idp.flows.authorization import FLOW_TYPE as AUTHORIZATION
from idp.flows.authorization import State as AuthorizationState
from idp.flows.authorization import (
    needed_level,
    prompts,
    record_consent,
    requested_access,
    requested_level,
)
from idp.flows.logout import FLOW_TYPE as LOGOUT
from idp.mail.messages import branding
from idp.models import Tenant
from idp.oauth.authorize import deliver_error, error_page
from idp.oauth.claims import SCOPE_CLAIMS
from idp.oauth.logout import finish_logout
from idp.oauth.server import authorization_server
from idp.services import trusted_browsers
from idp.services.logout import end_session
from idp.services.memberships import served_memberships
from idp.services.sessions import completed_factors

bp = Blueprint("flows", __name__)

LOGIN_ERRORS = {
    "missing": lambda: _("Enter your email address and your password."),
    "invalid": lambda: _("Incorrect email address or password."),
    "restart": lambda: _("Too many wrong codes, or this sign-in ended. Sign in again."),
    "policy": lambda: _("Your organisation requires a sign-in method that is not available "
                        "for your account. Contact your administrator."),
    "passkey": lambda: _("This passkey could not sign you in. Try again, or sign in with "
                         "your email address and password."),
}
CODE_ERRORS = {
    "wrong": lambda: _("This code is not correct. Check the latest email and try again."),
    "expired": lambda: _("This code has expired. Ask for a new code."),
    "no_code": lambda: _("No code is waiting. Ask for a new code."),
    "cooldown": lambda: _("A code was just sent. Wait a little before asking for another."),
    "throttled": lambda: _("Too many codes were sent. Please try again later."),
    "no_address": lambda: _("This account has no verified email address to send a code to."),
    "replayed": lambda: _("This code was already used. Wait for the next code in your app."),
    "attempts_capped": lambda: _("Too many attempts for this account. Please try again later, "
                                 "or use another way to sign in."),
    "not_enrolled": lambda: _("This way of signing in is not set up. Choose another one."),
    "not_offered": lambda: _("This way of signing in is not available. Choose another one."),
    "totp:wrong": lambda: _("This code is not correct. Type the code your authenticator app "
                            "shows now."),
    "recovery_code:wrong": lambda: _("This recovery code is not correct, or it was already "
                                     "used."),
    "reset_throttled": lambda: _("You already asked for a reset. An administrator will get "
                                 "back to you."),
}
# The page of each pending second factor (the emailed code's by default).
FACTOR_PAGES = {"totp": "flows/login_second_factor.html",
                "recovery_code": "flows/login_second_factor.html"}


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


def _tenant_id(client) -> int | None:
    """The tenant whose policy applies when it is known before the person is."""
    tenant = g.get("tenant")  # the tenant's own login page (registration_views.tenant_login)
    if tenant is not None:
        return tenant.id
    return client.tenant_id if client is not None else None


def _login_page(flow, client, email: str = "", error: str | None = None, status: int = 200):
    level = requested_level(flow) if flow is not None else 1
    return render_template(
        "flows/login.html", flow=flow, client=client, email=email[:320],
        receive_code=signin.expects_second_factor(_tenant_id(client), level),
        error=LOGIN_ERRORS[error]() if error else None), status


# Where a sign-in that belongs to no authorization may return (start_reauthentication).
RETURN_TO = ("security.page", "account_passkeys.page")


def _signed_in(attempt):
    authorization = signin.complete(attempt, request.remote_addr)
    if authorization is None and attempt.params.get("return_to") in RETURN_TO:
        return redirect(url_for(attempt.params["return_to"]), code=303)
    return _continue(authorization)


def _after_step(attempt, outcome: signin.Outcome, flow, client):
    """Where a sign-in goes after a step: the code page, the application, or the form."""
    if outcome.state is signin.State.DONE:
        return _signed_in(attempt)
    if outcome.state in (signin.State.SECOND_FACTOR, signin.State.ENROL,
                         signin.State.SELECT_TENANT):
        return redirect(url_for(signin.step_endpoint(attempt), signin=attempt.id), code=303)
    return _login_page(flow, client, error=outcome.error or "restart", status=400)


@bp.route("/login", methods=["GET", "POST"])
def login():
    flow = _authorization_flow(required=False)
    client = _client_of(flow)
    waiting = signin.pending(flow.id if flow else None)
    if waiting is None and flow is not None and "login" not in prompts(flow) \
            and flow.params.get("max_age") is None:
        waiting = signin.pending(None)  # typed the password, then came back from the app
        if waiting is not None:
            signin.adopt(waiting, flow)
    if waiting is not None:  # a factor is pending: nothing skips it
        return redirect(url_for(signin.step_endpoint(waiting), signin=waiting.id), code=303)
    if request.method == "GET":
        if g.user is not None and flow is not None and flow.data.get("step_up"):
            attempt = signin.start(flow, _tenant_id(client), g.user, completed_factors(session))
            return _after_step(attempt, signin.advance(attempt, g.user, request.remote_addr),
                               flow, client)
        email = (flow.params.get("login_hint") if flow else None) or ""
        return _login_page(flow, client, email)
    email = request.form.get("email", "")
    attempt = signin.start(flow, _tenant_id(client))
    outcome = signin.submit_password(attempt, email, request.form.get("password"),
                                     request.remote_addr,
                                     request.cookies.get(trusted_browsers.COOKIE_NAME))
    if outcome.state is signin.State.IDENTIFY:
        flows.finish(attempt)
        return _login_page(flow, client, email, outcome.error, 400)
    return _after_step(attempt, outcome, flow, client)


def _signin_flow(*states: signin.State):
    try:
        attempt = flows.load(request.values.get("signin"), signin.FLOW_TYPE)
    except flows.FlowExpired:
        abort(make_response(error_page(_("This sign-in attempt has expired. Sign in again."))))
    except flows.FlowError:
        abort(make_response(error_page(_("This sign-in attempt is no longer valid. "
                                         "Sign in again."))))
    if attempt.state not in {s.value for s in states or (signin.State.SECOND_FACTOR,)}:
        # a step view refuses other states
        abort(make_response(error_page(_("This sign-in attempt is no longer valid. "
                                         "Sign in again."))))
    return attempt


def _code_page(attempt, error: str | None = None, status: int = 200, resent: bool = False):
    authorization = _authorization_of(attempt)
    client = _client_of(authorization)
    tenant = db.session.get(Tenant, attempt.params["tenant_id"]) \
        if attempt.params.get("tenant_id") else None
    return render_template(
        FACTOR_PAGES.get(attempt.data.get("factor"), "flows/login_code.html"),
        alternatives=signin.alternatives(attempt), factor_id=attempt.data.get("factor"),
        attempt=attempt, flow=authorization, client=client,
        sent_to=(attempt.data.get("page") or {}).get("sent_to"),
        cooldown=signin.cooldown(attempt), resent=resent, trust_days=signin.trust_days(attempt),
        expires_minutes=max(1, current_app.config["IDP_LOGIN_CODE_TTL"] // 60),
        support_email=branding(tenant)["support_email"],
        error=_code_error(attempt.data.get("factor"), error)), status


def _code_error(factor_id: str | None, error: str | None) -> str | None:
    if not error:
        return None
    message = CODE_ERRORS.get(f"{factor_id}:{error}") or CODE_ERRORS.get(error) \
        or CODE_ERRORS["wrong"]
    return message()


@bp.route("/login/code", methods=["GET", "POST"])
def login_code():
    attempt = _signin_flow()
    if signin.step_endpoint(attempt) != request.endpoint:  # the pending factor's own page
        return redirect(url_for(signin.step_endpoint(attempt), signin=attempt.id), code=303)
    if request.method == "GET":
        notice = signin.take_notice(attempt)
        return _code_page(attempt, notice, 429 if notice == "throttled" else 200)
    outcome = signin.submit_code(attempt, request.form.get("code"), request.remote_addr)
    if outcome.state is signin.State.SECOND_FACTOR:
        return _code_page(attempt, outcome.error, 400)
    trusted = signin.trust_browser(attempt, request.user_agent.string) \
        if outcome.state is signin.State.DONE and request.form.get("trust_browser") else None
    authorization = _authorization_of(attempt)
    response = make_response(_after_step(attempt, outcome, authorization,
                                         _client_of(authorization)))
    if trusted:
        value, days = trusted
        response.set_cookie(trusted_browsers.COOKIE_NAME, value, max_age=days * 86400,
                            path="/", secure=current_app.config["IDP_HTTPS"], httponly=True,
                            samesite="Lax")
    return response


@bp.route("/login/code/resend", methods=["POST"])
def login_code_resend():
    attempt = _signin_flow()
    outcome = signin.resend(attempt, request.remote_addr)
    if outcome.state is None:
        authorization = _authorization_of(attempt)
        return _login_page(authorization, _client_of(authorization), error="restart",
                           status=400)
    if outcome.error:
        return _code_page(attempt, outcome.error, 429 if outcome.error == "throttled" else 400)
    return _code_page(attempt, resent=True)


@bp.route("/login/code/restart", methods=["POST"])
def login_code_restart():
    """Sign in with another account: this sign-in ends, the password form again."""
    attempt = _signin_flow(signin.State.SECOND_FACTOR, signin.State.ENROL)
    authorization = _authorization_of(attempt)
    flows.finish(attempt)
    return redirect(url_for("flows.login", flow=authorization.id if authorization else None),
                    code=303)


@bp.route("/login/select-tenant", methods=["GET", "POST"])
def login_tenant():
    """The pending person picks the company (before the second factor: its policy decides)."""
    attempt = _signin_flow(signin.State.SELECT_TENANT)
    action = url_for("flows.login_tenant", signin=attempt.id)
    candidates = signin.candidates(attempt)
    email = signin.pending_email(attempt)
    if request.method == "GET":
        return tenant_views.picker(action, candidates, email, pending=True)
    try:
        outcome = signin.submit_tenant(attempt, request.form.get("tenant"), request.remote_addr)
    except tenant_pick.InvalidChoice:
        return tenant_views.picker(action, candidates, email, tenant_views.choice_error(), 400,
                                   pending=True)
    authorization = _authorization_of(attempt)
    return _after_step(attempt, outcome, authorization, _client_of(authorization))


def _authorization_of(attempt):
    if not attempt.params.get("authorization"):
        return None
    try:
        return flows.load(attempt.params["authorization"], AUTHORIZATION)
    except flows.FlowError:
        return None


@bp.route("/select-tenant", methods=["GET", "POST"])
def select_tenant():
    flow = _authorization_flow()
    if g.user is None or flow.state != AuthorizationState.SELECT_TENANT.value:
        return _continue(flow)  # a step view runs its own step only: the plan decides
    candidates = served_memberships(g.user, _client_of(flow))
    action = url_for("flows.select_tenant", flow=flow.id)
    if request.method == "POST":
        try:
            match = tenant_pick.chosen(candidates, request.form.get("tenant"))
        except tenant_pick.InvalidChoice:
            return tenant_views.picker(action, candidates, g.user.email,
                                       tenant_views.choice_error(), 400)
        flow.data["tenant_id"] = match.tenant_id
        flow.data.pop("reselect", None)
        flows.save(flow)
        if level_of(completed_factors(session)) >= needed_level(flow, match.tenant_id, g.user):
            # A stricter company is the one in use once its missing factor is done
            # (authorize._issue_code), not before.
            tenant_pick.use(session, match.tenant_id)
        return _continue(flow)
    return tenant_views.picker(action, candidates, g.user.email)


@bp.route("/consent", methods=["GET", "POST"])
def consent():
    flow = _authorization_flow()
    client = _client_of(flow)
    if g.user is None or client is None or flow.state != AuthorizationState.CONSENT.value:
        # The plan asks for another step (a login, a code), or ends a client gone meanwhile.
        return _continue(flow)
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


# --- passkeys (factors/webauthn.py): passwordless, second factor, registration at ENROL ---

PASSKEY_ERRORS = {
    "invalid": lambda: _("This passkey could not be checked. Try again."),
    "unknown": lambda: _("This passkey is not registered to your account."),
    "other_user": lambda: _("This passkey is not registered to your account."),
    "sign_count": lambda: _("This passkey may have been copied, so it was refused. Use "
                            "another way to sign in and contact your administrator."),
    "taken": lambda: _("This passkey is already registered. Use another one."),
    "already_registered": lambda: _("This passkey is already registered to your account."),
}


def passkey_error(reason: str | None) -> str | None:
    """The page's message for a refused passkey ceremony (one message per reason)."""
    if not reason:
        return None
    return PASSKEY_ERRORS.get(reason, PASSKEY_ERRORS["invalid"])()


@bp.route("/login/passkey/options", methods=["POST"])
def login_passkey_options():
    """JSON for navigator.credentials: a new challenge in a sign-in (a new one for a
    passwordless sign-in, else the ``signin`` whose passkey step is pending)."""
    if request.values.get("signin"):
        try:
            attempt = flows.load(request.values["signin"], signin.FLOW_TYPE)
        except flows.FlowError:
            return jsonify({"error": "expired"}), 400
    else:
        flow = _authorization_flow(required=False)
        signin.discard_unanswered(flow.id if flow else None)
        attempt = signin.start(flow, _tenant_id(_client_of(flow)))
    options = signin.passkey_options(attempt, request.remote_addr)
    if options is None:
        return jsonify({"error": "expired"}), 400
    return jsonify({"signin": attempt.id, "options": options})


@bp.route("/login/passkey/identify", methods=["POST"])
def login_passkey_identify():
    """Passwordless: the answer of a discoverable passkey (the "Sign in with a passkey"
    button, or the browser's autofill)."""
    flow = _authorization_flow(required=False)
    client = _client_of(flow)
    try:
        attempt = flows.load(request.form.get("signin"), signin.FLOW_TYPE)
        outcome = signin.submit_passkey(attempt, request.form.get("credential", "")[:16384],
                                        request.remote_addr)
    except flows.FlowError:
        return _login_page(flow, client, error="passkey", status=400)
    if outcome.state is signin.State.IDENTIFY:
        flows.finish(attempt)
        return _login_page(flow, client, error=outcome.error, status=400)
    return _after_step(attempt, outcome, flow, client)


def _passkey_page(template: str, attempt, error: str | None = None, status: int = 200):
    authorization = _authorization_of(attempt)
    return render_template(template, attempt=attempt, flow=authorization,
                           client=_client_of(authorization),
                           alternatives=signin.alternatives(attempt),
                           error=passkey_error(error)), status


@bp.route("/login/passkey", methods=["GET", "POST"])
def login_passkey():
    """The second step after the password: the person's passkey."""
    attempt = _signin_flow()
    if signin.step_endpoint(attempt) != request.endpoint:
        return redirect(url_for(signin.step_endpoint(attempt), signin=attempt.id), code=303)
    if request.method == "GET":
        return _passkey_page("flows/login_passkey.html", attempt)
    outcome = signin.submit_answer(
        attempt, {"credential": request.form.get("credential", "")[:16384]},
        request.remote_addr)
    if outcome.state is signin.State.SECOND_FACTOR:
        return _passkey_page("flows/login_passkey.html", attempt, outcome.error, 400)
    authorization = _authorization_of(attempt)
    return _after_step(attempt, outcome, authorization, _client_of(authorization))


@bp.route("/login/passkey/enrol", methods=["GET", "POST"])
def login_passkey_enrol():
    """ENROL (phishing-resistant policy): register a passkey before being signed in."""
    attempt = _signin_flow(signin.State.ENROL)
    if request.method == "GET":
        return _passkey_page("flows/login_passkey_enrol.html", attempt)
    outcome = signin.submit_enrolment(attempt, request.form.get("credential", "")[:16384],
                                      request.form.get("name"), request.remote_addr)
    if outcome.state is signin.State.ENROL:
        return _passkey_page("flows/login_passkey_enrol.html", attempt, outcome.error, 400)
    authorization = _authorization_of(attempt)
    return _after_step(attempt, outcome, authorization, _client_of(authorization))
