"""Browser-facing protections: security headers, the session cookie, CSRF on the login
form, and a login failure that says nothing about why (OWASP ASVS V3, V6, V7)."""

from __future__ import annotations

import re

import pytest

from tests.support import csrf_of, pkce_pair

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")


def _pages(client, driver, rp):
    _, challenge = pkce_pair()
    login = driver.follow(driver.authorize(rp, code_challenge=challenge,
                                           code_challenge_method="S256"))
    return {
        "login": login,
        "home": client.get("/"),
        "error": client.get("/oauth/authorize", query_string={"client_id": "nobody"}),
        "not_found": client.get("/no-such-page"),
        "logged_out": client.get("/logout"),
    }


def _csp(response) -> dict:
    policy = response.headers["Content-Security-Policy"]
    directives = {}
    for part in policy.split(";"):
        name, _, value = part.strip().partition(" ")
        directives[name] = value
    return directives


def test_every_page_has_the_security_headers(client, driver, rp):
    for name, response in _pages(client, driver, rp).items():
        assert response.mimetype == "text/html", name
        csp = _csp(response)
        assert csp["frame-ancestors"] == "'none'", name
        assert re.search(r"'nonce-[A-Za-z0-9_-]{16,}'", csp["script-src"]), name
        assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"], name
        assert response.headers["X-Content-Type-Options"] == "nosniff", name
        assert response.headers["Referrer-Policy"] == "no-referrer", name


def test_csp_nonce_is_fresh_per_response(client, driver, rp):
    nonces = {re.search(r"'nonce-([^']+)'", client.get("/").headers["Content-Security-Policy"])
              .group(1) for _ in range(3)}
    assert len(nonces) == 3


def test_inline_scripts_carry_the_nonce(client, driver, rp):
    driver.sign_in()
    _, challenge = pkce_pair()
    page = driver.authorize(rp, response_mode="form_post", code_challenge=challenge,
                            code_challenge_method="S256")
    nonce = re.search(r"'nonce-([^']+)'", page.headers["Content-Security-Policy"]).group(1)
    scripts = re.findall(r"<script([^>]*)>", page.text)
    assert scripts and all(f'nonce="{nonce}"' in attrs for attrs in scripts)


def test_machine_endpoints_are_not_cached(client, rp):
    assert client.post("/oauth/token", data={}).headers["Cache-Control"] == "no-store"
    assert client.get("/oauth/userinfo").headers["Cache-Control"] == "no-store"


def _cookie(response, name="idp_session"):
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith(name + "="):
            return header
    return None


def test_session_cookie_attributes(client, driver, rp):
    response = driver.sign_in()
    cookie = _cookie(response)
    assert cookie, response.headers.getlist("Set-Cookie")
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert "httponly" in attributes
    assert "samesite=lax" in cookie.lower()
    assert "path=/" in cookie.lower()
    assert "domain" not in attributes


def test_session_id_rotates_at_login(client, driver, rp):
    _, challenge = pkce_pair()
    start = driver.authorize(rp, code_challenge=challenge, code_challenge_method="S256")
    before = client.get_cookie("idp_session")
    assert before is not None, "the flow lives in a session before login"
    done = driver.login(start)
    assert done.status_code == 303
    after = client.get_cookie("idp_session")
    assert after is not None and after.value != before.value
    # The pre-login id is dead: a fixated cookie does not carry the login.
    from tests.support import Driver

    fixated = Driver(client.application, client.application.test_client())
    fixated.http.set_cookie("idp_session", before.value)
    probe = fixated.authorize(rp, prompt="none", code_challenge=challenge,
                              code_challenge_method="S256")
    assert "error=login_required" in probe.headers["Location"]


