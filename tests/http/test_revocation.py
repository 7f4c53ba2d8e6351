"""Token revocation (RFC 7009): a client revokes its own tokens; a refresh token takes
its whole family with it; anything else answers 200 and changes nothing."""

from __future__ import annotations

import pytest

from tests.http.helpers import bearer
from tests.support import basic_auth

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")


def _revoke(client, rp, token, **extra):
    headers = basic_auth(rp.client_id, rp.client_secret) if rp.client_secret else {}
    form = {"token": token, **extra}
    if not rp.client_secret:
        form["client_id"] = rp.client_id
    return client.post("/oauth/revoke", data=form, headers=headers)


def _active(client, rp, token) -> bool:
    return client.post("/oauth/introspect", data={"token": token},
                       headers=basic_auth(rp.client_id, rp.client_secret)).get_json()["active"]


def _refresh(driver, rp, token):
    return driver.token(rp, grant_type="refresh_token", refresh_token=token)


@pytest.mark.parametrize("hint", [None, "refresh_token", "access_token", "bogus"])
def test_revoking_the_refresh_token_ends_the_family(client, driver, rp, hint):
    tokens = driver.tokens(rp)
    extra = {"token_type_hint": hint} if hint else {}
    response = _revoke(client, rp, tokens["refresh_token"], **extra)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert _refresh(driver, rp, tokens["refresh_token"]).get_json()["error"] == "invalid_grant"
    assert not _active(client, rp, tokens["access_token"])
    assert client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code == 401


def test_revoking_a_rotated_familys_old_token_kills_the_newest(client, driver, rp):
    first = driver.tokens(rp)
    second = _refresh(driver, rp, first["refresh_token"]).get_json()
    assert _revoke(client, rp, second["refresh_token"]).status_code == 200
    assert not _active(client, rp, second["access_token"])
    assert not _active(client, rp, first["access_token"])


@pytest.mark.parametrize("hint", [None, "access_token", "refresh_token"])
def test_revoking_the_access_token(client, driver, rp, hint):
    tokens = driver.tokens(rp)
    extra = {"token_type_hint": hint} if hint else {}
    assert _revoke(client, rp, tokens["access_token"], **extra).status_code == 200
    assert client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code == 401
    assert not _active(client, rp, tokens["access_token"])


def test_revoking_one_authorization_leaves_the_others(client, driver, rp):
    kept, revoked = driver.tokens(rp), driver.tokens(rp)
    _revoke(client, rp, revoked["refresh_token"])
    assert _active(client, rp, kept["access_token"])
    assert _refresh(driver, rp, kept["refresh_token"]).status_code == 200


def test_unknown_token_answers_200(client, rp):
    for token in ("nope", "a.b.c", "x" * 5000):
        assert _revoke(client, rp, token).status_code == 200


def test_another_clients_token_is_left_alone(client, factory, driver, rp):
    other = factory.client()
    tokens = driver.tokens(rp)
    assert _revoke(client, other, tokens["refresh_token"]).status_code == 200
    assert _revoke(client, other, tokens["access_token"]).status_code == 200
    assert _active(client, rp, tokens["access_token"])
    assert _refresh(driver, rp, tokens["refresh_token"]).status_code == 200


def test_missing_token_is_invalid_request(client, rp):
    response = client.post("/oauth/revoke", data={},
                           headers=basic_auth(rp.client_id, rp.client_secret))
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"


def test_bad_client_credentials_are_401(client, driver, rp):
    tokens = driver.tokens(rp)
    response = client.post("/oauth/revoke", data={"token": tokens["refresh_token"]},
                           headers=basic_auth(rp.client_id, "wrong"))
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert _active(client, rp, tokens["refresh_token"])


def test_public_client_revokes_its_own_tokens(client, driver, native):
    tokens = driver.tokens(native, scope="openid")
    assert _revoke(client, native, tokens["refresh_token"]).status_code == 200
    refresh = driver.token(native, auth="none", grant_type="refresh_token",
                           refresh_token=tokens["refresh_token"])
    assert refresh.get_json()["error"] == "invalid_grant"


def test_get_is_not_allowed(client):
    assert client.get("/oauth/revoke", query_string={"token": "x"}).status_code == 405
