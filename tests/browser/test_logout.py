"""Signing out: from the IdP's home page, and RP-initiated (with and without a hint)."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from tests.browser.pages import (
    LONG_EMAIL,
    assert_page_ok,
    callback_query,
    desktop_only,
    phone_only,
    query_of,
    sign_in,
)

pytestmark = pytest.mark.browser


def signed_in_at(page, live_server, rp):
    """Sign in through the relying party; the authorization used."""
    auth = rp.authorization(live_server.url)
    page.goto(auth.url)
    sign_in(page, LONG_EMAIL)
    result = callback_query(page, rp)
    return auth, result


def assert_signed_out(page, live_server):
    page.goto(f"{live_server.url}/")
    page.get_by_role("heading", name="Welcome").wait_for()
    assert page.get_by_role("link", name="Sign in").is_visible()


def test_sign_out_from_the_home_page(page, live_server, person, make_rp):
    signed_in_at(page, live_server, make_rp())
    page.goto(f"{live_server.url}/")
    assert page.title() == "Your account"
    page.get_by_text(f"Signed in as {LONG_EMAIL}").wait_for()
    assert_page_ok(page, "home, signed in")

    page.get_by_role("button", name="Sign out", exact=True).click()
    page.get_by_role("heading", name="You are signed out").wait_for()
    assert page.title() == "Signed out"
    assert_page_ok(page, "signed out")

    assert_signed_out(page, live_server)
    assert_page_ok(page, "home, signed out")


def logout_url(live_server, rp, state: str, **extra) -> str:
    query = {"client_id": rp.client_id, "post_logout_redirect_uri": rp.post_logout_uri,
             "state": state, **extra}
    return f"{live_server.url}/oauth/logout?{urlencode(query)}"


def test_rp_initiated_logout_asks_for_confirmation(page, live_server, person, make_rp):
    rp = make_rp()
    signed_in_at(page, live_server, rp)

    page.goto(logout_url(live_server, rp, "bye-1"))
    page.wait_for_url(f"{live_server.url}/logout?flow=**")
    page.get_by_role("heading", name="Sign out?").wait_for()
    page.get_by_text(f"You are signed in as {LONG_EMAIL}.").wait_for()
    assert_page_ok(page, "sign-out confirmation")

    page.get_by_role("button", name="Sign out", exact=True).click()
    page.wait_for_url(rp.is_signed_out_page)
    assert query_of(page.url) == {"state": "bye-1"}
    assert_signed_out(page, live_server)


@phone_only
def test_rp_initiated_logout_stay_signed_in(page, live_server, person, make_rp):
    rp = make_rp()
    signed_in_at(page, live_server, rp)

    page.goto(logout_url(live_server, rp, "bye-2"))
    page.get_by_role("button", name="Stay signed in", exact=True).click()
    page.wait_for_url(f"{live_server.url}/")
    page.get_by_text(f"Signed in as {LONG_EMAIL}").wait_for()


@desktop_only
def test_rp_initiated_logout_with_id_token_hint_needs_no_confirmation(
        page, live_server, person, make_rp, client):
    rp = make_rp()
    auth, result = signed_in_at(page, live_server, rp)
    id_token = rp.exchange(client, result["code"], auth.verifier)["id_token"]

    page.goto(logout_url(live_server, rp, "bye-3", id_token_hint=id_token))
    page.wait_for_url(rp.is_signed_out_page)
    assert query_of(page.url) == {"state": "bye-3"}
    assert_signed_out(page, live_server)
