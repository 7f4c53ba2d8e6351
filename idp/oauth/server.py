"""The authorization server: Authlib's, wired to our storage, grants and extensions."""

from __future__ import annotations

from authlib.integrations.flask_oauth2 import AuthorizationServer as _FlaskAuthorizationServer
from flask import Flask, current_app
from sqlalchemy import select

from idp.extensions import db
from idp.models import Client
from idp.oauth.claims import SUPPORTED_SCOPES
from idp.oauth.client_auth import PrivateKeyJWT
from idp.oauth.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    IDToken,
    RefreshTokenGrant,
)
from idp.oauth.pkce import StrictPKCE


class AuthorizationServer(_FlaskAuthorizationServer):
    def query_client(self, client_id):
        if not isinstance(client_id, str) or not client_id or len(client_id) > 64:
            return None
        return db.session.scalar(select(Client).where(Client.client_id == client_id))

    def save_token(self, token, request) -> None:
        db.session.add(request.token_row)


def init_app(app: Flask) -> AuthorizationServer:
    """One server per app (tests build many apps); reach it as ``authorization_server()``."""
    app.config.setdefault("OAUTH2_SCOPES_SUPPORTED", SUPPORTED_SCOPES)
    server = AuthorizationServer(app)
    app.extensions["idp_oauth"] = server
    server.register_client_auth_method("private_key_jwt", PrivateKeyJWT())
    server.register_grant(AuthorizationCodeGrant, [StrictPKCE(), IDToken()])
    server.register_grant(RefreshTokenGrant)
    server.register_grant(ClientCredentialsGrant)
    return server


def authorization_server() -> AuthorizationServer:
    return current_app.extensions["idp_oauth"]
