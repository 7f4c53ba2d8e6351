"""Consent: third-party clients ask, first-party ones do not; the account page lists what
was allowed and revokes it (with that client's tokens), behind CSRF and a confirmation."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import func, select

from idp.extensions import db
from idp.models import Consent
from tests.http.helpers import assert_error_page
from tests.support import basic_auth, csrf_of, pkce_pair, query_of

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")


@pytest.fixture
def third_party(factory, alice):
    return factory.client(third_party=True, redirect_uri="https://partner.example.com/cb")


def _consents() -> int:
    return db.session.scalar(select(func.count()).select_from(Consent))


def _authorize(driver, rp, verifier_box: list | None = None, **params):
    verifier, challenge = pkce_pair()
    if verifier_box is not None:
        verifier_box.append(verifier)
    return driver.authorize(rp, code_challenge=challenge, code_challenge_method="S256",
                            **params)


def _consent_page(driver, response):
    page = driver.follow(response)
    assert page.status_code == 200 and 'value="allow"' in page.text, page.status_code
    return page


def _post_consent(driver, page, decision="allow"):
    action = html.unescape(re.search(r'action="([^"]*consent[^"]*)"', page.text).group(1))
    return driver.http.post(action, data={"decision": decision,
                                          "csrf_token": csrf_of(page.text)})


def _code(response, rp) -> str:
    assert response.status_code in (302, 303), response.status_code
    location = response.headers["Location"]
    assert location.startswith(rp.redirect_uri + "?"), location
    return query_of(location)["code"]


def _tokens(driver, rp) -> dict:
    """Sign in (when needed), allow, redeem: the token response."""
    box: list = []
    response = _authorize(driver, rp, box)
    if response.headers["Location"].startswith("/login"):
        response = driver.login(response)
    page = driver.follow(response)
    if page.status_code == 200:
        page = driver.follow(_post_consent(driver, page))
    tokens = driver.exchange(rp, {"code": _code(page, rp), "_verifier": box[0]})
    assert tokens.status_code == 200, tokens.get_json()
    return tokens.get_json()


def _refresh(driver, rp, token):
    return driver.token(rp, grant_type="refresh_token", refresh_token=token)


def _revoke_link(page) -> str:
    return html.unescape(re.search(r'href="(/account/consents/\d+/revoke)"', page.text).group(1))


def test_a_first_party_client_skips_consent(driver, rp):
    driver.sign_in()
    _code(_authorize(driver, rp), rp)
    assert _consents() == 0


def test_a_third_party_client_asks_once_per_scope_set(driver, third_party):
    driver.sign_in()
    page = _consent_page(driver, _authorize(driver, third_party, scope="openid email"))
    _code(driver.follow(_post_consent(driver, page)), third_party)
    _code(_authorize(driver, third_party, scope="openid email"), third_party)  # remembered
    _consent_page(driver, _authorize(driver, third_party, scope="openid email profile"))


def test_a_replayed_consent_post_is_refused(driver, third_party):
    driver.sign_in()
    page = _consent_page(driver, _authorize(driver, third_party))
    _code(driver.follow(_post_consent(driver, page)), third_party)
    replay = _post_consent(driver, page)
    assert_error_page(replay, 400)
    replay_deny = _post_consent(driver, page, "deny")
    assert_error_page(replay_deny, 400)
    assert _consents() == 1


def test_the_account_page_lists_consents(driver, third_party, client):
    _tokens(driver, third_party)
    profile = client.get("/account")
    assert 'href="/account/consents"' in profile.text
    page = client.get("/account/consents")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert "Test portal" in page.text and "See your email address" in page.text
    assert "/account/consents/" in page.text


def test_revoking_forgets_the_consent_and_kills_the_refresh_token(driver, third_party,
                                                                   client, rp):
    tokens = _tokens(driver, third_party)
    first_party = _tokens(driver, rp)  # another client's tokens are left alone
    page = client.get("/account/consents")
    confirm = client.get(_revoke_link(page))
    assert confirm.status_code == 200 and "Revoke access for Test portal?" in confirm.text
    assert _consents() == 1  # the GET only asks

    done = client.post(_revoke_link(page), data={"csrf_token": csrf_of(confirm.text)})
    assert done.status_code == 303 and done.headers["Location"].endswith("?revoked=1")
    assert "Access was revoked." in client.get(done.headers["Location"]).text
    assert _consents() == 0
    refreshed = _refresh(driver, third_party, tokens["refresh_token"])
    assert refreshed.status_code == 400 and refreshed.get_json()["error"] == "invalid_grant"
    introspected = client.post("/oauth/introspect", data={"token": tokens["access_token"]},
                               headers=basic_auth(third_party.client_id,
                                                  third_party.client_secret))
    assert introspected.get_json()["active"] is False
    assert _refresh(driver, rp, first_party["refresh_token"]).status_code == 200
    # Asked again afterwards.
    _consent_page(driver, _authorize(driver, third_party))


def test_revoking_needs_the_csrf_token_and_a_post(driver, third_party, client):
    tokens = _tokens(driver, third_party)
    link = _revoke_link(client.get("/account/consents"))
    forged = client.post(link)
    assert forged.status_code == 400
    assert _consents() == 1
    assert _refresh(driver, third_party, tokens["refresh_token"]).status_code == 200


def test_another_persons_consent_is_not_found(driver, third_party, client, factory):
    _tokens(driver, third_party)
    link = _revoke_link(client.get("/account/consents"))
    factory.user("bob@example.com")
    driver.sign_in("bob@example.com")
    assert client.get("/account/consents").text.count("/revoke") == 0
    assert client.get(link).status_code == 404
    token = csrf_of(client.get("/account").text)
    assert client.post(link, data={"csrf_token": token}).status_code == 404
    assert client.post("/account/consents/abc/revoke",
                       data={"csrf_token": token}).status_code == 404
    assert _consents() == 1


@pytest.mark.parametrize("bad_id", ["%C2%B2", "99999999999999999999999", "2147483648", "0"])
def test_a_malformed_consent_id_is_not_found_not_a_500(driver, third_party, client, bad_id):
    """"²" passes isdigit() but not int(); a number past the column's range overflows."""
    _tokens(driver, third_party)
    token = csrf_of(client.get("/account").text)
    assert client.get(f"/account/consents/{bad_id}/revoke").status_code == 404
    assert client.post(f"/account/consents/{bad_id}/revoke",
                       data={"csrf_token": token}).status_code == 404
    assert _consents() == 1


def test_the_consents_page_needs_a_signed_in_person(client):
    response = client.get("/account/consents")
    assert response.status_code == 303 and response.headers["Location"].startswith("/login")
    response = client.get("/account/consents/1/revoke")
    assert response.status_code == 303 and response.headers["Location"].startswith("/login")


def test_the_consents_page_in_french(driver, third_party, client):
    _tokens(driver, third_party)
    page = client.get("/account/consents", headers={"Accept-Language": "fr"})
    assert "Applications autorisées" in page.text and "Révoquer l’accès de Test portal" in page.text
