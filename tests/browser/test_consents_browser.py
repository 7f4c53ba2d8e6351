"""Consent to a third-party client, remembered, then revoked from the account page (with a
confirmation), and asked again afterwards; English and French, desktop and 360 px."""

from __future__ import annotations

import pytest

from tests.browser.pages import LONG_EMAIL, assert_page_ok, callback_query, sign_in

pytestmark = pytest.mark.browser


def test_consent_remembered_then_revoked_from_the_account_page(page, live_server, person,
                                                                make_rp):
    rp = make_rp(third_party=True)
    page.goto(rp.authorization(live_server.url).url)
    sign_in(page, LONG_EMAIL)
    page.wait_for_url(f"{live_server.url}/consent?**")
    page.get_by_role("button", name="Allow", exact=True).click()
    assert callback_query(page, rp)["code"]

    # Remembered: not asked the second time.
    page.goto(rp.authorization(live_server.url).url)
    assert callback_query(page, rp)["code"]

    page.goto(f"{live_server.url}/account")
    page.get_by_role("link", name="Applications you allowed").click()
    page.get_by_role("heading", name="Applications you allowed", level=1).wait_for()
    section = page.get_by_role("region", name="Test portal")
    assert section.get_by_role("listitem").all_inner_texts() == [
        "Confirm who you are", "See your email address", "See your name and language"]
    assert_page_ok(page, "consents")

    section.get_by_role("link", name="Revoke access for Test portal").click()
    page.get_by_role("heading", name="Revoke access for Test portal?").wait_for()
    assert_page_ok(page, "revoke confirmation")
    page.get_by_role("button", name="Revoke access", exact=True).click()
    page.get_by_role("status").get_by_text("Access was revoked.").wait_for()
    page.get_by_text("You have not allowed any application to use your account.").wait_for()
    assert_page_ok(page, "consents after revoking")

    # Asked again afterwards.
    page.goto(rp.authorization(live_server.url).url)
    page.wait_for_url(f"{live_server.url}/consent?**")
    page.get_by_role("button", name="Allow", exact=True).wait_for()


def test_cancelling_the_revocation_keeps_the_consent(page, live_server, person, make_rp):
    rp = make_rp(third_party=True)
    page.goto(rp.authorization(live_server.url).url)
    sign_in(page, LONG_EMAIL)
    page.get_by_role("button", name="Allow", exact=True).click()
    callback_query(page, rp)

    page.goto(f"{live_server.url}/account/consents")
    page.get_by_role("link", name="Revoke access for Test portal").click()
    page.get_by_role("link", name="Cancel", exact=True).click()
    page.get_by_role("region", name="Test portal").wait_for()
    page.goto(rp.authorization(live_server.url).url)
    assert callback_query(page, rp)["code"]


def test_the_consents_page_in_french(make_page, live_server, person, make_rp):
    rp = make_rp(third_party=True)
    page = make_page(locale="fr-FR")
    page.goto(rp.authorization(live_server.url).url)
    sign_in(page, LONG_EMAIL, email_label="Adresse e-mail", password_label="Mot de passe",
            button="Se connecter")
    page.get_by_role("button", name="Autoriser", exact=True).click()
    callback_query(page, rp)

    page.goto(f"{live_server.url}/account/consents")
    assert page.title() == "Applications autorisées"
    page.get_by_role("region", name="Test portal").get_by_text(
        "Voir votre adresse e-mail").wait_for()
    assert_page_ok(page, "French consents")
    page.get_by_role("link", name="Révoquer l’accès de Test portal").click()
    page.get_by_role("heading", name="Révoquer l’accès de Test portal ?").wait_for()
    assert_page_ok(page, "French revoke confirmation")
    page.get_by_role("button", name="Révoquer l’accès", exact=True).click()
    page.get_by_role("status").wait_for()
