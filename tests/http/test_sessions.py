"""Browser sessions: no database row until there is something to keep (issue 6, item 9).

Anonymous pages keep at most a CSRF token, in a signed cookie; a flow or a sign-in
moves the session to a row, which a pending flow keeps for IDP_FLOW_TTL only.
"""

from __future__ import annotations

import json

import pytest
from itsdangerous import URLSafeTimedSerializer

from idp.extensions import db
from idp.models import BrowserSession
from idp.services.sessions import COOKIE_NAME, SIGNING_SALT, _serializer
from tests.support import PASSWORD, csrf_of, pkce_pair

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")

FORM_PAGES = ["/login", "/password/forgot", "/t/acme/register", "/t/acme/login", "/signup"]
PLAIN_PAGES = ["/", "/.well-known/openid-configuration", "/.well-known/jwks.json",
               "/no-such-page", "/oauth/authorize", "/password/reset/done", "/healthz",
               "/readyz", "/t/nope/register"]


def _rows() -> int:
    db.session.rollback()  # see the rows the requests committed
    return db.session.query(BrowserSession).count()


def _set_cookies(response) -> list[str]:
    return response.headers.getlist("Set-Cookie")


def _start_flow(driver, rp):
    _, challenge = pkce_pair()
    return driver.authorize(rp, code_challenge=challenge, code_challenge_method="S256")


def test_anonymous_gets_store_no_session(app, ctx, factory):
    factory.tenant()
    for _ in range(5):
        fresh = app.test_client()
        for path in FORM_PAGES + PLAIN_PAGES:
            response = fresh.get(path)
            assert response.status_code < 500, path
        same = app.test_client()
        for path in FORM_PAGES * 3:
            same.get(path)
    assert _rows() == 0


def test_pages_without_a_form_set_no_cookie(app, ctx, factory):
    factory.tenant()
    for path in PLAIN_PAGES:
        response = app.test_client().get(path)
        assert _set_cookies(response) == [], path


def test_a_form_page_keeps_its_csrf_token_in_a_signed_cookie(app, ctx, factory):
    factory.tenant()
    client = app.test_client()
    first = client.get("/login")
    [cookie] = _set_cookies(first)
    assert cookie.startswith(f"{COOKIE_NAME}=")
    attributes = [part.strip().lower() for part in cookie.split(";")[1:]]
    assert "httponly" in attributes and "samesite=lax" in attributes and "path=/" in attributes
    value = client.get_cookie(COOKIE_NAME).value
    assert set(_serializer(app).loads(value)) == {"csrf_token"}
    # The next page reuses it: no new cookie, still no row.
    again = client.get("/password/forgot")
    assert _set_cookies(again) == [] and csrf_of(again.text) and _rows() == 0


def test_login_with_a_cookie_only_csrf_token_then_one_row(app, ctx, client, alice):
    page = client.get("/login")
    anonymous = client.get_cookie(COOKIE_NAME).value
    assert _rows() == 0
    response = client.post("/login", data={"email": alice.email, "password": PASSWORD,
                                           "csrf_token": csrf_of(page.text)})
    assert response.status_code == 303
    assert _rows() == 1
    row = db.session.query(BrowserSession).one()
    assert row.user_id == alice.id
    signed_in = client.get_cookie(COOKIE_NAME).value
    assert signed_in != anonymous and "." not in signed_in  # a random token, not data
    assert "Signed in as" in client.get("/").text


def test_csrf_token_from_another_browsers_cookie_is_refused(app, ctx, alice):
    attacker = app.test_client()
    token = csrf_of(attacker.get("/login").text)
    victim = app.test_client()
    victim.get("/login")
    response = victim.post("/login", data={"email": alice.email, "password": PASSWORD,
                                           "csrf_token": token})
    assert response.status_code == 400
    no_cookie = app.test_client()
    response = no_cookie.post("/login", data={"email": alice.email, "password": PASSWORD,
                                              "csrf_token": token})
    assert response.status_code == 400
    assert _rows() == 0


def test_a_flow_creates_one_row_that_expires_with_the_flow(app, ctx, client, driver, rp):
    started = _start_flow(driver, rp)
    assert started.headers["Location"].startswith("/login")
    assert _rows() == 1
    client.get(started.headers["Location"])  # the login page of the flow: the same row
    row = db.session.query(BrowserSession).one()
    assert row.user_id is None
    assert row.expires_at - row.created_at <= app.config["IDP_FLOW_TTL"] + 5
    done = driver.login(started)
    assert done.status_code == 303
    row = db.session.query(BrowserSession).one()  # rotated at login: still one row
    assert row.user_id is not None
    assert row.expires_at - row.created_at == app.config["IDP_SESSION_TTL"]


def test_purge_bounds_the_table_of_abandoned_flows(app, ctx, driver, rp, alice, clock):
    for _ in range(6):
        fresh = type(driver)(app, app.test_client())
        _start_flow(fresh, rp)
    driver.sign_in()
    assert _rows() == 7
    clock.advance(app.config["IDP_FLOW_TTL"] + 1)
    result = app.test_cli_runner().invoke(args=["idp", "purge"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["sessions"] == 6
    assert [row.user_id for row in db.session.query(BrowserSession)] == [alice.id]


def test_a_cookie_session_cannot_be_forged_into_a_signed_in_one(app, ctx, client, alice):
    def signed(key: str, data: dict) -> str:
        return URLSafeTimedSerializer(key, salt=SIGNING_SALT, signer_kwargs={
            "key_derivation": "hmac", "digest_method": "sha256"}).dumps(data)

    forged = {"uid": alice.id, "auth_time": 1, "amr": ["pwd"], "csrf_token": "x" * 40}
    for value in (signed("not-the-key", forged), _serializer(app).dumps(forged)):
        client.set_cookie(COOKIE_NAME, value)
        home = client.get("/")
        assert "Signed in as" not in home.text
    # Nor does a signed value reach the table as a session id.
    client.set_cookie(COOKIE_NAME, _serializer(app).dumps({"csrf_token": "y" * 40}))
    assert "Signed in as" not in client.get("/").text
    assert _rows() == 0


def test_logout_deletes_the_row(app, ctx, client, driver, alice):
    driver.sign_in()
    assert _rows() == 1
    home = client.get("/")
    response = client.post("/logout", data={"csrf_token": csrf_of(home.text),
                                            "decision": "logout"})
    assert response.status_code in (200, 303) and "Signed in as" not in response.text
    assert _rows() == 0
    assert "Signed in as" not in client.get("/").text


def test_https_cookie_session_is_host_prefixed_and_secure(app, ctx, client, monkeypatch):
    monkeypatch.setitem(app.config, "IDP_HTTPS", True)
    [cookie] = _set_cookies(client.get("/login"))
    assert cookie.startswith("__Host-idp_session=")
    attributes = [part.strip().lower() for part in cookie.split(";")[1:]]
    assert "secure" in attributes and "httponly" in attributes and "path=/" in attributes
    assert not [a for a in attributes if a.startswith("domain")]


def test_a_cookie_csrf_token_dies_with_the_session_lifetime(app, ctx, client, alice, clock):
    page = client.get("/login")
    clock.advance(app.config["IDP_SESSION_TTL"] + 1)
    response = client.post("/login", data={"email": alice.email, "password": PASSWORD,
                                           "csrf_token": csrf_of(page.text)})
    assert response.status_code == 400
    assert _rows() == 0
