"""private_key_jwt client authentication (RFC 7523, OIDC Core 9)."""

from __future__ import annotations

import time

from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from flask import current_app
from joserfc.jwk import KeySet
from sqlalchemy.exc import IntegrityError

from idp.extensions import db
from idp.models import ClientAssertionJti


class PrivateKeyJWT(JWTBearerClientAssertion):
    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self):
        super().__init__(validate_jti=True, leeway=30)

    def get_audiences(self) -> list[str]:
        issuer = current_app.config["IDP_ISSUER"]
        return [issuer, f"{issuer}/oauth/token"]

    def resolve_client_public_key(self, client):
        return KeySet.import_key_set(client.jwks or {"keys": []})

    def validate_jti(self, claims, jti) -> bool:
        """An assertion is accepted once: its jti is remembered until it expires."""
        if not isinstance(jti, str) or len(jti) > 255:
            return False
        expires_at = int(claims.get("exp") or time.time()) + 60
        try:
            with db.session.begin_nested():
                db.session.add(ClientAssertionJti(client_id=str(claims["sub"]), jti=jti,
                                                  expires_at=expires_at))
        except IntegrityError:
            return False
        return True
