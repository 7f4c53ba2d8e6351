"""The UserInfo endpoint (OIDC Core 5.3, RFC 6750): valid bearer tokens only, claims by
scope and by the `claims` request."""

from __future__ import annotations

import base64
import json
import time

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from idp.extensions import db
from tests.http.helpers import bearer

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")


def _info(client, token, **kwargs):
    return client.get("/oauth/userinfo", headers=bearer(token), **kwargs)


def _invalid_token(response):
    assert response.status_code == 401, response.status_code
    assert response.get_json()["error"] == "invalid_token"
    assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    assert response.headers["Cache-Control"] == "no-store"


def test_claims_follow_the_scope(client, factory, driver):
    factory.user(given_name="Alice", family_name="Martin")
    rp = factory.client()
    only_email = driver.tokens(rp, scope="openid email")
    info = _info(client, only_email["access_token"]).get_json()
    assert info["email"] == "alice@example.com" and info["email_verified"] is True
    assert "name" not in info and "given_name" not in info
    assert info["org_slug"] == "acme"
    profile = driver.tokens(rp, scope="openid profile")
    info = _info(client, profile["access_token"]).get_json()
    assert info["name"] == "Alice Martin" and "email" not in info


def test_sub_matches_the_id_token(client, driver, rp):
    from tests.http.helpers import decode

    tokens = driver.tokens(rp)
    info = _info(client, tokens["access_token"]).get_json()
    assert info["sub"] == decode(client, tokens["id_token"]).claims["sub"]


def test_claims_request_adds_individual_claims(client, factory, driver):
    factory.user(given_name="Alice")
    rp = factory.client()
    claims = json.dumps({"userinfo": {"given_name": {"essential": True}, "email": None}})
    tokens = driver.tokens(rp, scope="openid", claims=claims)
    info = _info(client, tokens["access_token"]).get_json()
    assert info["given_name"] == "Alice" and info["email"] == "alice@example.com"
    assert "family_name" not in info


def test_response_is_not_cached(client, driver, rp):
    response = _info(client, driver.tokens(rp)["access_token"])
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"


def test_no_token_is_401_with_a_challenge(client):
    response = client.get("/oauth/userinfo")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("token", [
    "garbage", "a.b.c", "..", "x" * 10_000, "é.é.é",
    "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.eyJzdWIiOiJ4IiwianRpIjoieCJ9.",
])
def test_malformed_bearer_is_invalid_token(client, rp, token):
    _invalid_token(_info(client, token))


def test_unsigned_copy_of_a_real_token_is_invalid(client, driver, rp):
    real = driver.tokens(rp)["access_token"]
    header, payload, _ = real.split(".")
    none = base64.urlsafe_b64encode(b'{"alg":"none","typ":"at+jwt"}').rstrip(b"=").decode()
    _invalid_token(_info(client, f"{none}.{payload}."))
    _invalid_token(_info(client, f"{header}.{payload}."))
    tampered = payload[:-4] + ("AAAA" if payload[-4:] != "AAAA" else "BBBB")
    _invalid_token(_info(client, f"{header}.{tampered}.{real.split('.')[2]}"))


def test_token_signed_by_someone_else_is_invalid(app, client, driver, rp):
    real = driver.tokens(rp)["access_token"]
    claims = json.loads(base64.urlsafe_b64decode(real.split(".")[1] + "=="))
    kid = json.loads(base64.urlsafe_b64decode(real.split(".")[0] + "=="))["kid"]
    forged = jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": kid}, claims,
                        ECKey.generate_key("P-256", private=True))
    _invalid_token(_info(client, forged))


def test_id_token_is_not_an_access_token(client, driver, rp):
    _invalid_token(_info(client, driver.tokens(rp)["id_token"]))


def test_expired_token_is_invalid(app, client, driver, rp, clock):
    token = driver.tokens(rp)["access_token"]
    clock.advance(app.config["IDP_ACCESS_TOKEN_TTL"] + 1)
    _invalid_token(_info(client, token))


def test_token_of_a_disabled_user_is_invalid(client, driver, rp, alice):
    token = driver.tokens(rp)["access_token"]
    alice.active = False
    db.session.commit()
    _invalid_token(_info(client, token))


def test_token_without_openid_is_insufficient_scope(client, driver, rp):
    token = driver.tokens(rp, scope="email")["access_token"]
    response = _info(client, token)
    assert response.status_code == 403 and response.get_json()["error"] == "insufficient_scope"


def test_token_in_the_body_works_and_twice_is_refused(client, driver, rp):
    token = driver.tokens(rp)["access_token"]
    assert client.post("/oauth/userinfo", data={"access_token": token}).status_code == 200
    both = client.post("/oauth/userinfo", data={"access_token": token}, headers=bearer(token))
    assert both.status_code == 400 and both.get_json()["error"] == "invalid_request"


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Bearer ", "Token x", "bearer"])
def test_other_schemes_are_invalid_request(client, header):
    response = client.get("/oauth/userinfo", headers={"Authorization": header})
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_issued_at_is_not_in_the_future(client, driver, rp):
    from tests.http.helpers import decode

    claims = decode(client, driver.tokens(rp)["access_token"]).claims
    assert claims["iat"] <= time.time() + 1 < claims["exp"]
