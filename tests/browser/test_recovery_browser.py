"""Forgot password in a real browser (seeds 002, 004): the link from the real email, a new
password, every other session signed out, then signing in with the new password."""

from __future__ import annotations

import pytest

from tests.browser.conftest import new_context
from tests.browser.pages import assert_page_ok, sign_in
from tests.smtp import link_to, text_of
from tests.support import PASSWORD

pytestmark = pytest.mark.browser
EMAIL = "alice@example.com"
NEW_PASSWORD = "Quartz-Harbor-83?"


def test_forgot_password_from_the_login_page(make_page, browser, viewport, live_server, app,
                                             smtp, factory):
    factory.user(EMAIL)
    # Alice is signed in on another device.
    elsewhere = new_context(browser, viewport)
    other = elsewhere.new_page()
    other.goto(live_server.url + "/login")
    sign_in(other)
    other.get_by_text(f"Signed in as {EMAIL}").wait_for()

    scan = make_page()
    scan.goto(live_server.url + "/password/forgot")
    scan.get_by_role("heading", name="Forgot your password?").wait_for()
    assert_page_ok(scan, "forgot password")
    scan.get_by_label("Email address", exact=True).fill("not an address")
    scan.get_by_role("button", name="Send reset link").click()
    scan.get_by_role("alert").filter(has_text="Enter a valid email address.").wait_for()
    assert_page_ok(scan, "forgot password with an error")

    page = make_page(bypass_csp=False)
    page.goto(live_server.url + "/login")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_role("heading", name="Forgot your password?").wait_for()
    page.get_by_label("Email address", exact=True).press_sequentially(EMAIL)
    page.get_by_role("button", name="Send reset link").click()
    page.get_by_role("heading", name="Check your email").wait_for()
    page.get_by_text("spam folder").wait_for()

    mail = smtp.wait_for(app, EMAIL)
    assert mail["Subject"] == "Reset your password"
    assert "expires in 60 minutes" in text_of(mail)
    link = link_to(mail, "/password/reset")
    assert link.startswith(live_server.url + "/password/reset?token=")

    scan.goto(link)
    scan.get_by_role("heading", name="Choose a new password").wait_for()
    assert_page_ok(scan, "reset password")

    page.goto(link)
    page.get_by_role("heading", name="Choose a new password").wait_for()
    page.get_by_label("New password", exact=True).press_sequentially(NEW_PASSWORD)
    page.get_by_label("Confirm new password", exact=True).press_sequentially(NEW_PASSWORD[:-1])
    page.get_by_text("The two passwords do not match yet.").wait_for()
    page.get_by_role("button", name="Save password").click()
    page.get_by_role("alert").filter(has_text="The two passwords do not match.").wait_for()
    assert page.title() == "Error: Choose a new password"

    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Confirm new password", exact=True).fill(NEW_PASSWORD)
    page.get_by_role("button", name="Save password").click()
    page.get_by_role("heading", name="Password changed").wait_for()
    assert smtp.wait_for(app, EMAIL, count=2)["Subject"] == "Your password was changed"

    # Signed out everywhere, and not signed in here either.
    other.reload()
    other.get_by_role("heading", name="Welcome").wait_for()
    elsewhere.close()
    page.get_by_role("link", name="Sign in").click()
    sign_in(page, password=PASSWORD)
    page.get_by_role("alert").filter(has_text="Incorrect email address or password.").wait_for()
    sign_in(page, password=NEW_PASSWORD)
    page.get_by_text(f"Signed in as {EMAIL}").wait_for()


def test_an_unknown_address_sees_the_same_page(make_page, live_server, app, smtp):
    page = make_page()
    page.goto(live_server.url + "/password/forgot")
    page.get_by_label("Email address", exact=True).fill("nobody@example.com")
    page.get_by_role("button", name="Send reset link").click()
    page.get_by_role("heading", name="Check your email").wait_for()
    assert_page_ok(page, "check your email")
    smtp.deliver(app)
    assert smtp.received() == []
