"""Assertions and small helpers shared by the protocol tests."""

from __future__ import annotations

import base64

from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support import basic_auth, query_of


def assert_error_redirect(response, redirect_uri: str, error: str, state: str | None = None,
                          issuer: str | None = None) -> dict:
    """An authorization error delivered to the client: right place, code, state and iss."""
    assert response.status_code in (302, 303), (response.status_code, response.text[:300])
    location = response.headers["Location"]
    assert location.startswith(redirect_uri + "?"), location
    params = query_of(location)
    assert params["error"] == error, params
    if state is not None:
        assert params["state"] == state
    assert "iss" in params, "every authorization response carries iss (RFC 9207)"
    if issuer is not None:
        assert params["iss"] == issuer
    return params


def assert_error_page(response, status: int = 400) -> None:
    """An error page on the IdP: never a redirect anywhere."""
    assert response.status_code == status, (response.status_code, response.headers.get("Location"))
    assert "Location" not in response.headers
    assert response.mimetype == "text/html"


def jwks(http) -> KeySet:
    return KeySet.import_key_set(http.get("/.well-known/jwks.json").get_json())


def decode(http, token: str) -> jwt.Token:
    """Verify one of our JWTs against the published JWKS."""
    return jwt.decode(token, jwks(http), algorithms=["RS256", "ES256"])


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def introspect(client, rp, token: str, **form):
    """POST /oauth/introspect as the client ``rp`` (client_secret_basic)."""
    return client.post("/oauth/introspect", data={"token": token, **form},
                       headers=basic_auth(rp.client_id, rp.client_secret))
