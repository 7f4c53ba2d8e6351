"""Token introspection (RFC 7662): confidential clients only, and a client sees only its
own tokens."""

from __future__ import annotations

import pytest

from tests.http.helpers import decode, introspect
from tests.support import basic_auth

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")


def test_active_access_token(app, client, driver, rp):
    tokens = driver.tokens(rp, scope="openid email")
    response = introspect(client, rp, tokens["access_token"])
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    claims = decode(client, tokens["access_token"]).claims
    assert body["active"] is True
    assert body["client_id"] == rp.client_id and body["scope"] == "openid email"
    assert body["sub"] == claims["sub"] and body["jti"] == claims["jti"]
    assert body["exp"] == claims["exp"] and body["iss"] == app.config["IDP_ISSUER"]
    assert body["token_type"] == "Bearer" and body["org_slug"] == "acme"


@pytest.mark.parametrize("hint", [None, "refresh_token", "access_token"])
def test_active_refresh_token(client, driver, rp, hint):
    tokens = driver.tokens(rp)
    body = introspect(client, rp, tokens["refresh_token"],
                      **({"token_type_hint": hint} if hint else {})).get_json()
    assert body["active"] is True and body["client_id"] == rp.client_id
    assert "exp" in body


def test_public_client_may_not_introspect(client, driver, native):
    tokens = driver.tokens(native, scope="openid")
    response = client.post("/oauth/introspect",
                           data={"token": tokens["access_token"], "client_id": native.client_id})
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


def test_no_client_authentication_is_401(client, driver, rp):
    tokens = driver.tokens(rp)
    response = client.post("/oauth/introspect", data={"token": tokens["access_token"]})
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_client"
    wrong = introspect(client, type(rp)(rp.client_id, "wrong", rp.redirect_uri),
                       tokens["access_token"])
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"].startswith("Basic")


def test_token_of_another_client_is_inactive(client, factory, driver, rp):
    other = factory.client()
    tokens = driver.tokens(rp)
    for token in (tokens["access_token"], tokens["refresh_token"]):
        assert introspect(client, other, token).get_json() == {"active": False}
    assert introspect(client, rp, tokens["access_token"]).get_json()["active"] is True


@pytest.mark.parametrize("token", ["nope", "a.b.c", "x" * 9000, "é"])
def test_garbage_is_inactive(client, rp, token):
    assert introspect(client, rp, token).get_json() == {"active": False}


def test_expired_access_token_is_inactive(app, client, driver, rp, clock):
    tokens = driver.tokens(rp)
    clock.advance(app.config["IDP_ACCESS_TOKEN_TTL"] + 1)
    assert introspect(client, rp, tokens["access_token"]).get_json() == {"active": False}
    assert introspect(client, rp, tokens["refresh_token"]).get_json()["active"] is True


def test_rotated_refresh_token_is_inactive(client, driver, rp):
    tokens = driver.tokens(rp)
    driver.token(rp, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert introspect(client, rp, tokens["refresh_token"]).get_json() == {"active": False}


def test_refresh_token_of_a_disabled_user_is_inactive(client, driver, rp, alice):
    from idp.extensions import db

    tokens = driver.tokens(rp)
    alice.active = False
    db.session.commit()
    assert introspect(client, rp, tokens["refresh_token"]).get_json() == {"active": False}
    assert introspect(client, rp, tokens["access_token"]).get_json() == {"active": False}


def test_missing_token_is_invalid_request(client, rp):
    response = client.post("/oauth/introspect", headers=basic_auth(rp.client_id, rp.client_secret))
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"
