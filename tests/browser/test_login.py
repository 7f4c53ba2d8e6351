"""Signing in on the hosted page, from a relying party's redirect, in a real browser."""

from __future__ import annotations

import pytest

from tests.browser.pages import (
    assert_focus_visible,
    assert_page_ok,
    callback_query,
    desktop_only,
    focused,
    sign_in,
)
from tests.support import PASSWORD

pytestmark = pytest.mark.browser


def test_sign_in_lands_back_at_the_client_with_a_code(page, live_server, factory, make_rp,
                                                      client):
    factory.user(given_name="Alice", family_name="Martin")
    rp = make_rp()
    auth = rp.authorization(live_server.url)
    page.goto(auth.url)

    assert page.url.startswith(f"{live_server.url}/login?flow=")
    assert page.title() == "Sign in"
    assert page.locator("html").get_attribute("lang") == "en"
    page.get_by_role("heading", name="Sign in").wait_for()
    page.get_by_text("to continue to Test portal").wait_for()
    email = page.get_by_label("Email address", exact=True)
    password = page.get_by_label("Password", exact=True)
    assert email.get_attribute("name") == "email"
    assert email.get_attribute("autocomplete") == "username webauthn"  # passkeys in the autofill too
    assert password.get_attribute("name") == "password"
    assert password.get_attribute("autocomplete") == "current-password"
    assert_page_ok(page, "login")

    sign_in(page)
    result = callback_query(page, rp)
    assert result["state"] == auth.state
    assert result["iss"] == live_server.url
    assert result["code"]

    cookie = next(c for c in page.context.cookies() if c["name"] == "idp_session")
    assert cookie["httpOnly"] and cookie["domain"] == "localhost"
    tokens = rp.exchange(client, result["code"], auth.verifier)
    assert tokens["id_token_claims"]["nonce"] == auth.nonce
    assert tokens["id_token_claims"]["email"] == "alice@example.com"


def test_wrong_password_shows_the_error_and_stays(page, live_server, factory, make_rp):
    factory.user()
    rp = make_rp()
    auth = rp.authorization(live_server.url)
    page.goto(auth.url)
    login_url = page.url

    sign_in(page, password=PASSWORD + "x")
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert alert.inner_text() == "Incorrect email address or password."
    assert page.url == login_url
    assert page.title() == "Error: Sign in"
    email = page.get_by_label("Email address", exact=True)
    password = page.get_by_label("Password", exact=True)
    assert email.input_value() == "alice@example.com"  # kept, so only the password is retyped
    assert password.input_value() == ""
    for field in (email, password):
        assert field.get_attribute("aria-invalid") == "true"
        assert field.get_attribute("aria-describedby") == "form-error"
    assert focused(page)["id"] == "password"
    assert_page_ok(page, "login with an error")

    sign_in(page)  # the flow survives the failed attempt
    result = callback_query(page, rp)
    assert result["state"] == auth.state and result["code"]


def test_focus_order_skip_link_email_password_submit(page, live_server, factory, make_rp):
    rp = make_rp()
    page.goto(rp.authorization(live_server.url).url)
    assert focused(page)["tag"] == "body"  # nothing grabs focus on arrival

    page.keyboard.press("Tab")
    skip = focused(page)
    assert skip["cls"] == "skip-link" and skip["text"] == "Skip to content"
    box = page.locator(".skip-link").bounding_box()
    viewport = page.viewport_size
    assert box and 0 <= box["x"] < viewport["width"] and 0 <= box["y"] < viewport["height"], (
        f"the focused skip link is off screen: {box}")

    assert_focus_visible(page)

    order = []
    for _ in range(3):
        page.keyboard.press("Tab")
        order.append(focused(page))
        assert_focus_visible(page)
    assert [(f["tag"], f["name"] or f["type"]) for f in order] == [
        ("input", "email"), ("input", "password"), ("button", "submit")]
    assert order[2]["text"] == "Sign in"

    # The skip link moves focus to the main content.
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    assert focused(page)["cls"] == "skip-link"
    page.keyboard.press("Enter")
    assert focused(page)["id"] == "main"
    page.keyboard.press("Tab")
    assert focused(page)["name"] == "email"


FRENCH = {"email_label": "Adresse e-mail", "password_label": "Mot de passe",
          "button": "Se connecter"}


def sign_in_in_french(page, rp, auth, check_pages: bool) -> None:
    page.goto(auth.url)
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.title() == "Se connecter"
    page.get_by_role("heading", name="Se connecter").wait_for()
    page.get_by_text("pour continuer vers Test portal").wait_for()
    assert page.locator(".skip-link").inner_text() == "Aller au contenu"
    if check_pages:
        assert_page_ok(page, "French login")

    sign_in(page, password="faux", **FRENCH)
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert alert.inner_text() == "Adresse e-mail ou mot de passe incorrect."
    assert page.title() == "Erreur : Se connecter"
    if check_pages:
        assert_page_ok(page, "French login with an error")

    sign_in(page, **FRENCH)
    result = callback_query(page, rp)
    assert result["state"] == auth.state and result["code"]


def test_sign_in_in_french_from_the_browser_language(make_page, live_server, factory, make_rp):
    factory.user()
    rp = make_rp()
    page = make_page(locale="fr-FR")  # Accept-Language: fr-FR
    sign_in_in_french(page, rp, rp.authorization(live_server.url), check_pages=True)


@desktop_only
def test_sign_in_in_french_from_ui_locales(make_page, live_server, factory, make_rp):
    """An English browser, but the client asks for French (the same pages as above)."""
    factory.user()
    rp = make_rp()
    page = make_page(locale="en-US")
    auth = rp.authorization(live_server.url, ui_locales="fr-CA fr en")
    sign_in_in_french(page, rp, auth, check_pages=False)


@desktop_only
def test_back_to_a_finished_sign_in_explains_instead_of_failing(page, live_server, factory,
                                                                 make_rp):
    factory.user()
    rp = make_rp()
    page.goto(rp.authorization(live_server.url).url)
    login_url = page.url
    sign_in(page)
    callback_query(page, rp)

    response = page.goto(login_url)  # what the browser's back button requests again
    assert page.get_by_role("alert").inner_text() == (
        "This sign-in attempt is no longer valid. Go back to the application and start again.")
    assert response.status == 400
