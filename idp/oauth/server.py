"""The authorization server: Authlib's, wired to our storage, grants and extensions."""

from __future__ import annotations

import time

from authlib.integrations.flask_oauth2 import AuthorizationServer as _FlaskAuthorizationServer
from authlib.oauth2.rfc6749 import InvalidRequestError, UnsupportedResponseTypeError
from flask import Flask, current_app, has_app_context
from sqlalchemy import select

from idp.extensions import db
from idp.models import Client
from idp.oauth.claims import SUPPORTED_SCOPES
from idp.oauth.client_auth import (
    PrivateKeyJWT,
    authenticate_client_secret_basic,
    refuse_several_methods,
)
from idp.oauth.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    IDToken,
    RefreshTokenGrant,
)
from idp.oauth.pkce import StrictPKCE
from idp.services import tokens


class AuthorizationServer(_FlaskAuthorizationServer):
    def init_app(self, app: Flask, query_client=None, save_token=None) -> None:
        super().init_app(app, query_client, save_token)
        self.app = app  # one server per app: query_client reads its config, not current_app

    def query_client(self, client_id):
        """The client, from a short per-process cache (every token request looks it up).

        Cached objects are detached snapshots, so a commit does not expire them; a
        change to a client reaches this process within IDP_CLIENT_CACHE_TTL seconds.
        Unknown ids are not cached: a new client works at once. A hit needs no app
        context (the lean paths of idp/oauth/lean.py run without one); a miss outside
        this app's context reads in a context of its own.
        """
        if not isinstance(client_id, str) or not client_id or len(client_id) > 64:
            return None
        ttl = self.app.config["IDP_CLIENT_CACHE_TTL"]
        now = time.monotonic()
        cache = self.__dict__.setdefault("_client_cache", {})
        hit = cache.get(client_id)
        if hit is not None and now - hit[1] < ttl:
            return hit[0]
        if has_app_context() and current_app._get_current_object() is self.app:
            return self._load_client(client_id, ttl, now, cache)
        with self.app.app_context():  # no context, or another app's (tests build several)
            return self._load_client(client_id, ttl, now, cache)

    def _load_client(self, client_id: str, ttl: float, now: float, cache: dict):
        client = db.session.scalar(select(Client).where(Client.client_id == client_id))
        if client is not None and ttl > 0:
            db.session.expunge(client)
            if len(cache) > 10_000:
                cache.clear()
            cache[client_id] = (client, now)
        return client

    def authenticate_client(self, request, methods, endpoint="token"):
        """Every client authentication (token, revocation, introspection) comes here."""
        refuse_several_methods(request)
        return super().authenticate_client(request, methods, endpoint)

    def save_token(self, token, request) -> None:
        if tokens.stored(request.token_row):  # a client_credentials token has no row
            db.session.add(request.token_row)

    def get_authorization_grant(self, request):
        """Authlib's, except for what it does not support: its error would echo the raw
        ``response_type`` into an error description (a 500 on a quote or non-ASCII), and
        a missing ``response_type`` is ``invalid_request`` (RFC 6749 4.1.2.1)."""
        response_type = request.payload.response_type
        if response_type == "code":
            return super().get_authorization_grant(request)
        redirect_uri = None
        client = self.query_client(request.payload.client_id)
        requested = request.payload.redirect_uri
        if client is not None and isinstance(requested, str) and client.check_redirect_uri(
                requested):
            redirect_uri = requested
        if not response_type:
            raise InvalidRequestError("Missing 'response_type'.", redirect_uri=redirect_uri)
        raise UnsupportedResponseTypeError(
            response_type, "Only 'response_type=code' is supported.", redirect_uri=redirect_uri)


def init_app(app: Flask) -> AuthorizationServer:
    """One server per app (tests build many apps); reach it as ``authorization_server()``."""
    app.config.setdefault("OAUTH2_SCOPES_SUPPORTED", SUPPORTED_SCOPES)
    server = AuthorizationServer(app)
    app.extensions["idp_oauth"] = server
    server.register_client_auth_method("client_secret_basic", authenticate_client_secret_basic)
    server.register_client_auth_method("private_key_jwt", PrivateKeyJWT())
    server.register_grant(AuthorizationCodeGrant, [StrictPKCE(), IDToken()])
    server.register_grant(RefreshTokenGrant)
    server.register_grant(ClientCredentialsGrant)
    return server


def authorization_server() -> AuthorizationServer:
    return current_app.extensions["idp_oauth"]
