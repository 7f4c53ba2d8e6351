"""Changing the email address from the account page, in a real browser with real mail."""

from __future__ import annotations

import pytest

from tests.browser.pages import assert_page_ok, sign_in
from tests.smtp import link_to, text_of
from tests.support import PASSWORD

pytestmark = pytest.mark.browser
OLD = "alice@example.com"
NEW = "alice.martin@example.org"


def test_change_email_then_language(page, live_server, app, smtp, factory):
    factory.user(OLD, given_name="Alice", family_name="Martin")
    page.goto(f"{live_server.url}/login")
    sign_in(page, email=OLD)
    page.get_by_text(f"Signed in as {OLD}").wait_for()

    page.goto(f"{live_server.url}/account")
    page.get_by_role("heading", name="Your account").wait_for()
    page.get_by_text("Alice Martin").wait_for()
    assert_page_ok(page, "account")

    page.get_by_role("link", name="Change your email address").click()
    page.get_by_role("heading", name="Change your email address").wait_for()
    assert_page_ok(page, "change email")
    page.get_by_label("New email address", exact=True).fill("josé@example.org")
    page.get_by_role("button", name="Send the confirmation link").click()
    page.get_by_role("alert").filter(has_text="without accents").wait_for()
    assert_page_ok(page, "change email error")
    page.get_by_label("New email address", exact=True).fill(NEW)
    page.get_by_role("button", name="Send the confirmation link").click()
    page.get_by_role("heading", name="Check your new mailbox").wait_for()
    assert_page_ok(page, "change email sent")

    notice = smtp.wait_for(app, OLD)
    assert notice["Subject"] == "Your email address is being changed"
    assert "a***@example.org" in text_of(notice)
    link = link_to(smtp.wait_for(app, NEW), "/account/email/confirm")
    page.goto(link)
    page.get_by_role("heading", name="Confirm your new email address").wait_for()
    assert_page_ok(page, "confirm new email")
    page.get_by_role("button", name="Confirm the new address").click()
    page.get_by_role("heading", name="Your email address was changed").wait_for()
    assert_page_ok(page, "email changed")

    page.get_by_role("link", name="Back to your account").click()
    page.get_by_text(NEW).first.wait_for()
    page.get_by_label("Language", exact=True).select_option("fr")
    page.get_by_role("button", name="Save language").click()
    page.get_by_role("heading", name="Votre compte").wait_for()
    page.get_by_role("status").filter(has_text="Votre langue a été enregistrée.").wait_for()
    assert page.locator("html").get_attribute("lang") == "fr"
    assert_page_ok(page, "account (fr)")


def test_an_old_session_types_the_password_again(page, live_server, app, factory, smtp):
    factory.user(OLD)
    page.goto(f"{live_server.url}/login")
    sign_in(page, email=OLD)
    page.get_by_text(f"Signed in as {OLD}").wait_for()
    # Make the login 11 minutes old in the server-side session.
    from sqlalchemy import select

    from idp.extensions import db
    from idp.models import BrowserSession

    row = db.session.scalar(select(BrowserSession).where(BrowserSession.user_id.is_not(None)))
    row.data = {**row.data, "auth_time": row.data["auth_time"] - 11 * 60}
    db.session.commit()

    page.goto(f"{live_server.url}/account/email")
    page.get_by_label("Current password", exact=True).wait_for()
    assert_page_ok(page, "step-up")
    page.get_by_label("New email address", exact=True).fill(NEW)
    page.get_by_label("Current password", exact=True).fill(PASSWORD + "x")
    page.get_by_role("button", name="Send the confirmation link").click()
    page.get_by_role("alert").filter(has_text="This password is not correct.").wait_for()
    page.get_by_label("Current password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Send the confirmation link").click()
    page.get_by_role("heading", name="Check your new mailbox").wait_for()
    smtp.wait_for(app, NEW)
