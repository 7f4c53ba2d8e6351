"""Refresh tokens (RFC 6749 6, RFC 9700 4.14): rotated at each use, a replayed one
kills the whole family, bound to their client and scope, idle and absolute lifetimes."""

from __future__ import annotations

import pytest

from tests.http.helpers import bearer, decode
from tests.support import basic_auth

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")


def _refresh(driver, rp, token, **extra):
    return driver.token(rp, grant_type="refresh_token", refresh_token=token, **extra)


def _active(client, rp, token) -> bool:
    return client.post("/oauth/introspect", data={"token": token},
                       headers=basic_auth(rp.client_id, rp.client_secret)).get_json()["active"]


def test_refresh_rotates(client, driver, rp):
    tokens = driver.tokens(rp)
    response = _refresh(driver, rp, tokens["refresh_token"])
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    fresh = response.get_json()
    assert fresh["refresh_token"] != tokens["refresh_token"]
    assert fresh["access_token"] != tokens["access_token"]
    assert not _active(client, rp, tokens["refresh_token"])
    assert _active(client, rp, fresh["refresh_token"])
    # The new access token carries the same subject and session.
    old, new = decode(client, tokens["access_token"]), decode(client, fresh["access_token"])
    assert new.claims["sub"] == old.claims["sub"] and new.claims["sid"] == old.claims["sid"]
    assert _refresh(driver, rp, fresh["refresh_token"]).status_code == 200


def test_replay_of_an_old_refresh_token_revokes_the_family(client, driver, rp):
    first = driver.tokens(rp)
    second = _refresh(driver, rp, first["refresh_token"]).get_json()
    third = _refresh(driver, rp, second["refresh_token"]).get_json()

    replay = _refresh(driver, rp, first["refresh_token"])
    assert replay.status_code == 400 and replay.get_json()["error"] == "invalid_grant"

    # The newest tokens died with the family.
    assert _refresh(driver, rp, third["refresh_token"]).get_json()["error"] == "invalid_grant"
    assert not _active(client, rp, third["access_token"])
    assert client.get("/oauth/userinfo", headers=bearer(third["access_token"])).status_code == 401


def test_replay_does_not_touch_other_authorizations(client, driver, rp):
    victim = driver.tokens(rp)
    other = driver.tokens(rp)
    _refresh(driver, rp, victim["refresh_token"])
    _refresh(driver, rp, victim["refresh_token"])
    assert _refresh(driver, rp, other["refresh_token"]).status_code == 200


def test_refresh_token_of_another_client_is_invalid_grant(client, factory, driver, rp):
    other = factory.client()
    tokens = driver.tokens(rp)
    response = _refresh(driver, other, tokens["refresh_token"])
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"
    # The rightful owner is unaffected.
    assert _refresh(driver, rp, tokens["refresh_token"]).status_code == 200


def test_more_scope_is_invalid_scope(driver, rp):
    tokens = driver.tokens(rp, scope="openid email")
    for scope in ("openid email profile", "openid email offline_access", "admin"):
        response = _refresh(driver, rp, tokens["refresh_token"], scope=scope)
        assert response.status_code == 400 and response.get_json()["error"] == "invalid_scope"
    # A refused request spends nothing.
    assert _refresh(driver, rp, tokens["refresh_token"]).status_code == 200


def test_less_scope_is_allowed_and_does_not_shrink_the_grant(client, driver, rp):
    tokens = driver.tokens(rp, scope="openid email")
    response = _refresh(driver, rp, tokens["refresh_token"], scope="email")
    assert response.status_code == 200
    assert decode(client, response.get_json()["access_token"]).claims["scope"] == "email"
    # RFC 6749 6: the new refresh token has the scope of the one it replaces.
    again = _refresh(driver, rp, response.get_json()["refresh_token"])
    assert again.status_code == 200, again.get_json()
    assert decode(client, again.get_json()["access_token"]).claims["scope"] == "openid email"


@pytest.mark.parametrize("form,error", [
    ({}, "invalid_request"),
    ({"refresh_token": ""}, "invalid_grant"),
    ({"refresh_token": "nope"}, "invalid_grant"),
    ({"refresh_token": "x" * 10_000}, "invalid_grant"),
])
def test_bad_refresh_requests(driver, rp, form, error):
    response = driver.token(rp, grant_type="refresh_token", **form)
    assert response.status_code == 400 and response.get_json()["error"] == error


def test_an_access_token_is_not_a_refresh_token(driver, rp):
    tokens = driver.tokens(rp)
    assert _refresh(driver, rp, tokens["access_token"]).get_json()["error"] == "invalid_grant"


def test_disabled_user_cannot_refresh(driver, rp, alice):
    from idp.extensions import db

    tokens = driver.tokens(rp)
    alice.active = False
    db.session.commit()
    assert _refresh(driver, rp, tokens["refresh_token"]).get_json()["error"] == "invalid_grant"


def test_idle_lifetime(app, driver, rp, clock, monkeypatch):
    monkeypatch.setitem(app.config, "IDP_REFRESH_IDLE_TTL", 100)
    monkeypatch.setitem(app.config, "IDP_REFRESH_ABSOLUTE_TTL", 10_000)
    tokens = driver.tokens(rp)
    clock.advance(90)
    used = _refresh(driver, rp, tokens["refresh_token"])
    assert used.status_code == 200  # each use opens a new idle window...
    clock.advance(90)
    again = _refresh(driver, rp, used.get_json()["refresh_token"])
    assert again.status_code == 200
    clock.advance(101)  # ...and a token left unused longer than that is dead
    late = _refresh(driver, rp, again.get_json()["refresh_token"])
    assert late.status_code == 400 and late.get_json()["error"] == "invalid_grant"


def test_absolute_lifetime(app, driver, rp, clock, monkeypatch):
    monkeypatch.setitem(app.config, "IDP_REFRESH_IDLE_TTL", 100)
    monkeypatch.setitem(app.config, "IDP_REFRESH_ABSOLUTE_TTL", 150)
    tokens = driver.tokens(rp)
    clock.advance(80)
    used = _refresh(driver, rp, tokens["refresh_token"])
    assert used.status_code == 200
    assert used.get_json()["refresh_token"]
    clock.advance(80)  # 160 s after the authorization: within idle, past absolute
    late = _refresh(driver, rp, used.get_json()["refresh_token"])
    assert late.status_code == 400 and late.get_json()["error"] == "invalid_grant"


def test_public_client_refreshes_without_secret(driver, native):
    tokens = driver.tokens(native, scope="openid")
    response = driver.token(native, auth="none", grant_type="refresh_token",
                            refresh_token=tokens["refresh_token"])
    assert response.status_code == 200, response.get_json()


def test_concurrent_refreshes_succeed_once_and_kill_the_family(client, driver, rp, live_server):
    import threading

    import requests

    tokens = driver.tokens(rp)
    url = live_server.url.replace("localhost", "127.0.0.1") + "/oauth/token"
    barrier = threading.Barrier(6)
    responses = []

    def refresh():
        barrier.wait()
        responses.append(requests.post(url, timeout=30, auth=(rp.client_id, rp.client_secret),
                                       data={"grant_type": "refresh_token",
                                             "refresh_token": tokens["refresh_token"]}))

    threads = [threading.Thread(target=refresh) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [400] * 5, [(r.status_code, r.text[:200]) for r in responses]
    assert {r.json()["error"] for r in responses if r.status_code == 400} == {"invalid_grant"}
    winner = next(r.json() for r in responses if r.status_code == 200)
    assert not _active(client, rp, winner["refresh_token"])
