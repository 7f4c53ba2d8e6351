"""The token endpoint for authorization codes (RFC 6749 4.1.3, RFC 9700 4.2.4).

A code works once, for its client and redirect URI, for ten minutes; a second use
(even a concurrent one) fails and kills the tokens of the first.
"""

from __future__ import annotations

import threading

import pytest
import requests
from sqlalchemy import select, update
from werkzeug.datastructures import MultiDict

from idp.extensions import db
from idp.models import Grant
from tests.http.helpers import bearer, decode, introspect
from tests.support import basic_auth

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")


def _error(response, status=400):
    assert response.status_code == status, (response.status_code, response.get_json())
    assert response.headers["Cache-Control"] == "no-store"
    return response.get_json()["error"]


def test_success_response_shape(app, client, driver, rp):
    result = driver.code_flow(rp, scope="openid email")
    assert result["iss"] == app.config["IDP_ISSUER"]  # RFC 9207, on success too
    response = driver.exchange(rp, result)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    body = response.get_json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    assert body["scope"] == "openid email"
    assert {"access_token", "refresh_token", "id_token"} <= set(body)


def test_error_responses_are_not_cached(driver, rp):
    response = driver.token(rp, grant_type="authorization_code", code="nope",
                            redirect_uri=rp.redirect_uri)
    assert _error(response) == "invalid_grant"


@pytest.mark.parametrize("form,error", [
    ({"grant_type": None}, "invalid_request"),
    ({"grant_type": ""}, "invalid_request"),
    ({"grant_type": "password", "username": "alice@example.com", "password": "x"},
     "unsupported_grant_type"),
    ({"grant_type": "implicit"}, "unsupported_grant_type"),
    ({"grant_type": "urn:ietf:params:oauth:grant-type:device_code"}, "unsupported_grant_type"),
    ({"grant_type": 'pass"word\u00e9'}, "unsupported_grant_type"),
    ({"code": None}, "invalid_request"),
    ({"code": ""}, "invalid_grant"),
    ({"code": "x" * 10_000}, "invalid_grant"),
    ({"redirect_uri": None}, "invalid_grant"),
    ({"redirect_uri": "https://app.example.com/cb/"}, "invalid_grant"),
    ({"redirect_uri": "https://evil.example.com/cb"}, "invalid_grant"),
])
def test_bad_token_requests(driver, rp, form, error):
    result = driver.code_flow(rp)
    fields = {"grant_type": "authorization_code", "code": result["code"],
              "redirect_uri": rp.redirect_uri, "code_verifier": result["_verifier"], **form}
    response = driver.token(rp, **{k: v for k, v in fields.items() if v is not None})
    assert _error(response) == error


@pytest.mark.parametrize("name", ["grant_type", "code", "redirect_uri", "code_verifier",
                                  "client_id"])
def test_repeated_parameter_is_invalid_request(client, driver, rp, name):
    result = driver.code_flow(rp)
    form = {"grant_type": "authorization_code", "code": result["code"],
            "redirect_uri": rp.redirect_uri, "code_verifier": result["_verifier"],
            "client_id": rp.client_id}
    body = MultiDict(list(form.items()) + [(name, form[name])])
    response = client.post("/oauth/token", data=body,
                           headers=basic_auth(rp.client_id, rp.client_secret))
    assert _error(response) == "invalid_request"
    # Nothing was spent: the code still works.
    assert driver.exchange(rp, result).status_code == 200


def test_credentials_in_the_query_string_are_refused(client, driver, rp):
    result = driver.code_flow(rp)
    response = client.post(
        "/oauth/token", query_string={"client_secret": rp.client_secret},
        data={"grant_type": "authorization_code", "code": result["code"],
              "redirect_uri": rp.redirect_uri, "code_verifier": result["_verifier"],
              "client_id": rp.client_id})
    assert _error(response) == "invalid_request"


def test_get_is_not_allowed(client):
    response = client.get("/oauth/token", query_string={"grant_type": "authorization_code"})
    assert response.status_code == 405


def test_code_expires_after_ten_minutes(app, driver, rp, clock):
    assert app.config["IDP_CODE_TTL"] <= 600
    result = driver.code_flow(rp)
    clock.advance(app.config["IDP_CODE_TTL"] + 1)
    assert _error(driver.exchange(rp, result)) == "invalid_grant"


def test_code_expired_in_the_database_is_refused(driver, rp):
    result = driver.code_flow(rp)
    db.session.execute(update(Grant).values(code_expires_at=Grant.created_at))
    db.session.commit()
    assert _error(driver.exchange(rp, result)) == "invalid_grant"


