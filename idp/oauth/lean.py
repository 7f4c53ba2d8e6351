"""The hot machine requests answered without Flask's request machinery.

A relying party or a device hammers a handful of requests: a client_credentials
or refresh_token grant at the token endpoint, introspection and userinfo of a JWT
access token. Through Flask each of them pays for a request context, the browser
hooks (session, user load, CSP nonce, Babel, throttles that do not apply) and
Werkzeug's request and response objects; the work itself is a fraction of that.

This WSGI middleware answers those requests itself **only when they succeed**,
with the same services the views use (one client lookup through the authorization
server's cache, ``idp.services.tokens`` for the rest) and the same answer: status,
body bytes and every header the Flask path sets (no-store, Pragma, the security
headers). Anything else (an error of any kind, a parameter it does not know, a
second authentication method, private_key_jwt, a query string, a body that is not
a small form, a process not ready yet) is handed to the Flask app unchanged, body
included, so every error code, status and ``WWW-Authenticate`` header stays the
views' own. The decision to answer is taken before anything is written.

State machine of one request::

    READ --not ours / odd form--> FLASK
    READ --parsed--> CHECK --any check fails--> FLASK
    CHECK --all pass--> ANSWER (200, written and committed in one transaction)
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterable
from urllib.parse import unquote_plus

from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from flask import Flask

from idp.extensions import db
from idp.oauth.grants import CLIENT_AUTH_METHODS
from idp.security import machine_security_headers

logger = logging.getLogger(__name__)

# The largest body taken here; a bigger one (still valid up to MAX_CONTENT_LENGTH) goes to Flask.
MAX_BODY = 8192
FORM_TYPE = "application/x-www-form-urlencoded"
NO_STORE = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]


class Answer:
    """A complete 200 answer: status, JSON body and the endpoint's own headers."""

    __slots__ = ("body", "headers")

    def __init__(self, body: bytes, headers: list[tuple[str, str]]):
        self.body, self.headers = body, headers


def parse_form(raw: bytes, allowed: frozenset[str]) -> dict[str, str] | None:
    """A small urlencoded form with each name once and only names in ``allowed``; None
    for anything else (Flask then parses it and answers as it always has)."""
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    form: dict[str, str] = {}
    for pair in text.split("&"):
        name, sep, value = pair.partition("=")
        if not sep:
            return None
        name = unquote_plus(name)
        if name not in allowed or name in form:
            return None
        form[name] = unquote_plus(value)
    return form


def read_body(environ: dict) -> bytes | None:
    """The request body when it is a small form with a length; else None, untouched."""
    if environ.get("QUERY_STRING") or environ.get("HTTP_TRANSFER_ENCODING"):
        return None
    if environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower() != FORM_TYPE:
        return None
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    if not 0 < length <= MAX_BODY:
        return None
    raw = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(raw)  # Flask can still read it if we pass
    return raw if len(raw) == length else None


def authenticated_client(server, environ: dict, form: dict[str, str],
                         methods: tuple[str, ...]):
    """The client of a request that carries exactly one method among ``methods`` and passes
    it, the way Authlib's client_secret_basic, client_secret_post or none (a public client
    naming itself) accepts it; else None (the view then decides)."""
    header = environ.get("HTTP_AUTHORIZATION", "")
    basic = header.split(" ", 1)[0].lower() == "basic"
    if "client_assertion" in form or "client_assertion_type" in form:
        return None
    if basic and "client_secret" in form:
        return None  # two methods: the view refuses it
    if basic:
        method = "client_secret_basic"
        try:
            client_id, secret = extract_basic_authorization({"Authorization": header})
        except ValueError:
            return None
    elif "client_secret" in form:
        method = "client_secret_post"
        client_id, secret = form.get("client_id"), form["client_secret"]
    else:
        client = server.query_client(form.get("client_id")) if "none" in methods else None
        if client is None or header or not client.check_endpoint_auth_method("none", "token"):
            return None
        return client
    if method not in methods or not client_id or not secret:
        return None
    client = server.query_client(client_id)
    if client is None or not client.check_client_secret(secret) \
            or not client.check_endpoint_auth_method(method, "token"):
        return None
    return client


def json_body(app: Flask, payload: dict, compact: bool) -> bytes:
    """The bytes Flask would send: Authlib's ``json.dumps`` for token answers, ``jsonify``
    (compact, newline) for the views' own."""
    if compact:
        return (app.json.dumps(payload, separators=(",", ":")) + "\n").encode()
    return app.json.dumps(payload).encode()


