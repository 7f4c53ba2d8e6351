"""Protocol endpoints for machines: discovery, JWKS, token, userinfo, revocation, introspection."""

from __future__ import annotations

import time

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidClientError
from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import select

from idp.extensions import db
from idp.flows.authorization import ACR_VALUES
from idp.models import Grant, User
from idp.oauth.claims import SUPPORTED_CLAIMS, SUPPORTED_SCOPES, user_claims
from idp.oauth.grants import CLIENT_AUTH_METHODS
from idp.oauth.server import authorization_server
from idp.services import tokens

bp = Blueprint("oauth", __name__)

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
PUBLIC_CACHE = {"Cache-Control": "public, max-age=300"}


def _keys():
    return current_app.extensions["idp_keys"]


def _issuer() -> str:
    return current_app.config["IDP_ISSUER"]


def discovery_document(issuer: str) -> dict:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "userinfo_endpoint": f"{issuer}/oauth/userinfo",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "end_session_endpoint": f"{issuer}/oauth/logout",
        "scopes_supported": SUPPORTED_SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "userinfo_signing_alg_values_supported": [],
        "token_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "ES256", "PS256"],
        "revocation_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": [
            m for m in CLIENT_AUTH_METHODS if m != "none"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": SUPPORTED_CLAIMS,
        "claims_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "acr_values_supported": ACR_VALUES,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "ui_locales_supported": current_app.config["IDP_LOCALES"],
        "claims_locales_supported": current_app.config["IDP_LOCALES"],
        "authorization_response_iss_parameter_supported": True,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "frontchannel_logout_supported": False,
    }


@bp.route("/.well-known/openid-configuration")
def openid_configuration():
    cached = current_app.extensions.get("idp_discovery")
    if cached is None:
        cached = current_app.json.dumps(discovery_document(_issuer()))
        current_app.extensions["idp_discovery"] = cached
    return Response(cached, mimetype="application/json", headers=PUBLIC_CACHE)


@bp.route("/.well-known/jwks.json")
def jwks():
    return Response(_keys().jwks_json(), mimetype="application/json", headers=PUBLIC_CACHE)


def _invalid_client_401(response: Response) -> Response:
    """RFC 6749 5.2: a failed Basic authentication answers 401 with WWW-Authenticate."""
    # The raw header: werkzeug's request.authorization raises on a malformed one.
    scheme = request.headers.get("Authorization", "").split(" ", 1)[0].lower()
    if response.status_code == 400 and scheme == "basic":
        body = response.get_json(silent=True) or {}
        if body.get("error") == "invalid_client":
            response.status_code = 401
            response.headers["WWW-Authenticate"] = 'Basic realm="token", error="invalid_client"'
    return response


TOKEN_PARAMS = ("grant_type", "code", "redirect_uri", "code_verifier", "refresh_token", "scope",
                "client_id", "client_secret", "client_assertion", "client_assertion_type")


def _token_request_error() -> str | None:
    """RFC 6749 3.2 and 2.3.1: parameters once each, and in the body, never in the URL."""
    form = request.form
    if not form.get("grant_type"):
        return "Missing 'grant_type'."
    if request.args:
        for name in TOKEN_PARAMS:
            if name in request.args:
                return f"'{name}' must be sent in the request body."
    for name, values in form.lists():
        if len(values) > 1 and name in TOKEN_PARAMS:
            return f"Multiple '{name}' in request."
    return None


@bp.route("/oauth/token", methods=["POST"])
def token():
    problem = _token_request_error()
    if problem:
        return jsonify({"error": "invalid_request", "error_description": problem}), 400, NO_STORE
    response = authorization_server().create_token_response()
    if response.status_code == 200:
        db.session.commit()
    else:
        db.session.rollback()
    response.headers.update(NO_STORE)
    return _invalid_client_401(response)


def _bearer_error(error: str, status: int = 401, description: str | None = None):
    header = f'Bearer error="{error}"'
    if description:
        header += f', error_description="{description}"'
    body = {"error": error}
    if description:
        body["error_description"] = description
    return jsonify(body), status, {"WWW-Authenticate": header, **NO_STORE}


