"""Client authentication: one method per request, private_key_jwt (RFC 7523, OIDC Core 9)
and a safe Basic."""

from __future__ import annotations

import time

from authlib.oauth2.rfc6749 import InvalidClientError, InvalidRequestError
from authlib.oauth2.rfc6749.authenticate_client import (
    authenticate_client_secret_basic as _authlib_basic,
)
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from flask import current_app
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError

from idp.extensions import db
from idp.models import ClientAssertionJti


def presented_methods(request) -> list[str]:
    """The ways of authenticating this request carries: HTTP Basic, a secret in the body,
    an assertion in the body (a ``client_id`` alone in the body is no authentication)."""
    scheme = (request.headers.get("Authorization") or "").split(" ", 1)[0].lower()
    form = request.form
    found = []
    if scheme == "basic":
        found.append("client_secret_basic")
    if "client_secret" in form:
        found.append("client_secret_post")
    if "client_assertion" in form or "client_assertion_type" in form:
        found.append("private_key_jwt")
    return found


def refuse_several_methods(request) -> None:
    """RFC 6749 2.3: the client MUST NOT use more than one authentication method in each
    request. Checked before any method is tried, whichever would have succeeded."""
    if len(presented_methods(request)) > 1:
        raise InvalidRequestError("Use one client authentication method per request.")


def authenticate_client_secret_basic(query_client, request):
    """Authlib's client_secret_basic, minus its 500 on a malformed header (credentials
    that are not UTF-8, ``Basic`` with nothing after it)."""
    try:
        return _authlib_basic(query_client, request)
    except ValueError:  # UnicodeDecodeError included
        return None


class PrivateKeyJWT(JWTBearerClientAssertion):
    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self):
        super().__init__(validate_jti=True, leeway=30)

    def get_audiences(self) -> list[str]:
        issuer = current_app.config["IDP_ISSUER"]
        return [issuer, f"{issuer}/oauth/token"]

    def resolve_client_public_key(self, client):
        """The keys the client registered; a client without keys cannot use an assertion."""
        if not client.check_endpoint_auth_method(self.CLIENT_AUTH_METHOD, "token") \
                or not client.jwks:
            raise InvalidClientError(
                description="The client cannot authenticate with method: private_key_jwt")
        try:
            return KeySet.import_key_set(client.jwks)
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise InvalidClientError(description="The client's registered keys are unusable.") \
                from exc

    def validate_jti(self, claims, jti) -> bool:
        """An assertion is accepted once: its jti is remembered until it expires (the
        client's expired ones are forgotten here, so the table does not grow).

        Recorded in a transaction of its own, committed at once: the request's own
        transaction is rolled back when the request fails (and never committed by
        introspection), which would let the same assertion be played again."""
        if not isinstance(jti, str) or len(jti) > 255:
            return False
        expires_at = int(claims.get("exp") or time.time()) + 60
        try:
            with db.engine.begin() as connection:
                connection.execute(delete(ClientAssertionJti).where(
                    ClientAssertionJti.client_id == str(claims["sub"]),
                    ClientAssertionJti.expires_at < int(time.time())))
                connection.execute(insert(ClientAssertionJti).values(
                    client_id=str(claims["sub"]), jti=jti, expires_at=expires_at))
        except IntegrityError:
            return False
        return True
