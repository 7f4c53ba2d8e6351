"""Grants: Authlib's, subclassed only to plug in storage and our token issuer.

Single use of codes and rotation of refresh tokens are conditional UPDATEs in
the same transaction as the new token, so two concurrent redemptions cannot
both win; the loser revokes the whole family.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, grants
from authlib.oidc.core import OpenIDCode
from authlib.oidc.core.grants.util import create_half_hash
from flask import current_app
from sqlalchemy import select, update

from idp.extensions import db
from idp.models import Grant, Token, User
from idp.models.oauth import digest
from idp.oauth.claims import user_claims
from idp.services import memberships, tokens

CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]


@dataclass
class AuthorizedSubject:
    """Who is behind an authorization: the user and how and where they signed in."""

    user: User
    tenant_id: int | None
    auth_time: int
    amr: list
    acr: str | None
    sid: str | None
    claims: dict | None = None
    claims_locales: str | None = None

    def get_user_id(self) -> int:
        return self.user.id


def token_settings(config=None) -> tokens.TokenSettings:
    """The token lifetimes and issuer of ``config`` (the current app's by default)."""
    config = current_app.config if config is None else config
    return tokens.TokenSettings(config["IDP_ISSUER"], config["IDP_ACCESS_TOKEN_TTL"],
                                config["IDP_REFRESH_IDLE_TTL"], config["IDP_REFRESH_ABSOLUTE_TTL"])


class IssuesTokens:
    """Replaces Authlib's generator: our JWT access tokens, rows kept for save_token."""

    def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None,
                       include_refresh_token=True):
        request = self.request
        grant = request.authorization_code
        if grant is None and request.refresh_token is not None:
            grant = request.refresh_token.grant
        response, row = tokens.issue(
            current_app.extensions["idp_keys"], token_settings(), client=request.client,
            scope=scope or "", user=user, grant=grant,
            include_refresh_token=include_refresh_token)
        request.token_row = row
        return response