def test_login_post_requires_csrf(client, driver, rp):
    client.get("/login")
    for data in ({"email": "alice@example.com", "password": "Correct-Horse-9"},
                 {"email": "alice@example.com", "password": "Correct-Horse-9",
                  "csrf_token": "forged"}):
        response = client.post("/login", data=data)
        assert response.status_code == 400
        assert "Location" not in response.headers
    _, challenge = pkce_pair()
    probe = driver.authorize(rp, prompt="none", code_challenge=challenge,
                             code_challenge_method="S256")
    assert "error=login_required" in probe.headers["Location"]


def test_csrf_token_of_another_session_is_refused(app, client, rp):
    other = app.test_client()
    token = csrf_of(other.get("/login").text)
    client.get("/login")
    response = client.post("/login", data={"email": "alice@example.com",
                                           "password": "Correct-Horse-9", "csrf_token": token})
    assert response.status_code == 400


def _normalised(text: str, email: str) -> str:
    text = re.sub(r'name="csrf_token" value="[^"]+"', 'name="csrf_token" value=""', text)
    text = re.sub(r'nonce="[^"]+"', 'nonce=""', text)  # per response (the passkey script)
    return text.replace(email, "EMAIL")


def _failed_login(app, email, password):
    fresh = app.test_client()
    page = fresh.get("/login")
    response = fresh.post("/login", data={"email": email, "password": password,
                                          "csrf_token": csrf_of(page.text)})
    return response.status_code, _normalised(response.text, email)


def test_every_failed_login_looks_the_same(app, factory, alice):
    factory.user("disabled@example.com", active=False)
    factory.user("unverified@example.com", email_verified=False)
    outcomes = {
        "unknown": _failed_login(app, "nobody@example.com", "Correct-Horse-9"),
        "wrong password": _failed_login(app, "alice@example.com", "Wrong-Horse-9"),
        "disabled": _failed_login(app, "disabled@example.com", "Correct-Horse-9"),
        "unverified": _failed_login(app, "unverified@example.com", "Correct-Horse-9"),
    }
    statuses = {status for status, _ in outcomes.values()}
    bodies = {body for _, body in outcomes.values()}
    assert statuses == {400}, outcomes
    assert len(bodies) == 1, list(outcomes)
    assert _failed_login(app, "alice@example.com", "Correct-Horse-9")[0] == 303  # the control


def test_the_right_password_of_a_disabled_user_gets_no_session(app, client, driver, factory, rp):
    factory.user("disabled@example.com", active=False)
    page = client.get("/login")
    response = client.post("/login", data={"email": "disabled@example.com",
                                           "password": "Correct-Horse-9",
                                           "csrf_token": csrf_of(page.text)})
    assert response.status_code == 400


def test_https_deployment_uses_a_host_prefixed_secure_cookie(app, client, driver, rp,
                                                             monkeypatch):
    monkeypatch.setitem(app.config, "IDP_HTTPS", True)
    response = driver.sign_in()
    cookie = _cookie(response, "__Host-idp_session")
    assert cookie, response.headers.getlist("Set-Cookie")
    attributes = [part.strip().lower() for part in cookie.split(";")[1:]]
    assert "secure" in attributes and "httponly" in attributes and "path=/" in attributes
    assert not [a for a in attributes if a.startswith("domain")]
    assert _cookie(response) is None  # no unprefixed twin
    assert "max-age=31536000" in client.get("/").headers["Strict-Transport-Security"]


def test_session_dies_when_the_user_is_disabled(client, driver, rp, alice):
    from idp.extensions import db

    driver.sign_in()
    alice.active = False
    db.session.commit()
    _, challenge = pkce_pair()
    probe = driver.authorize(rp, prompt="none", code_challenge=challenge,
                             code_challenge_method="S256")
    assert "error=login_required" in probe.headers["Location"]
    alice.active = True
    db.session.commit()
    probe = driver.authorize(rp, prompt="none", code_challenge=challenge,
                             code_challenge_method="S256")
    assert "error=login_required" in probe.headers["Location"], "re-enabling revives nothing"
