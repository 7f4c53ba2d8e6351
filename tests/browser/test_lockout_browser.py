"""Lockout in a real browser (seed 004, issue 6): six wrong passwords lock the account for a
while, the message never changes, and the emailed link (sent after the answer) unlocks it
at once by choosing a new password."""

from __future__ import annotations

import pytest

from tests.browser.pages import assert_page_ok, sign_in
from tests.smtp import link_to, text_of
from tests.support import PASSWORD

pytestmark = pytest.mark.browser
EMAIL = "alice@example.com"
NEW_PASSWORD = "Quartz-Harbor-83?"
MESSAGE = "Incorrect email address or password."


def test_six_wrong_passwords_lock_and_the_email_unlocks(make_page, live_server, app, smtp,
                                                        factory):
    factory.user(EMAIL)
    page = make_page(bypass_csp=False)
    page.goto(live_server.url + "/login")
    for attempt in range(6):
        sign_in(page, password=f"Wrong-guess-{attempt}")
        assert page.get_by_role("alert").inner_text() == MESSAGE
    sign_in(page)  # the right password, now locked: the very same answer
    assert page.get_by_role("alert").inner_text() == MESSAGE

    mail = smtp.wait_for(app, EMAIL)
    assert mail["Subject"] == "Your account has been locked"
    assert "locked" in text_of(mail)
    assert "It will unlock by itself on" in text_of(mail)  # the lock ends by itself
    page.goto(link_to(mail, "/password/reset"))
    page.get_by_role("heading", name="Choose a new password").wait_for()
    page.get_by_label("New password", exact=True).press_sequentially(NEW_PASSWORD)
    page.get_by_label("Confirm new password", exact=True).press_sequentially(NEW_PASSWORD)
    page.get_by_role("button", name="Save password").click()
    page.get_by_role("heading", name="Password changed").wait_for()
    page.get_by_role("link", name="Sign in").click()
    sign_in(page, password=PASSWORD)  # the old one is gone
    assert page.get_by_role("alert").inner_text() == MESSAGE
    sign_in(page, password=NEW_PASSWORD)
    page.get_by_text(f"Signed in as {EMAIL}").wait_for()


def test_too_many_attempts_from_one_network(make_page, live_server, app, factory, monkeypatch):
    factory.user(EMAIL)
    monkeypatch.setitem(app.config, "IDP_LOGIN_IP_LIMIT", 2)
    page = make_page(locale="fr-FR")
    page.goto(live_server.url + "/login")
    sign_in(page, password="Wrong-1", password_label="Mot de passe",
            email_label="Adresse e-mail", button="Se connecter")
    sign_in(page, password="Wrong-2", password_label="Mot de passe",
            email_label="Adresse e-mail", button="Se connecter")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        sign_in(page, password=PASSWORD, password_label="Mot de passe",
                email_label="Adresse e-mail", button="Se connecter")
    assert posted.value.status == 429
    assert int(posted.value.headers["retry-after"]) > 0
    page.get_by_role("heading", name="Trop de tentatives").wait_for()
    assert "Veuillez réessayer dans" in page.get_by_role("alert").inner_text()
    assert_page_ok(page, "too many attempts")
