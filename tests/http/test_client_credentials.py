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


def test_client_token_writes_no_row_and_revocation_lists_its_jti(app, client, factory, rp):
    import time

    from idp.extensions import db
    from idp.models import RevokedJti, Token

    with app.app_context():
        rows_before = db.session.query(Token).count()
    body = _cc(client, rp, scope="email").get_json()
    claims = decode(client, body["access_token"]).claims
    auth = basic_auth(rp.client_id, rp.client_secret)
    with app.app_context():
        assert db.session.query(Token).count() == rows_before  # nothing stored per grant
    seen = client.post("/oauth/introspect", data={"token": body["access_token"]},
                       headers=auth).get_json()
    assert seen == {"active": True, "client_id": rp.client_id, "scope": "email",
                    "token_type": "Bearer", "exp": claims["exp"], "iat": claims["iat"],
                    "iss": app.config["IDP_ISSUER"], "jti": claims["jti"]}
    # Another client can neither see nor revoke it.
    other = factory.client(grant_types=["client_credentials"])
    other_auth = basic_auth(other.client_id, other.client_secret)
    assert client.post("/oauth/introspect", data={"token": body["access_token"]},
                       headers=other_auth).get_json() == {"active": False}
    assert client.post("/oauth/revoke", data={"token": body["access_token"]},
                       headers=other_auth).status_code == 200
    assert client.post("/oauth/introspect", data={"token": body["access_token"]},
                       headers=auth).get_json()["active"] is True
    # Its own client revokes it: the jti is listed until the token's exp, twice is fine.
    for _ in range(2):
        assert client.post("/oauth/revoke", data={"token": body["access_token"],
                                                  "token_type_hint": "access_token"},
                           headers=auth).status_code == 200
    assert client.post("/oauth/introspect", data={"token": body["access_token"]},
                       headers=auth).get_json() == {"active": False}
    with app.app_context():
        listed = db.session.get(RevokedJti, claims["jti"])
        assert listed is not None and listed.expires_at == claims["exp"] > time.time()
    # Other tokens of the same client stay active.
    fresh = _cc(client, rp).get_json()["access_token"]
    assert client.post("/oauth/introspect", data={"token": fresh},
                       headers=auth).get_json()["active"] is True


def test_a_user_token_without_its_row_is_not_active(app, client, driver, rp):
    from idp.extensions import db
    from idp.models import Token

    tokens = driver.tokens(rp)
    with app.app_context():
        db.session.query(Token).delete()
        db.session.commit()
    auth = basic_auth(rp.client_id, rp.client_secret)
    assert client.post("/oauth/introspect", data={"token": tokens["access_token"]},
                       headers=auth).get_json() == {"active": False}
    assert client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code == 401


def test_machine_endpoints_never_open_the_browser_session(app, client, rp, monkeypatch):
    from idp.services.sessions import DatabaseSessionInterface

    def refuse(*args, **kwargs):
        raise AssertionError("a machine endpoint opened or saved the browser session")

    monkeypatch.setattr(DatabaseSessionInterface, "open_session", refuse)
    monkeypatch.setattr(DatabaseSessionInterface, "save_session", refuse)
    client.set_cookie(app.config.get("SESSION_COOKIE_NAME", "session"), "x" * 40)
    token = _cc(client, rp).get_json()["access_token"]
    auth = basic_auth(rp.client_id, rp.client_secret)
    assert client.post("/oauth/introspect", data={"token": token},
                       headers=auth).get_json()["active"] is True
    assert client.get("/oauth/userinfo", headers=bearer(token)).status_code == 403
    assert client.post("/oauth/revoke", data={"token": token}, headers=auth).status_code == 200
    assert client.get("/.well-known/openid-configuration").status_code == 200
    response = _cc(client, rp)
    assert response.status_code == 200 and "Set-Cookie" not in response.headers