@bp.route("/oauth/userinfo", methods=["GET", "POST"])
def userinfo():
    header = request.headers.get("Authorization", "")
    from_body = request.form.get("access_token") if request.method == "POST" else None
    if header and from_body:
        return _bearer_error("invalid_request", 400, "Use one way to send the token.")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return _bearer_error("invalid_request", 400, "Bearer token required.")
        access_token = value.strip()
    elif from_body:
        access_token = from_body
    else:
        return jsonify({}), 401, {"WWW-Authenticate": 'Bearer realm="userinfo"', **NO_STORE}
    found = tokens.active_access_token(_keys(), _issuer(), access_token)
    if found is None:
        return _bearer_error("invalid_token", 401, "The access token is invalid or expired.")
    claims, row = found
    scopes = claims.get("scope", "").split()
    if row.user_id is None or "openid" not in scopes:
        return _bearer_error("insufficient_scope", 403, "The token does not allow userinfo.")
    user = db.session.get(User, row.user_id)
    requested = None
    if row.grant_id:
        grant_claims = db.session.scalar(select(Grant.claims).where(Grant.id == row.grant_id))
        requested = (grant_claims or {}).get("userinfo")
    body = user_claims(user, claims.get("scope", ""), requested)
    body.update({k: claims[k] for k in ("org_id", "org_slug", "org_role") if k in claims})
    return jsonify(body), 200, NO_STORE


def _authenticate_client(endpoint: str):
    server = authorization_server()
    oauth_request = server.create_oauth2_request(request)
    methods = CLIENT_AUTH_METHODS if endpoint == "revocation" else [
        m for m in CLIENT_AUTH_METHODS if m != "none"]
    return server.authenticate_client(oauth_request, methods, endpoint)


def _find_token(value: str, hint: str | None):
    """A token row by refresh value or by access-token jti, owned by nobody in particular.

    The hint only orders the search: a token not found as the hinted type is looked
    up as the other (RFC 7009 2.1, RFC 7662 2.1)."""
    if not isinstance(value, str) or not value or len(value) > 8192:
        return None, None

    def as_refresh():
        row = tokens.find_refresh_token(value)
        return (row, "refresh_token") if row is not None else None

    def as_access():
        claims = tokens.decode_access_token(_keys(), _issuer(), value)
        if claims:
            row = tokens.access_row(claims)
            if row is not None:
                return row, "access_token"
        return None

    order = (as_access, as_refresh) if hint == "access_token" else (as_refresh, as_access)
    for lookup in order:
        found = lookup()
        if found is not None:
            return found
    return None, None


def _oauth_error(error: OAuth2Error):
    status, body, headers = error()
    response = jsonify(dict(body))
    response.status_code = status
    response.headers.update(dict(headers))
    response.headers.update(NO_STORE)
    return _invalid_client_401(response)


@bp.route("/oauth/revoke", methods=["POST"])
def revoke():
    """RFC 7009: revoking a refresh token ends its family; unknown tokens answer 200."""
    try:
        client = _authenticate_client("revocation")
    except OAuth2Error as error:
        return _oauth_error(error)
    value = request.form.get("token")
    if not value:
        return jsonify({"error": "invalid_request",
                        "error_description": "Missing 'token'."}), 400, NO_STORE
    row, kind = _find_token(value, request.form.get("token_type_hint"))
    if row is not None and row.client_id == client.client_id:
        if kind == "refresh_token" and row.grant_id is not None:
            tokens.revoke_grant(row.grant_id)
        if kind == "access_token":
            tokens.revoke_access_row(row)
        else:
            row.revoked_at = row.revoked_at or int(time.time())
        db.session.commit()
    return Response("", 200, NO_STORE)


@bp.route("/oauth/introspect", methods=["POST"])
def introspect():
    """RFC 7662, for confidential clients; a token is visible only to the client it was issued to."""
    try:
        client = _authenticate_client("introspection")
    except OAuth2Error as error:
        return _oauth_error(error)
    if client.is_public:
        return _oauth_error(InvalidClientError(status_code=401))
    value = request.form.get("token")
    if not value:
        return jsonify({"error": "invalid_request",
                        "error_description": "Missing 'token'."}), 400, NO_STORE
    row, kind = _find_token(value, request.form.get("token_type_hint"))
    inactive = (jsonify({"active": False}), 200, NO_STORE)
    if row is None or row.client_id != client.client_id:
        return inactive
    if kind == "refresh_token":
        if not tokens.refresh_token_active(row) or not tokens.user_active(row.user_id):
            return inactive
        exp = row.refresh_expires_at
    else:
        # _find_token verified the signature and expiry; only the stored side is left.
        if not tokens.access_row_active(row):
            return inactive
        exp = row.access_expires_at
    body = {"active": True, "client_id": row.client_id, "scope": row.scope,
            "token_type": "Bearer" if kind == "access_token" else "refresh_token",
            "exp": exp, "iat": row.issued_at, "iss": _issuer()}
    if row.user_id is not None:
        body["sub"] = db.session.scalar(select(User.sub).where(User.id == row.user_id))
    if kind == "access_token":
        body["jti"] = row.jti
    body.update(tokens.org_claims(tokens.org_context(row.user_id, row.tenant_id)))
    return jsonify(body), 200, NO_STORE
