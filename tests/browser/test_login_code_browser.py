"""The seeds' login in a real browser (issue 7, seeds 000/001): password, **Receive Code**,
the code from the real email (delivered over SMTP to aiosmtpd), **Login**; a wrong code, a
new code, and the same in French."""

from __future__ import annotations

import re

import pytest

from tests.browser.pages import assert_page_ok, callback_query, sign_in
from tests.smtp import text_of

pytestmark = pytest.mark.browser
EMAIL = "alice@example.com"
CODE_RE = re.compile(r"^\s*(\d{6})\s*$", re.M)


def _code(mail) -> str:
    return CODE_RE.search(text_of(mail)).group(1)


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_the_seeds_login_with_the_emailed_code(page, live_server, app, smtp, factory,
                                               required_rp, client, monkeypatch):
    factory.user(EMAIL, given_name="Alice")
    auth = required_rp.authorization(live_server.url)
    page.goto(auth.url)
    page.get_by_role("button", name="Receive Code", exact=True).wait_for()
    assert_page_ok(page, "login, the code comes next")
    sign_in(page, button="Receive Code")

    page.get_by_role("heading", name="Enter your code").wait_for()
    page.get_by_text("We sent a 6-digit code to a***@example.com.").wait_for()
    field = page.get_by_label("Sign-in code", exact=True)
    assert field.get_attribute("name") == "code"
    assert field.get_attribute("autocomplete") == "one-time-code"
    assert field.get_attribute("inputmode") == "numeric"
    page.get_by_text("Check your spam folder").wait_for()
    assert_page_ok(page, "code page")
    mail = smtp.wait_for(app, EMAIL)
    assert mail["Subject"].startswith("Your sign-in code")
    first = _code(mail)

    # A wrong code: an error on the same page.
    field.fill(_wrong(first))
    page.get_by_role("button", name="Login", exact=True).click()
    page.get_by_role("alert").filter(has_text="This code is not correct").wait_for()
    assert_page_ok(page, "code page, wrong code")

    # A new code (no cooldown in this test): the first one stops working.
    monkeypatch.setitem(app.config, "IDP_LOGIN_CODE_COOLDOWN", 0)
    page.get_by_role("button", name="Send a new code", exact=True).click()
    page.get_by_text("We sent a new code to a***@example.com.").wait_for()
    second = _code(smtp.wait_for(app, EMAIL, count=2))
    if second != first:
        page.get_by_label("Sign-in code", exact=True).fill(first)
        page.get_by_role("button", name="Login", exact=True).click()
        page.get_by_role("alert").filter(has_text="This code is not correct").wait_for()
    page.get_by_label("Sign-in code", exact=True).fill(second)
    page.get_by_role("button", name="Login", exact=True).click()

    result = callback_query(page, required_rp)
    assert result["state"] == auth.state
    tokens = required_rp.exchange(client, result["code"], auth.verifier)
    assert tokens["id_token_claims"]["amr"] == ["pwd", "otp", "mfa"]
    assert tokens["id_token_claims"]["acr"] == "urn:idp:loa:2"


def test_the_seeds_login_in_french(make_page, live_server, app, smtp, factory, required_rp):
    factory.user(EMAIL, locale="fr")
    page = make_page(locale="fr-FR")
    auth = required_rp.authorization(live_server.url)
    page.goto(auth.url)
    assert page.locator("html").get_attribute("lang") == "fr"
    sign_in(page, email_label="Adresse e-mail", password_label="Mot de passe",
            button="Recevoir le code")
    page.get_by_role("heading", name="Saisissez votre code").wait_for()
    assert_page_ok(page, "code page, French")
    mail = smtp.wait_for(app, EMAIL)
    assert "Your sign-in code" not in mail["Subject"]
    page.get_by_label("Code de connexion", exact=True).fill(_code(mail))
    page.get_by_role("button", name="Connexion", exact=True).click()
    callback_query(page, required_rp)
