"""The demo portal: a relying party of the identity provider, built on Authlib's client.

It shares no code with ``idp/`` (tests/unit/test_demo_imports.py checks): it knows the
provider only through its discovery document, and the demo client's credentials from
``instance/demo_client.json`` (written by ``idp init --demo``) or ``DEMO_CLIENT_ID`` /
``DEMO_CLIENT_SECRET``. Tokens stay in process memory; the cookie holds a random key.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import threading
import time
from collections import OrderedDict, deque
from pathlib import Path
from urllib.parse import urlsplit

import requests
from authlib.integrations.flask_client import OAuth, OAuthError
from flask import Flask, abort, current_app, flash, redirect, render_template, request, session
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

SCOPE = "openid profile email"
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
INSTANCE_DIR = Path(__file__).resolve().parent.parent / "instance"


class Store:
    """Signed-in sessions by key and the back-channel logouts received (a demo: memory)."""

    def __init__(self, limit: int = 500):
        self.lock = threading.Lock()
        self.logins: OrderedDict[str, dict] = OrderedDict()
        self.logouts: deque[dict] = deque(maxlen=20)
        self.limit = limit

    def save(self, key: str, login: dict) -> None:
        with self.lock:
            self.logins[key] = login
            while len(self.logins) > self.limit:
                self.logins.popitem(last=False)

    def get(self, key: str | None) -> dict | None:
        with self.lock:
            return self.logins.get(key) if key else None

    def pop(self, key: str | None) -> dict | None:
        with self.lock:
            return self.logins.pop(key, None) if key else None

    def backchannel_logout(self, claims: dict) -> bool:
        """Record a validated logout token and end the sessions it names; False on replay."""
        sid, sub = claims.get("sid"), claims.get("sub")
        with self.lock:
            if any(seen["jti"] == claims.get("jti") for seen in self.logouts if seen["jti"]):
                return False
            for key, login in list(self.logins.items()):
                mine = login["claims"]
                if (mine.get("sid") == sid) if sid else (mine.get("sub") == sub):
                    del self.logins[key]
            self.logouts.append({"received_at": time.time(), "sid": sid, "sub": sub,
                                 "jti": claims.get("jti")})
        return True


def settings() -> dict:
    """The portal's settings from the environment and the file `idp init --demo` writes."""
    port = int(os.environ.get("IDP_DEMO_PORT") or 8080)
    config = {"DEMO_ISSUER": (os.environ.get("IDP_ISSUER") or "http://localhost:5000").rstrip("/"),
              "DEMO_BASE_URL": f"http://localhost:{port}",
              "DEMO_CLIENT_ID": os.environ.get("DEMO_CLIENT_ID"),
              "DEMO_CLIENT_SECRET": os.environ.get("DEMO_CLIENT_SECRET")}
    credentials = Path(os.environ.get("IDP_INSTANCE_DIR") or INSTANCE_DIR) / "demo_client.json"
    if not config["DEMO_CLIENT_ID"] and credentials.exists():
        stored = json.loads(credentials.read_text())
        config["DEMO_CLIENT_ID"], config["DEMO_CLIENT_SECRET"] = (
            stored["client_id"], stored["client_secret"])
    return config


def create_app(config: dict | None = None) -> Flask:
    """The portal; `config` overrides DEMO_ISSUER, DEMO_BASE_URL, DEMO_CLIENT_ID/SECRET."""
    app = Flask(__name__)
    app.config.update(SECRET_KEY=secrets.token_urlsafe(32), MAX_CONTENT_LENGTH=64 * 1024,
                      SESSION_COOKIE_NAME="demo_portal_session", SESSION_COOKIE_SAMESITE="Lax")
    app.config.update({**settings(), **(config or {})})
    if not app.config.get("DEMO_CLIENT_ID"):
        raise RuntimeError("no demo client: run `idp init --demo` "
                           "(or set DEMO_CLIENT_ID and DEMO_CLIENT_SECRET)")
    oauth = OAuth(app)
    oauth.register("provider", client_id=app.config["DEMO_CLIENT_ID"],
                   client_secret=app.config["DEMO_CLIENT_SECRET"],
                   server_metadata_url=(app.config["DEMO_ISSUER"]
                                        + "/.well-known/openid-configuration"),
                   client_kwargs={"scope": SCOPE, "code_challenge_method": "S256"})
    app.extensions["demo_store"] = Store()
    _routes(app)
    return app


def _provider():
    return current_app.extensions["authlib.integrations.flask_client"].provider


def _store() -> Store:
    return current_app.extensions["demo_store"]


def _url(path: str) -> str:
    return current_app.config["DEMO_BASE_URL"] + path


def _csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def _check_csrf() -> None:
    sent = request.form.get("csrf_token", "")
    if not hmac.compare_digest(sent.encode(), session.get("csrf", "").encode() or b"-"):
        abort(400, "The form expired: go back, reload the page and try again.")