def token_answer(app: Flask, payload: dict) -> Answer:
    """As Authlib's token response comes out of Flask: its headers, then the length."""
    body = json_body(app, payload, False)
    return Answer(body, [("Content-Type", "application/json"), *NO_STORE,
                         ("Content-Length", str(len(body)))])


def view_answer(app: Flask, payload: dict) -> Answer:
    """As ``jsonify(payload), 200, NO_STORE`` comes out of a view."""
    body = json_body(app, payload, True)
    return Answer(body, [("Content-Type", "application/json"),
                         ("Content-Length", str(len(body))), *NO_STORE])


class LeanMachinePaths:
    """WSGI middleware: the handlers below, in front of the Flask app (see module docstring).

    A handler runs without an application context: what it needs of the app it reads from
    ``self.app`` (``config`` and ``extensions`` are plain dicts, read on each request, so a
    reloaded key store or a changed setting counts at once) and the database engine from
    ``self.engine()`` (taken once: an app's engine never changes), and uses neither
    ``db.session`` nor ``current_app``."""

    def __init__(self, app: Flask, wsgi_app: Callable):
        self.app, self.wsgi_app = app, wsgi_app
        self.enabled = True
        self._engine = None
        # path -> (method, endpoint name for the metrics, handler)
        self.handlers: dict[str, tuple[str, str, Callable]] = {
            "/oauth/token": ("POST", "oauth.token", self._token),
            "/oauth/introspect": ("POST", "oauth.introspect", self._introspect),
            "/oauth/userinfo": ("GET", "oauth.userinfo", self._userinfo),
        }

    def engine(self):
        """The app's SQLAlchemy engine (Flask-SQLAlchemy hands it out in an app context)."""
        if self._engine is None:
            with self.app.app_context():
                self._engine = db.engine
        return self._engine

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        route = self.handlers.get(environ.get("PATH_INFO", ""))
        if route is None or not self.enabled or environ.get("REQUEST_METHOD") != route[0]:
            return self.wsgi_app(environ, start_response)
        ready = self.app.extensions.get("idp_ready")
        if ready is None or not ready.is_set():
            return self.wsgi_app(environ, start_response)  # the app answers 503 until ready
        started = time.perf_counter()
        try:
            answer = route[2](environ)
        except OAuth2Error:
            answer = None
        except Exception:  # noqa: BLE001 - the views' handler does the same
            logger.exception("unhandled error")
            failed = view_answer(self.app, {"error": "server_error"})
            return self._send(start_response, route, started, "500 INTERNAL SERVER ERROR",
                              failed.body, failed.headers[:2])
        if answer is None:
            return self.wsgi_app(environ, start_response)
        return self._send(start_response, route, started, "200 OK", answer.body, answer.headers)

    def _send(self, start_response: Callable, route: tuple, started: float, status: str,
              body: bytes, headers: list[tuple[str, str]]) -> list[bytes]:
        headers = [*headers, *machine_security_headers(self.app.config["IDP_HTTPS"])]
        start_response(status, headers)
        metrics = self.app.extensions.get("idp_metrics")
        if metrics is not None:
            metrics.observe(route[1], route[0], int(status[:3]), time.perf_counter() - started)
        return [body]

    # --- the token endpoint --------------------------------------------------------------

    def _token(self, environ: dict) -> Answer | None:
        raw = read_body(environ)
        form = parse_form(raw, TOKEN_PARAMS) if raw is not None else None
        if form is None:
            return None
        if form.get("grant_type") == "client_credentials" and "refresh_token" not in form:
            return self._client_credentials(environ, form)
        if form.get("grant_type") == "refresh_token" and form.get("refresh_token"):
            return self._refresh(environ, form)
        return None

    def _client_credentials(self, environ: dict, form: dict[str, str]) -> Answer | None:
        """No app context, no database on a client-cache hit: one ES256 signature."""
        from idp.oauth.grants import ClientCredentialsGrant, token_settings
        from idp.services import tokens

        server = self.app.extensions["idp_oauth"]
        client = authenticated_client(server, environ, form,
                                      tuple(ClientCredentialsGrant.TOKEN_ENDPOINT_AUTH_METHODS))
        if client is None or not client.check_grant_type("client_credentials"):
            return None
        scope = form.get("scope")
        server.validate_requested_scope(scope)  # InvalidScopeError: the view answers it
        body = tokens.issue_client_token(self.app.extensions["idp_keys"],
                                         token_settings(self.app.config), client=client,
                                         scope=scope or "")
        return token_answer(self.app, body)


    def _refresh(self, environ: dict, form: dict[str, str]) -> Answer | None:
        """Rotation on this thread's DBAPI connection (idp.services.dbapi): one autocommit
        SELECT (token, grant, user, membership; on PostgreSQL sent before the client is
        authenticated, read after), then the claim of the old token and the
        INSERT of its successor, committed (one statement on PostgreSQL, one short
        transaction on SQLite). A replayed, revoked or expired token, a scope beyond the
        grant's, another client's token, a lost race, a database error: the view answers
        (and revokes the family on a replay)."""
        from authlib.oauth2.rfc6749.util import scope_to_list

        from idp.oauth.grants import RefreshTokenGrant, token_settings
        from idp.services import dbapi, tokens

        engine = self.engine()
        try:
            with dbapi.connection(engine) as connection:
                # PostgreSQL reads the token while the client is authenticated
                read = tokens.start_refresh_state(form["refresh_token"], connection)
                try:
                    client = authenticated_client(
                        self.app.extensions["idp_oauth"], environ, form,
                        tuple(RefreshTokenGrant.TOKEN_ENDPOINT_AUTH_METHODS))
                finally:
                    state = read()
                if client is None or not client.check_grant_type("refresh_token"):
                    return None
                if state is None or state.client_id != client.client_id \
                        or not tokens.refresh_grant_valid(state):
                    return None
                scope = form.get("scope")
                if scope:
                    granted = state.requestable_scope()
                    if not granted or \
                            not set(scope_to_list(granted)).issuperset(scope_to_list(scope)):
                        return None
                # rendered while PostgreSQL commits the rotation (tokens.rotate_refresh_token)
                return tokens.rotate_refresh_token(
                    self.app.extensions["idp_keys"], token_settings(self.app.config), state, client,
                    scope or state.requestable_scope(), connection,
                    render=lambda body: token_answer(self.app, body))
        except engine.dialect.loaded_dbapi.Error:
            logger.warning("refresh on the DBAPI connection failed; the view answers",
                           exc_info=True)
            return None

    # --- introspection and userinfo of a JWT access token -----------------------------

    def _introspect(self, environ: dict) -> Answer | None:
        """An active access token shown by the client it was issued to. A value with two
        dots is only ever an access token (refresh tokens are URL-safe random strings), so
        the hint, which only orders the search, changes nothing here. No app context: the
        client comes from the server's cache (a miss reads it in a context of its own)."""
        from idp.services import tokens

        raw = read_body(environ)
        form = parse_form(raw, INTROSPECT_PARAMS) if raw is not None else None
        value = (form or {}).get("token", "")
        if form is None or value.count(".") != 2 or len(value) > 8192:
            return None
        client = authenticated_client(self.app.extensions["idp_oauth"], environ, form,
                                      INTROSPECTION_AUTH_METHODS)
        if client is None or client.is_public:
            return None
        body = self._read(tokens.introspect_access_token, self.app.extensions["idp_keys"],
                          self.app.config["IDP_ISSUER"], client.client_id, value)
        if body is None or not body["active"]:
            return None
        return view_answer(self.app, body)

    def _userinfo(self, environ: dict) -> Answer | None:
        """GET with ``Authorization: Bearer`` and a user's token that allows userinfo."""
        from idp.services import tokens

        if environ.get("QUERY_STRING"):
            return None
        scheme, _, value = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return None
        found = self._read(tokens.active_access_token, self.app.extensions["idp_keys"],
                           self.app.config["IDP_ISSUER"], value.strip())
        body = tokens.userinfo(*found) if found is not None else None
        if body is None:
            return None
        return view_answer(self.app, body)

    def _read(self, lookup: Callable, *args):
        """``lookup(*args, engine)``: a read on this thread's DBAPI connection; None when
        the database fails (the connection is dropped and the view answers, through the
        pool, as it always has)."""
        engine = self.engine()
        try:
            return lookup(*args, engine)
        except engine.dialect.loaded_dbapi.Error:
            logger.warning("lean path: database error, handed to the view", exc_info=True)
            return None


INTROSPECT_PARAMS = frozenset({"token", "token_type_hint", "client_id", "client_secret"})
# The methods introspection accepts, as the view's (private_key_jwt still goes to the view).
INTROSPECTION_AUTH_METHODS = tuple(m for m in CLIENT_AUTH_METHODS if m != "none")
# The token request parameters taken here; any other name sends the request to Flask.
TOKEN_PARAMS = frozenset({"grant_type", "scope", "client_id", "client_secret", "refresh_token"})


def init_app(app: Flask) -> LeanMachinePaths:
    """Wraps the app's WSGI callable; reach it as ``app.extensions["idp_lean"]``."""
    lean = LeanMachinePaths(app, app.wsgi_app)
    app.wsgi_app = lean
    app.extensions["idp_lean"] = lean
    return lean