class AuthorizationCodeGrant(IssuesTokens, grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS

    @staticmethod
    def validate_authorization_redirect_uri(request, client) -> str:
        """Required and matched exactly (no default). Authlib's own version echoes the
        URI into the error description, which it refuses (a 500) for quotes or non-ASCII."""
        redirect_uri = request.payload.redirect_uri
        if not redirect_uri:
            raise InvalidRequestError("Missing 'redirect_uri' in request.")
        if not client.check_redirect_uri(redirect_uri):
            raise InvalidRequestError("The 'redirect_uri' is not registered for this client.")
        return redirect_uri

    def save_authorization_code(self, code: str, request) -> Grant:
        subject: AuthorizedSubject = request.user
        payload = request.payload.data
        now = int(time.time())
        grant = Grant(
            code_hash=digest(code), client_id=request.client.client_id,
            user_id=subject.user.id, tenant_id=subject.tenant_id,
            redirect_uri=payload.get("redirect_uri"), scope=request.scope or "",
            nonce=payload.get("nonce"), code_challenge=payload.get("code_challenge"),
            code_challenge_method=payload.get("code_challenge_method"),
            claims=subject.claims, claims_locales=subject.claims_locales,
            auth_time=subject.auth_time, acr=subject.acr,
            amr=subject.amr, sid=subject.sid, created_at=now,
            code_expires_at=now + current_app.config["IDP_CODE_TTL"])
        db.session.add(grant)
        db.session.commit()
        return grant

    def query_authorization_code(self, code: str, client) -> Grant | None:
        if not isinstance(code, str) or len(code) > 256:
            return None
        grant = db.session.scalar(select(Grant).where(Grant.code_hash == digest(code)))
        if grant is None or grant.client_id != client.client_id:
            return None
        if grant.code_used_at is not None or grant.revoked_at is not None:
            # A replayed code: whoever holds it, the tokens issued from it die (RFC 9700 4.2.4).
            tokens.revoke_grant(grant.id)
            db.session.commit()
            return None
        if grant.code_expires_at <= int(time.time()):
            return None
        if not memberships.binding_valid(grant.user_id, grant.tenant_id) \
                or not memberships.serves(grant.client_id, grant.tenant_id):
            return None  # the tenant was disabled (or left) since the code: invalid_grant
        return grant

    def delete_authorization_code(self, grant: Grant) -> None:
        claimed = db.session.execute(
            update(Grant).where(Grant.id == grant.id, Grant.code_used_at.is_(None))
            .values(code_used_at=int(time.time()))).rowcount
        if claimed != 1:
            db.session.rollback()
            tokens.revoke_grant(grant.id)
            db.session.commit()
            raise InvalidGrantError("Invalid 'code' in request.")

    def authenticate_user(self, grant: Grant) -> User | None:
        user = db.session.get(User, grant.user_id)
        return user if user is not None and user.active else None


class RefreshTokenGrant(IssuesTokens, grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
        state = tokens.refresh_state(refresh_token)
        if state is None:
            return None
        if state.rotated_at is not None and state.grant_id is not None:
            # Replay of a rotated token: theft or a bug; the whole family dies.
            tokens.revoke_grant(state.grant_id)
            db.session.commit()
            return None
        if not tokens.refresh_grant_valid(state):
            return None
        row = db.session.get(Token, state.id)
        # A disabled user's refresh token is invalid_grant, not Authlib's invalid_request.
        return row if row is not None and self.authenticate_user(row) is not None else None

    def authenticate_user(self, row: Token) -> User | None:
        # Asked twice per request (above, then by Authlib): load the user once.
        cached = getattr(self, "_user", None)
        if cached is not None and cached.id == row.user_id:
            return cached
        user = db.session.get(User, row.user_id) if row.user_id else None
        self._user = user if user is not None and user.active else None
        return self._user

    def revoke_old_credential(self, row: Token) -> None:
        rotated = db.session.execute(
            update(Token).where(Token.id == row.id, Token.rotated_at.is_(None))
            .values(rotated_at=int(time.time()))
            .execution_options(synchronize_session=False)).rowcount
        if rotated != 1:
            db.session.rollback()
            tokens.revoke_grant(row.grant_id)
            db.session.commit()
            raise InvalidGrantError()


class ClientCredentialsGrant(IssuesTokens, grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]


class IDToken(OpenIDCode):
    """ID tokens signed by the key store; claims from the grant (auth_time, amr, sid...)."""

    def __init__(self):
        super().__init__(require_nonce=False)

    def __call__(self, grant) -> None:
        # Prompt handling lives in our authorization flow; only the token side is Authlib's.
        grant.register_hook("after_create_token_response", self.process_token)

    def exists_nonce(self, nonce, request) -> bool:
        return False

    def encode_id_token(self, token: dict, request) -> str:
        config = current_app.config
        client = request.client
        grant: Grant = request.authorization_code
        alg = client.id_token_signed_response_alg or "RS256"
        now = int(time.time())
        claims = {
            "iss": config["IDP_ISSUER"],
            "aud": client.client_id,
            "azp": client.client_id,
            "iat": now,
            "exp": now + config["IDP_ID_TOKEN_TTL"],
            "auth_time": grant.auth_time,
            "jti": secrets.token_urlsafe(12),
        }
        for name, value in (("nonce", grant.nonce), ("sid", grant.sid), ("acr", grant.acr)):
            if value:
                claims[name] = value
        if grant.amr:
            claims["amr"] = grant.amr
        claims["at_hash"] = create_half_hash(token["access_token"], alg).decode("ascii")
        requested = (grant.claims or {}).get("id_token")
        claims.update(user_claims(request.user, grant.scope, requested))
        claims.update(tokens.org_claims(tokens.org_context(grant.user_id, grant.tenant_id,
                                                           grant.claims_locales)))
        return current_app.extensions["idp_keys"].sign(claims, alg)