def test_code_just_before_expiry_works(app, driver, rp, clock):
    result = driver.code_flow(rp)
    clock.advance(app.config["IDP_CODE_TTL"] - 5)
    assert driver.exchange(rp, result).status_code == 200


def test_reused_code_fails_and_kills_the_first_tokens(client, driver, rp):
    result = driver.code_flow(rp)
    first = driver.exchange(rp, result)
    assert first.status_code == 200
    tokens = first.get_json()
    assert introspect(client, rp, tokens["access_token"]).get_json()["active"] is True

    second = driver.exchange(rp, result)
    assert _error(second) == "invalid_grant"

    assert introspect(client, rp, tokens["access_token"]).get_json() == {"active": False}
    assert introspect(client, rp, tokens["refresh_token"]).get_json() == {"active": False}
    assert client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code == 401
    refresh = driver.token(rp, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert _error(refresh) == "invalid_grant"


def test_code_redeemed_concurrently_succeeds_once(app, client, driver, rp, live_server):
    result = driver.code_flow(rp)
    url = live_server.url.replace("localhost", "127.0.0.1") + "/oauth/token"
    form = {"grant_type": "authorization_code", "code": result["code"],
            "redirect_uri": rp.redirect_uri, "code_verifier": result["_verifier"]}
    barrier = threading.Barrier(8)
    responses = []

    def redeem():
        barrier.wait()
        responses.append(requests.post(url, data=form, auth=(rp.client_id, rp.client_secret),
                                       timeout=30))

    threads = [threading.Thread(target=redeem) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [400] * 7, [(r.status_code, r.text[:200]) for r in responses]
    assert {r.json()["error"] for r in responses if r.status_code == 400} == {"invalid_grant"}
    winner = next(r.json() for r in responses if r.status_code == 200)
    # The code was replayed: the winner's tokens die too.
    assert introspect(client, rp, winner["access_token"]).get_json() == {"active": False}


def test_code_of_another_client_is_invalid_grant(factory, driver, rp):
    other = factory.client()
    result = driver.code_flow(rp)
    stolen = driver.token(other, grant_type="authorization_code", code=result["code"],
                          redirect_uri=rp.redirect_uri, code_verifier=result["_verifier"])
    assert _error(stolen) == "invalid_grant"


def test_public_client_cannot_redeem_a_confidential_clients_code(factory, driver, rp):
    public = factory.client(public=True, redirect_uri=rp.redirect_uri)
    result = driver.code_flow(rp)
    response = driver.token(public, auth="none", grant_type="authorization_code",
                            code=result["code"], redirect_uri=rp.redirect_uri,
                            code_verifier=result["_verifier"])
    assert _error(response) == "invalid_grant"


def test_confidential_client_must_authenticate(driver, rp):
    result = driver.code_flow(rp)
    response = driver.token(rp, auth="none", grant_type="authorization_code",
                            code=result["code"], redirect_uri=rp.redirect_uri,
                            code_verifier=result["_verifier"])
    assert _error(response, 401) == "invalid_client"


def test_client_without_the_grant_type_is_unauthorized(factory, driver, rp):
    result = driver.code_flow(rp)
    db_client = _client_row(rp.client_id)
    db_client.grant_types = ["client_credentials"]
    db.session.commit()
    assert _error(driver.exchange(rp, result)) == "unauthorized_client"


def test_disabled_user_gets_no_tokens(driver, rp, alice):
    result = driver.code_flow(rp)
    alice.active = False
    db.session.commit()
    assert _error(driver.exchange(rp, result)) == "invalid_grant"


def test_code_is_stored_hashed(driver, rp):
    result = driver.code_flow(rp)
    grant = db.session.scalar(select(Grant))
    assert grant.code_hash != result["code"] and result["code"] not in grant.code_hash


def test_no_refresh_token_without_the_refresh_grant(factory, driver, alice):
    rp = factory.client(grant_types=["authorization_code"])
    tokens = driver.tokens(rp)
    assert "refresh_token" not in tokens and "id_token" in tokens


def test_no_id_token_without_openid(client, driver, rp):
    tokens = driver.tokens(rp, scope="email")
    assert "id_token" not in tokens
    assert decode(client, tokens["access_token"]).claims["scope"] == "email"


def _client_row(client_id):
    from idp.models import Client

    return db.session.scalar(select(Client).where(Client.client_id == client_id))
