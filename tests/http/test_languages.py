"""Languages over HTTP: the switcher, the precedence, emails in the person's language."""

from __future__ import annotations

import pytest

from idp.extensions import db
from idp.models import User
from tests import outbox
from tests.lifecycle import outbox as sent_messages
from tests.support import PASSWORD, csrf_of

ENGLISH = {"Accept-Language": "en-GB,en;q=0.9"}
FRENCH = {"Accept-Language": "fr-FR,fr;q=0.9"}


@pytest.fixture
def http(app):
    return outbox.isolated_client(app)


def switch(http, locale: str, next_path: str, headers=ENGLISH, page: str = "/login"):
    form = http.get(page, headers=headers)
    return http.post("/language", headers=headers, data={
        "locale": locale, "next": next_path, "csrf_token": csrf_of(form.text)})


def sign_in(http, email: str = "alice@example.com", headers=ENGLISH):
    page = http.get("/login", headers=headers)
    response = http.post("/login", headers=headers, data={
        "email": email, "password": PASSWORD, "csrf_token": csrf_of(page.text)})
    assert response.status_code == 303 and response.headers["Location"] == "/"


def test_every_page_has_the_switcher_with_the_current_language_marked(http, factory):
    factory.tenant("acme", "Acme Fleet")
    for path in ("/login", "/t/acme/", "/t/acme/register", "/password/forgot", "/"):
        html = http.get(path, headers=ENGLISH).text
        assert 'action="/language"' in html, path
        assert '<span class="current" lang="en" aria-current="true">English</span>' in html
        assert 'name="locale" value="fr" lang="fr"' in html and ">Français</button>" in html
        assert f'name="next" value="{path}"' in html


def test_the_switcher_keeps_the_language_for_the_session_and_goes_back(http, factory):
    factory.tenant("acme", "Acme Fleet")
    response = switch(http, "fr", "/t/acme/register?x=1")
    assert response.status_code == 303 and response.headers["Location"] == "/t/acme/register?x=1"
    for path in ("/t/acme/register", "/login", "/password/forgot"):
        page = http.get(path, headers=ENGLISH)  # the browser still prefers English
        assert 'lang="fr"' in page.text and 'aria-current="true">Français</span>' in page.text
    assert switch(http, "en", "/login", headers=ENGLISH).status_code == 303
    assert 'lang="en"' in http.get("/login", headers=FRENCH).text


def test_the_switchers_choice_beats_ui_locales(http, factory, alice_client):
    switch(http, "en", "/")
    response = http.get("/oauth/authorize", headers=FRENCH, query_string={
        **alice_client, "ui_locales": "fr"})
    page = http.get(response.headers["Location"], headers=FRENCH)
    assert 'lang="en"' in page.text


def test_ui_locales_beats_accept_language(http, alice_client):
    response = http.get("/oauth/authorize", headers=ENGLISH, query_string={
        **alice_client, "ui_locales": "fr-CA en"})
    assert 'lang="fr"' in http.get(response.headers["Location"], headers=ENGLISH).text


@pytest.fixture
def alice_client(factory) -> dict:
    factory.user()
    rp = factory.client()
    return {"response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri,
            "scope": "openid", "state": "s", "code_challenge": "a" * 43,
            "code_challenge_method": "S256"}


def test_a_signed_in_persons_saved_language_wins_over_accept_language(http, factory):
    user = factory.user(locale="fr")
    sign_in(http, headers=ENGLISH)
    assert 'lang="fr"' in http.get("/account", headers=ENGLISH).text
    assert switch(http, "en", "/account", page="/account").headers["Location"] == "/account"
    db.session.expire_all()
    assert db.session.get(User, user.id).locale == "en"
    assert 'lang="en"' in http.get("/account", headers=FRENCH).text


