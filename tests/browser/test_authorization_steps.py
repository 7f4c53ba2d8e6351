"""The steps after the password: the organisation picker and the consent page."""

from __future__ import annotations

import pytest

from tests.browser.pages import LONG_EMAIL, assert_page_ok, callback_query, phone_only, sign_in

pytestmark = pytest.mark.browser


def test_organisation_picker_for_a_shared_client(page, live_server, two_tenant_person,
                                                 make_rp, client):
    rp = make_rp(shared=True)
    auth = rp.authorization(live_server.url)
    page.goto(auth.url)
    sign_in(page, LONG_EMAIL)

    # The pick comes after the password and before any second factor (issue 9).
    page.wait_for_url(f"{live_server.url}/login/select-tenant?**")
    assert page.title() == "Choose an organisation"
    page.get_by_role("heading", name="Choose an organisation").wait_for()
    page.get_by_text(f"Your account: {LONG_EMAIL}").wait_for()
    group = page.get_by_role("group", name="Which organisation do you want to use?")
    acme = group.get_by_role("radio", name="Acme", exact=True)
    globex = group.get_by_role("radio", name="Globex Corporation International Holdings")
    assert acme.is_checked() and not globex.is_checked()
    # Each company's role is read with its radio (aria-describedby).
    assert group.get_by_text("Administrator", exact=True).is_visible()
    assert globex.get_attribute("aria-describedby").endswith("-role")
    assert_page_ok(page, "organisation picker")

    # The whole row is the target: clicking the label text selects the radio.
    page.get_by_text("Globex Corporation International Holdings").click()
    assert globex.is_checked()
    page.get_by_role("button", name="Continue", exact=True).click()

    result = callback_query(page, rp)
    assert result["state"] == auth.state and result["iss"] == live_server.url
    claims = rp.exchange(client, result["code"], auth.verifier)["id_token_claims"]
    assert claims["org_slug"] == "globex" and claims["org_role"] == "admin"


def test_consent_allow_is_remembered(page, live_server, person, make_rp):
    rp = make_rp(third_party=True)
    auth = rp.authorization(live_server.url)
    page.goto(auth.url)
    sign_in(page, LONG_EMAIL)

    page.wait_for_url(f"{live_server.url}/consent?**")
    assert page.title() == "Allow access"
    page.get_by_role("heading", name="Allow Test portal to access your account?").wait_for()
    page.get_by_text(f"Signed in as {LONG_EMAIL}").wait_for()
    items = page.get_by_role("listitem").all_inner_texts()
    assert items == ["Confirm who you are", "See your name and language",
                     "See your email address"]
    assert_page_ok(page, "consent")

    page.get_by_role("button", name="Allow", exact=True).click()
    result = callback_query(page, rp)
    assert result["state"] == auth.state and result["code"]

    # Asked once: the next authorization goes straight back with a code.
    again = rp.authorization(live_server.url)
    page.goto(again.url)
    result = callback_query(page, rp)
    assert result["state"] == again.state and result["code"]


@phone_only
def test_consent_deny_returns_access_denied(page, live_server, person, make_rp):
    rp = make_rp(third_party=True)
    auth = rp.authorization(live_server.url)
    page.goto(auth.url)
    sign_in(page, LONG_EMAIL)
    page.wait_for_url(f"{live_server.url}/consent?**")

    page.get_by_role("button", name="Deny", exact=True).click()
    result = callback_query(page, rp)
    assert result["error"] == "access_denied"
    assert result["state"] == auth.state
    assert result["iss"] == live_server.url
    assert "code" not in result
