"""The authorization endpoint: validate, then walk the authorization flow.

Authlib validates the client, the redirect URI, the response type, the scope
and PKCE. We add the OIDC parameters, keep the request in a flow record, and
deliver the response (query or form_post) with ``iss`` (RFC 9207). An unknown
client or a redirect URI that does not match exactly gets an error page,
never a redirect.
"""

from __future__ import annotations

import time

from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from flask import (
    Blueprint,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _

from idp.flows import base as flows
from idp.flows import tenant_pick
from idp.flows.authorization import (
    ENDPOINTS,
    FLOW_TYPE,
    TRANSITIONS,
    Authentication,
    AuthorizationDenied,
    State,
    plan,
)
from idp.oauth.claims import (
    InvalidClaimsRequest,
    essential_acr_values,
    limit_claims_request,
    parse_claims_request,
)
from idp.oauth.grants import AuthorizedSubject
from idp.oauth.id_token_hint import InvalidHint, decode_id_token_hint
from idp.oauth.server import authorization_server
from idp.services.locale import claims_locales

bp = Blueprint("authorize", __name__)

MAX_PARAM_LENGTH = 4096
AUTHORIZATION_PARAMS = (
    "response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "prompt",
    "max_age", "login_hint", "id_token_hint", "ui_locales", "claims_locales", "claims",
    "acr_values",
    "code_challenge", "code_challenge_method", "response_mode", "organization", "display",
)
SINGLE_VALUED = AUTHORIZATION_PARAMS
PROMPT_VALUES = {"none", "login", "consent", "select_account"}
RESPONSE_MODES = {"query", "form_post"}


class StoredRequest(OAuth2Request):
    """An authorization request rebuilt from a flow record, after the person's steps."""

    def __init__(self, params: dict):
        super().__init__("GET", current_app.config["IDP_ISSUER"] + "/oauth/authorize", headers={})
        self.payload = BasicOAuth2Payload(params)

    @property
    def args(self):
        return self.payload.data

    @property
    def form(self):
        return {}


def error_page(message: str, status: int = 400, error: str | None = None):
    return render_template("flows/error.html", message=message, error=error), status


def _redirect_status() -> int:
    return 303 if request.method == "POST" else 302


def deliver(params: dict, redirect_uri: str, response: dict):
    """Send an authorization response (success or error) the way the client asked."""
    response = {k: v for k, v in response.items() if v is not None}
    response["iss"] = current_app.config["IDP_ISSUER"]
    if params.get("response_mode") == "form_post":
        page = render_template("flows/form_post.html", action=redirect_uri, fields=response)
        return page, 200, {"Cache-Control": "no-store"}
    return redirect(add_params_to_uri(redirect_uri, list(response.items())),
                    code=_redirect_status())


def deliver_error(params: dict, redirect_uri: str, error: str, description: str = ""):
    return deliver(params, redirect_uri, {"error": error, "error_description": description or None,
                                          "state": params.get("state")})


REQUEST_OBJECT_ERRORS = {"request": "request_not_supported",
                         "request_uri": "request_uri_not_supported"}


def _refuse_request_objects(values) -> None:
    """Request objects are not supported (discovery says so): an error, never silence,
    since the parameters inside one (``state``, ``nonce``...) would be lost (OIDC Core
    3.1.2.6, 6)."""
    for name, error in REQUEST_OBJECT_ERRORS.items():
        if name in values:
            raise AuthorizationDenied(error, f"The '{name}' parameter is not supported.")


def _check_oidc_params(params: dict, client) -> dict:
    """Validate what Authlib leaves to us; returns data for the flow record."""
    data: dict = {}
    if params.get("response_mode") and params["response_mode"] not in RESPONSE_MODES:
        raise AuthorizationDenied("invalid_request", "Unsupported 'response_mode'.")
    prompt = set((params.get("prompt") or "").split())
    if not prompt <= PROMPT_VALUES or ("none" in prompt and len(prompt) > 1):
        raise AuthorizationDenied("invalid_request", "Invalid 'prompt'.")
    if params.get("max_age") is not None:
        value = params["max_age"]
        # isascii: "²" and other Unicode digits pass isdigit() but not int().
        if not (value.isascii() and value.isdigit()) or len(value) > 10:
            raise AuthorizationDenied("invalid_request", "Invalid 'max_age'.")
    try:
        claims = parse_claims_request(params.get("claims"))
    except InvalidClaimsRequest as exc:
        raise AuthorizationDenied("invalid_request", str(exc)) from exc
    if claims:
        # Never more than the client may ask for: consent and release both use this.
        data["claims"] = limit_claims_request(claims, client.scope)
        data["essential_acr"] = essential_acr_values(claims)
    if params.get("id_token_hint"):
        try:
            hint = decode_id_token_hint(params["id_token_hint"])
        except InvalidHint as exc:
            raise AuthorizationDenied("invalid_request", "Invalid 'id_token_hint'.") from exc
        data["id_token_hint_sub"] = hint.get("sub")
    return data


@bp.route("/oauth/authorize", methods=["GET", "POST"])
def authorize():
    values = request.values
    for key in AUTHORIZATION_PARAMS:
        items = values.getlist(key)
        if any(len(item) > MAX_PARAM_LENGTH for item in items):
            return error_page(_("The request is too large."), 400, "invalid_request")
    server = authorization_server()
    try:
        grant = server.get_consent_grant(end_user=None)
    except OAuth2Error as error:
        if error.redirect_uri:
            # A request object explains the other errors (its parameters are missing here).
            try:
                _refuse_request_objects(values)
            except AuthorizationDenied as denied:
                error.error, error.description = denied.error, denied.description
            return deliver_error(values.to_dict(), error.redirect_uri, error.error,
                                 error.description)
        return error_page(_("This application sent an invalid sign-in request."), 400, error.error)
    params = {key: values.get(key) for key in AUTHORIZATION_PARAMS if key in values}
    duplicated = [key for key in SINGLE_VALUED if len(values.getlist(key)) > 1]
    try:
        _refuse_request_objects(values)
        if duplicated:
            raise AuthorizationDenied("invalid_request", f"Multiple '{duplicated[0]}'.")
        data = _check_oidc_params(params, grant.request.client)
    except AuthorizationDenied as denied:
        return deliver_error(params, grant.redirect_uri, denied.error, denied.description)
    if params.get("ui_locales"):
        session["ui_locales"] = params["ui_locales"][:100]
    flow = flows.start(FLOW_TYPE, State.START, params)
    flow.data.update(data)
    flow.data["redirect_uri"] = grant.redirect_uri
    return advance(flow)


@bp.route("/oauth/authorize/resume")
def resume():
    try:
        flow = flows.load(request.args.get("flow"), FLOW_TYPE)
    except flows.FlowExpired:
        return error_page(_("This sign-in attempt has expired. Go back to the application "
                            "and start again."), 400)
    except flows.FlowError:
        return error_page(_("This sign-in attempt is no longer valid. Go back to the "
                            "application and start again."), 400)
    return advance(flow)


def advance(flow: flows.Flow):
    """Run the plan: redirect to the next step, or issue the code."""
    server = authorization_server()
    client = server.query_client(flow.params.get("client_id"))
    redirect_uri = flow.data["redirect_uri"]
    if client is None:
        flows.finish(flow)
        return error_page(_("This application is no longer registered."), 400, "invalid_client")
    auth = Authentication.from_session(session, g.user)
    try:
        step = plan(flow, auth, client)
        flow.move(step, TRANSITIONS)
    except AuthorizationDenied as denied:
        flows.finish(flow)
        return deliver_error(flow.params, redirect_uri, denied.error, denied.description)
    except flows.FlowError:
        flows.finish(flow)
        return deliver_error(flow.params, redirect_uri, "server_error", "Invalid flow state.")
    if step is State.ISSUE:
        flows.finish(flow)
        return _issue_code(flow, auth, client)
    flows.save(flow)
    return redirect(url_for(ENDPOINTS[step], flow=flow.id), code=303)


def _issue_code(flow: flows.Flow, auth: Authentication, client):
    server = authorization_server()
    stored = StoredRequest(flow.params)
    try:
        grant = server.get_authorization_grant(stored)
        redirect_uri = grant.validate_authorization_request()
    except OAuth2Error as error:
        if error.redirect_uri:
            return deliver_error(flow.params, error.redirect_uri, error.error, error.description)
        return error_page(_("This application sent an invalid sign-in request."), 400, error.error)
    stored.user = AuthorizedSubject(
        user=auth.user, tenant_id=flow.data.get("tenant_id"),
        auth_time=auth.auth_time or int(time.time()), amr=auth.amr, acr=auth.acr,
        sid=auth.sid, claims=flow.data.get("claims"),
        claims_locales=claims_locales(flow.params.get("claims_locales")))
    if flow.data.get("tenant_id") is not None:
        tenant_pick.use(session, flow.data["tenant_id"])  # the company now in use
    code = grant.generate_authorization_code()
    grant.save_authorization_code(code, stored)
    return deliver(flow.params, redirect_uri, {"code": code, "state": flow.params.get("state")})