def test_the_account_form_uses_the_same_handler(http, factory):
    user = factory.user()
    sign_in(http)
    page = http.get("/account", headers=ENGLISH)
    response = http.post("/account/language", data={"locale": "fr",
                                                    "csrf_token": csrf_of(page.text)})
    assert response.headers["Location"] == "/account?saved=language"
    db.session.expire_all()
    assert db.session.get(User, user.id).locale == "fr"
    assert 'lang="fr"' in http.get("/login", headers=ENGLISH).text


@pytest.mark.parametrize("target", [
    "//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)",
    "/oauth/token", "/language", "", "/login\r\nLocation: https://evil.example",
])
def test_the_switcher_never_redirects_elsewhere(http, target):
    response = switch(http, "fr", target)
    assert response.status_code == 303 and response.headers["Location"] == "/"


@pytest.mark.parametrize("target", ["/no/such/page", "/t/nope/", "/login?flow=abc&x=%2F%2F"])
def test_the_switcher_goes_back_to_any_page_of_this_site(http, target):
    response = switch(http, "fr", target)
    assert response.status_code == 303 and response.headers["Location"] == target


def test_the_switcher_needs_csrf_and_a_known_language(http):
    http.get("/login")
    refused = http.post("/language", data={"locale": "fr", "next": "/login"})
    assert refused.status_code == 400
    assert 'lang="en"' in http.get("/login", headers=ENGLISH).text
    unknown = switch(http, "de", "/login")
    assert unknown.status_code == 303
    assert 'lang="en"' in http.get("/login", headers=ENGLISH).text


def test_an_email_to_a_known_person_is_in_their_saved_language(http, factory):
    factory.user("marie@example.com", locale="fr")
    factory.user("john@example.com", locale="en")
    for email in ("marie@example.com", "john@example.com"):
        page = http.get("/password/forgot", headers=FRENCH if email.startswith("john") else ENGLISH)
        response = http.post("/password/forgot", headers=ENGLISH, data={
            "email": email, "csrf_token": csrf_of(page.text)})
        assert response.status_code == 200
        response.close()  # the reset email is sent after the response (services/deferred.py)
    marie = sent_messages("password_reset", "marie@example.com")[-1]
    john = sent_messages("password_reset", "john@example.com")[-1]
    assert marie.locale == "fr" and marie.subject == "Réinitialisez votre mot de passe"
    assert john.locale == "en" and john.subject == "Reset your password"


def test_the_switcher_changes_the_language_of_the_persons_emails(http, factory):
    factory.user("alice@example.com")
    sign_in(http, headers=ENGLISH)
    switch(http, "fr", "/account", page="/account")
    page = http.get("/password/forgot", headers=ENGLISH)
    http.post("/password/forgot", headers=ENGLISH, data={
        "email": "alice@example.com", "csrf_token": csrf_of(page.text)}).close()
    assert sent_messages("password_reset", "alice@example.com")[-1].locale == "fr"


def test_a_page_without_a_form_has_a_cookieless_switcher_checked_by_fetch_metadata(http):
    home = http.get("/", headers=ENGLISH)
    assert 'action="/language"' in home.text and 'name="csrf_token"' not in home.text
    assert "Set-Cookie" not in home.headers  # anonymous plain pages stay cookie-less
    cross = http.post("/language", headers={**ENGLISH, "Sec-Fetch-Site": "cross-site"},
                      data={"locale": "fr", "next": "/"})
    assert cross.status_code == 400
    assert 'lang="en"' in http.get("/", headers=ENGLISH).text
    ours = http.post("/language", headers={**ENGLISH, "Sec-Fetch-Site": "same-origin"},
                     data={"locale": "fr", "next": "/"})
    assert ours.status_code == 303 and ours.headers["Location"] == "/"
    assert 'lang="fr"' in http.get("/", headers=ENGLISH).text


def test_a_wrong_token_is_refused_even_from_our_origin(http):
    http.get("/login")
    response = http.post("/language", headers={"Sec-Fetch-Site": "same-origin"},
                         data={"locale": "fr", "next": "/", "csrf_token": "forged"})
    assert response.status_code == 400
    assert 'lang="en"' in http.get("/login", headers=ENGLISH).text
