"""OAuth clients, grants (one per authorization), tokens, consents."""

from __future__ import annotations

import hashlib
import hmac

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from idp.extensions import db
from idp.models._types import Epoch, JSONType, now
from idp.oauth.redirects import redirect_uri_matches


def digest(secret: str) -> str:
    """SHA-256 of a high-entropy secret: enough at rest, and cheap on the token path."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class Client(db.Model):
    __tablename__ = "oauth_clients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    secret_hash: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    # Set: owned by that tenant (serves it alone). None: shared, with every tenant, or
    # with the tenants listed in ClientTenant when there are rows (services/memberships.py).
    tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    redirect_uris: Mapped[list] = mapped_column(JSONType, nullable=False, default=list)
    post_logout_redirect_uris: Mapped[list] = mapped_column(JSONType, nullable=False, default=list)
    backchannel_logout_uri: Mapped[str | None] = mapped_column(String(2000))
    grant_types: Mapped[list] = mapped_column(JSONType, nullable=False, default=list)
    scope: Mapped[str] = mapped_column(
        String(500), nullable=False, default="openid profile email phone address offline_access"
    )
    # How the client may authenticate at the token, revocation and introspection endpoints:
    # ["none"] (public), ["private_key_jwt"], one pinned secret method, or both
    # (client_secret_basic and client_secret_post, the default for a secret).
    token_endpoint_auth_methods: Mapped[list] = mapped_column(
        JSONType, nullable=False, server_default=text("'[]'")
    )
    # Public keys (a JWK Set) for private_key_jwt.
    jwks: Mapped[dict | None] = mapped_column(JSONType)
    id_token_signed_response_alg: Mapped[str] = mapped_column(String(10), nullable=False, default="RS256")
    # A third-party client (not run by the platform or the tenant) gets the scope consent
    # page; a first-party one skips it (``prompt=consent`` still asks).
    third_party: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[int] = mapped_column(Epoch, nullable=False, default=now)

    tenant = relationship("Tenant")

    # --- Authlib ClientMixin -------------------------------------------------
    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_methods == ["none"]

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # Never guess: OIDC requires redirect_uri, and a default would hide mistakes.
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return ""
        allowed = set(self.scope.split())
        return " ".join(s for s in scope.split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return any(redirect_uri_matches(r, redirect_uri, native=self.is_public)
                   for r in self.redirect_uris)

    def check_client_secret(self, client_secret: str) -> bool:
        if not self.secret_hash or not isinstance(client_secret, str):
            return False
        return hmac.compare_digest(self.secret_hash, digest(client_secret))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        # The same methods at the token, revocation and introspection endpoints.
        return method in self.token_endpoint_auth_methods

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


class ClientTenant(db.Model):
    """A tenant a shared client serves; a shared client without rows serves every tenant."""

    __tablename__ = "oauth_client_tenants"

    client_id: Mapped[int] = mapped_column(
        ForeignKey("oauth_clients.id", ondelete="CASCADE"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True, index=True)


class Grant(db.Model):
    """One authorization: the code, then the family of tokens issued from it.

    Revoking the grant kills every token of the family at once (code reuse,
    refresh token replay, logout).
    """

    __tablename__ = "oauth_grants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(
        ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), nullable=False, index=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    redirect_uri: Mapped[str] = mapped_column(Text, nullable=False)
    scope: Mapped[str] = mapped_column(Text, nullable=False, default="")
    nonce: Mapped[str | None] = mapped_column(Text)
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(10))
    claims: Mapped[dict | None] = mapped_column(JSONType)
    # The request's ``claims_locales`` (OIDC Core 5.2): the languages of localised claims.
    claims_locales: Mapped[str | None] = mapped_column(String(100))
    auth_time: Mapped[int] = mapped_column(Epoch, nullable=False)
    acr: Mapped[str | None] = mapped_column(String(64))
    amr: Mapped[list] = mapped_column(JSONType, nullable=False, default=list)
    sid: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[int] = mapped_column(Epoch, nullable=False, default=now)
    code_expires_at: Mapped[int] = mapped_column(Epoch, nullable=False)
    code_used_at: Mapped[int | None] = mapped_column(Epoch)
    revoked_at: Mapped[int | None] = mapped_column(Epoch)

    # --- Authlib AuthorizationCodeMixin --------------------------------------
    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str | None:
        return self.acr

    def get_amr(self) -> list:
        return self.amr


class Token(db.Model):
    __tablename__ = "oauth_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    jti: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    refresh_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(
        ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), nullable=False, index=True
    )
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    grant_id: Mapped[int | None] = mapped_column(
        ForeignKey("oauth_grants.id", ondelete="CASCADE"), index=True
    )
    scope: Mapped[str] = mapped_column(Text, nullable=False, default="")
    issued_at: Mapped[int] = mapped_column(Epoch, nullable=False, default=now)
    access_expires_at: Mapped[int] = mapped_column(Epoch, nullable=False)
    refresh_expires_at: Mapped[int | None] = mapped_column(Epoch)
    # Set when the refresh token was exchanged for a new one; replay after that is theft.
    rotated_at: Mapped[int | None] = mapped_column(Epoch)
    revoked_at: Mapped[int | None] = mapped_column(Epoch)

    grant = relationship("Grant")

    # --- Authlib TokenMixin (refresh grant) ----------------------------------
    def check_client(self, client) -> bool:
        return self.client_id == client.client_id

    def get_scope(self) -> str:
        """What a refresh may ask for: the scope the resource owner granted (RFC 6749 6),
        not the narrower one an earlier refresh asked for (``scope`` is this access token's)."""
        if self.grant_id is not None and self.grant is not None:
            return self.grant.scope
        return self.scope


class Consent(db.Model):
    __tablename__ = "oauth_consents"
    __table_args__ = (UniqueConstraint("user_id", "client_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    client_id: Mapped[str] = mapped_column(
        ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), nullable=False
    )
    scope: Mapped[str] = mapped_column(Text, nullable=False, default="")
    # Claims granted one by one (the `claims` request parameter), beyond those of `scope`.
    claims: Mapped[str] = mapped_column(Text, nullable=False, default="", server_default="")
    granted_at: Mapped[int] = mapped_column(Epoch, nullable=False, default=now)


class ClientAssertionJti(db.Model):
    """Seen `jti` of private_key_jwt assertions: an assertion works once."""

    __tablename__ = "oauth_client_assertion_jtis"
    __table_args__ = (UniqueConstraint("client_id", "jti"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), nullable=False)
    jti: Mapped[str] = mapped_column(String(255), nullable=False)
    expires_at: Mapped[int] = mapped_column(Epoch, nullable=False, index=True)


class RevokedJti(db.Model):
    """Revoked access tokens that have no row (client_credentials): kept until their exp."""

    __tablename__ = "oauth_revoked_jtis"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[int] = mapped_column(Epoch, nullable=False, index=True)