def _page(status: int = 200, error: str | None = None):
    login = _store().get(session.get("key"))
    if login is None and session.pop("key", None):
        flash("The identity provider ended your session (back-channel logout).")
    logouts = _store().logouts
    return render_template("portal.html", login=login, error=error, csrf_token=_csrf_token(),
                           last_logout=logouts[-1] if logouts else None,
                           issuer=current_app.config["DEMO_ISSUER"],
                           backchannel_uri=_url("/backchannel-logout")), status


def _verify_logout_token(raw: str) -> dict:
    """Back-channel logout 1.0, section 2.6: signature, iss, aud, iat, events, no nonce."""
    provider = _provider()
    metadata = provider.load_server_metadata()
    algorithms = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
    try:
        token = jwt.decode(raw, KeySet.import_key_set(provider.fetch_jwk_set()), algorithms)
    except InvalidKeyIdError:
        token = jwt.decode(raw, KeySet.import_key_set(provider.fetch_jwk_set(force=True)),
                           algorithms)
    claims = token.claims
    jwt.JWTClaimsRegistry(leeway=60, iss={"essential": True, "value": metadata["issuer"]},
                          aud={"essential": True, "value": provider.client_id},
                          iat={"essential": True}).validate(claims)
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(LOGOUT_EVENT), dict):
        raise ValueError("no back-channel logout event")
    if "nonce" in claims or not (claims.get("sid") or claims.get("sub")):
        raise ValueError("a nonce, or neither sid nor sub")
    if token.header.get("typ") not in (None, "logout+jwt"):
        raise ValueError("wrong typ")
    return claims


def _routes(app: Flask) -> None:
    @app.before_request
    def canonical_host():
        """The cookie and the registered redirect URI belong to DEMO_BASE_URL's host."""
        if request.method == "GET" and request.host != urlsplit(_url("")).netloc:
            return redirect(_url(request.full_path.rstrip("?")))

    @app.after_request
    def headers(response):
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'self'; frame-ancestors 'none'; "
            f"form-action 'self' {current_app.config['DEMO_ISSUER']}")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.errorhandler(requests.RequestException)
    def provider_down(exc):
        return _page(503, f"The identity provider at {current_app.config['DEMO_ISSUER']} "
                          "does not answer yet. Is it running? Try again in a moment.")

    @app.errorhandler(400)
    def bad_request(exc):
        return _page(400, exc.description)

    @app.get("/")
    def home():
        if request.args.get("state"):
            try:
                _provider().validate_logout_response()
                flash("You are signed out.")
            except OAuthError:
                return _page(400, "This sign-out response is not one the portal asked for.")
            return redirect(_url("/"), code=303)
        return _page()

    @app.post("/login")
    def login():
        _check_csrf()
        return _provider().authorize_redirect(_url("/callback"))

    @app.post("/switch")
    def switch():
        """Switch account: the provider shows its company picker again, no password."""
        _check_csrf()
        return _provider().authorize_redirect(_url("/callback"), prompt="select_account")

    @app.get("/callback")
    def callback():
        provider = _provider()
        issuer = provider.load_server_metadata()["issuer"]
        if request.args.get("iss", issuer) != issuer:
            return _page(400, "The response comes from another issuer (RFC 9207).")
        try:
            token = provider.authorize_access_token()
        except OAuthError as exc:
            return _page(400, f"Sign-in failed: {exc.description or exc.error}")
        except JoseError as exc:
            return _page(400, f"Sign-in failed: the ID token is not valid ({exc.error}).")
        userinfo = provider.userinfo(token=token)
        key = secrets.token_urlsafe(32)
        _store().save(key, {"token": dict(token), "claims": dict(token["userinfo"]),
                            "userinfo": dict(userinfo)})
        session["key"] = key
        return redirect(_url("/"), code=303)

    @app.post("/refresh")
    def refresh():
        _check_csrf()
        login = _store().get(session.get("key"))
        if login is None or not login["token"].get("refresh_token"):
            return _page(400, "There is no refresh token: sign in first.")
        try:
            fresh = _provider().fetch_access_token(
                grant_type="refresh_token", refresh_token=login["token"]["refresh_token"])
        except OAuthError as exc:
            return _page(400, f"Refreshing failed: {exc.description or exc.error}")
        login["token"] = {**login["token"], **fresh}
        flash("Tokens refreshed: a new access token and a new refresh token.")
        return redirect(_url("/"), code=303)

    @app.post("/logout")
    def logout():
        _check_csrf()
        login = _store().pop(session.pop("key", None))
        if login is None:
            return redirect(_url("/"), code=303)
        return _provider().logout_redirect(post_logout_redirect_uri=_url("/"),
                                           id_token_hint=login["token"]["id_token"])

    @app.post("/backchannel-logout")
    def backchannel_logout():
        try:
            claims = _verify_logout_token(request.form.get("logout_token", ""))
        except (JoseError, ValueError, KeyError) as exc:
            return {"error": "invalid_request", "error_description": str(exc)}, 400
        if not _store().backchannel_logout(claims):
            return {"error": "invalid_request", "error_description": "replayed token"}, 400
        return "", 200

    @app.template_filter("utc")
    def utc(timestamp: float) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))

    @app.template_filter("pretty")
    def pretty(value) -> str:
        return value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)
