"""Registering OAuth clients (portals, mobile apps, services)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select

from idp.extensions import db
from idp.models import Client, ClientTenant, Tenant
from idp.models.oauth import digest
from idp.oauth.claims import SUPPORTED_SCOPES
from idp.oauth.redirects import InvalidRedirectURI, validate_redirect_uri

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
# A client with a secret may send it either way (RFC 6749 2.3.1) unless it pins one.
SECRET_METHODS = ["client_secret_basic", "client_secret_post"]


class ClientError(ValueError):
    pass


@dataclass
class RegisteredClient:
    client: Client
    client_secret: str | None


def create_client(name: str, redirect_uris: list[str], *, public: bool = False,
                  tenant: Tenant | None = None, grant_types: list[str] | None = None,
                  post_logout_redirect_uris: list[str] | None = None,
                  backchannel_logout_uri: str | None = None, third_party: bool = False,
                  auth_method: str | None = None, jwks: dict | None = None,
                  id_token_alg: str = "RS256", client_id: str | None = None) -> RegisteredClient:
    if not name or len(name) > 200:
        raise ClientError("name is required (at most 200 characters)")
    grant_types = list(grant_types or ["authorization_code", "refresh_token"])
    unknown = set(grant_types) - set(GRANT_TYPES)
    if unknown:
        raise ClientError(f"unsupported grant types: {', '.join(sorted(unknown))}")
    if public and auth_method is None:
        auth_method = "none"
    if auth_method is not None and auth_method not in AUTH_METHODS:
        raise ClientError(f"auth method must be one of {', '.join(AUTH_METHODS)}")
    if public != (auth_method == "none"):
        raise ClientError("public clients use auth method 'none', and only they do")
    # Pinned to one method, or (no auth_method for a secret) either secret method.
    auth_methods = [auth_method] if auth_method else list(SECRET_METHODS)
    if public and "client_credentials" in grant_types:
        raise ClientError("public clients cannot use client_credentials")
    if auth_method == "private_key_jwt" and not (jwks and jwks.get("keys")):
        raise ClientError("private_key_jwt needs the client's public keys (JWKS)")
    if "authorization_code" in grant_types and not redirect_uris:
        raise ClientError("authorization_code needs at least one redirect URI")
    if id_token_alg not in ("RS256", "ES256"):
        raise ClientError("id_token alg must be RS256 or ES256")
    uris, logout_uris = _validated_uris(redirect_uris, post_logout_redirect_uris,
                                        backchannel_logout_uri, public)
    secret = None if auth_method in ("none", "private_key_jwt") else secrets.token_urlsafe(32)
    client = Client(
        client_id=client_id or secrets.token_urlsafe(18), secret_hash=digest(secret) if secret else None,
        name=name, tenant_id=tenant.id if tenant else None, redirect_uris=uris,
        post_logout_redirect_uris=logout_uris, backchannel_logout_uri=backchannel_logout_uri,
        grant_types=grant_types, token_endpoint_auth_methods=auth_methods, jwks=jwks,
        third_party=third_party, id_token_signed_response_alg=id_token_alg)
    db.session.add(client)
    db.session.flush()
    return RegisteredClient(client, secret)


def _validated_uris(redirect_uris: list[str], post_logout_redirect_uris: list[str] | None,
                    backchannel_logout_uri: str | None, public: bool) -> tuple[list, list]:
    try:
        uris = [validate_redirect_uri(u, public) for u in redirect_uris]
        logout_uris = [validate_redirect_uri(u, public) for u in post_logout_redirect_uris or []]
        if backchannel_logout_uri:
            validate_redirect_uri(backchannel_logout_uri, False)
    except InvalidRedirectURI as exc:
        raise ClientError(f"invalid redirect URI: {exc}") from exc
    return uris, logout_uris


def update_registration(client: Client, *, redirect_uris: list[str],
                        post_logout_redirect_uris: list[str],
                        backchannel_logout_uri: str | None, grant_types: list[str],
                        scope: str | None = None) -> Client:
    """Replace a client's URIs, grant types and (when given) allowed scopes."""
    unknown = set(grant_types) - set(GRANT_TYPES)
    if unknown:
        raise ClientError(f"unsupported grant types: {', '.join(sorted(unknown))}")
    if "authorization_code" in grant_types and not redirect_uris:
        raise ClientError("authorization_code needs at least one redirect URI")
    if scope is not None and set(scope.split()) - set(SUPPORTED_SCOPES):
        raise ClientError("unsupported scopes")
    client.redirect_uris, client.post_logout_redirect_uris = _validated_uris(
        redirect_uris, post_logout_redirect_uris, backchannel_logout_uri, client.is_public)
    client.backchannel_logout_uri = backchannel_logout_uri
    client.grant_types = list(grant_types)
    if scope is not None:
        client.scope = scope
    db.session.flush()
    return client


def new_secret(client: Client) -> str:
    """Give a confidential client a new secret (the old one stops working); returns it."""
    if not set(client.token_endpoint_auth_methods) & set(SECRET_METHODS):
        raise ClientError("this client authenticates without a secret")
    secret = secrets.token_urlsafe(32)
    client.secret_hash = digest(secret)
    db.session.flush()
    return secret


# Which tenants a client serves: owned (one), shared (every tenant) or shared with a list.


def shared_with(client: Client) -> list[int]:
    """The tenant ids a shared client is limited to (empty: every tenant)."""
    return list(db.session.scalars(select(ClientTenant.tenant_id)
                                   .where(ClientTenant.client_id == client.id)
                                   .order_by(ClientTenant.tenant_id)))


def serves(client: Client, tenant_id: int) -> bool:
    """Does this client serve the people of this tenant? Its own tenant; a shared one,
    every tenant or the listed ones (a token bound to a tenant stays good only while the
    client serves it)."""
    if client.tenant_id is not None:
        return client.tenant_id == tenant_id
    listed = shared_with(client)
    return not listed or tenant_id in listed


def share_with(client: Client, tenants: list[Tenant]) -> None:
    """Limit a shared client to these tenants (replacing the list)."""
    if client.tenant_id is not None:
        raise ClientError("a client owned by a tenant cannot be shared")
    db.session.execute(delete(ClientTenant).where(ClientTenant.client_id == client.id))
    for tenant_id in sorted({t.id for t in tenants}):
        db.session.add(ClientTenant(client_id=client.id, tenant_id=tenant_id))
    db.session.flush()
