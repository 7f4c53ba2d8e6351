"""The client credentials grant (RFC 6749 4.4): a token for the client itself."""

from __future__ import annotations

import pytest

from tests.http.helpers import bearer, decode
from tests.support import basic_auth

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")


def _cc(client, rp, **form):
    return client.post("/oauth/token", data={"grant_type": "client_credentials", **form},
                       headers=basic_auth(rp.client_id, rp.client_secret))


def test_client_gets_a_token_for_itself(app, client, rp):
    response = _cc(client, rp, scope="email")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["token_type"] == "Bearer" and body["scope"] == "email"
    assert "refresh_token" not in body and "id_token" not in body
    token = decode(client, body["access_token"])
    assert token.header["typ"] == "at+jwt"
    assert token.claims["sub"] == rp.client_id == token.claims["client_id"]
    assert token.claims["iss"] == app.config["IDP_ISSUER"]


def test_token_without_scope(client, rp):
    response = _cc(client, rp)
    assert response.status_code == 200 and response.get_json()["scope"] == ""


def test_unknown_scope_is_invalid_scope(client, rp):
    response = _cc(client, rp, scope="email admin")
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_scope"


def test_client_not_registered_for_the_grant_is_unauthorized(client, factory, alice):
    rp = factory.client(grant_types=["authorization_code"])
    response = _cc(client, rp)
    assert response.status_code == 400 and response.get_json()["error"] == "unauthorized_client"


def test_client_token_opens_no_userinfo(client, rp):
    token = _cc(client, rp, scope="openid email").get_json()["access_token"]
    response = client.get("/oauth/userinfo", headers=bearer(token))
    assert response.status_code == 403
    assert response.get_json()["error"] == "insufficient_scope"


def test_client_token_is_active_at_introspection(client, rp):
    token = _cc(client, rp).get_json()["access_token"]
    body = client.post("/oauth/introspect", data={"token": token},
                       headers=basic_auth(rp.client_id, rp.client_secret)).get_json()
    assert body["active"] is True and body["client_id"] == rp.client_id


@pytest.mark.parametrize("name", ["scope", "grant_type"])
def test_repeated_parameter_is_invalid_request(client, rp, name):
    from werkzeug.datastructures import MultiDict

    form = MultiDict([("grant_type", "client_credentials"), ("scope", "email"),
                      (name, "client_credentials" if name == "grant_type" else "email")])
    response = client.post("/oauth/token", data=form,
                           headers=basic_auth(rp.client_id, rp.client_secret))
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"
