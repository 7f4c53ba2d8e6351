"""Self-registration at a tenant in a real browser, reading the real mail (seed 002).

The mail is the one a person reads: the outbox delivered by the real worker over
SMTP to aiosmtpd (tests/smtp.py, the ``smtp`` fixture). The pre-account takeover
sequences of issue 6 run with two browsers, the attacker's and the victim's.
"""

from __future__ import annotations

import pytest

from idp.extensions import db
from tests.browser.pages import assert_page_ok, sign_in
from tests.smtp import link_to, text_of

pytestmark = pytest.mark.browser
PASSWORD = "Tulip-Orbit-47!"
EMAIL = "newcomer@example.com"
SQUATTER_PASSWORD = "Squatter-Pa55-word!"
VICTIM = "victim@example.com"


@pytest.fixture
def tenant(factory):
    tenant = factory.tenant("acme", "Acme Fleet")
    tenant.settings = {"support_email": "help@acme.example", "brand_color": "#7a1f5c"}
    db.session.commit()
    return tenant


def _fill_password(page, password, confirm=None):
    page.get_by_label("New password", exact=True).fill(password)
    page.get_by_label("Confirm new password", exact=True).fill(password if confirm is None
                                                                else confirm)


def test_register_confirm_and_sign_in(page, live_server, app, smtp, tenant):
    page.goto(f"{live_server.url}/t/acme/login")
    page.locator(".tenant-name", has_text="Acme Fleet").wait_for()
    page.get_by_role("link", name="help@acme.example").wait_for()
    assert_page_ok(page, "tenant login")

    page.get_by_role("link", name="Create an account").click()
    page.get_by_role("heading", name="Create an account").wait_for()
    assert_page_ok(page, "register")

    # A mistake first: the confirmation differs.
    page.get_by_label("Email address", exact=True).fill(EMAIL)
    _fill_password(page, PASSWORD, PASSWORD + "x")
    page.get_by_role("button", name="Create my account").click()
    page.get_by_role("alert").filter(has_text="The two passwords do not match.").wait_for()
    assert page.title().startswith("Error:")
    assert page.get_by_label("Email address", exact=True).input_value() == EMAIL
    assert_page_ok(page, "register error")

    _fill_password(page, PASSWORD)
    page.get_by_role("button", name="Create my account").click()
    page.get_by_role("heading", name="Check your email").wait_for()
    page.get_by_text("spam").wait_for()
    assert_page_ok(page, "check your email")

    first = smtp.wait_for(app, EMAIL)
    assert first["Subject"] == "Confirm your email address"
    page.get_by_role("button", name="Send the link again").click()
    page.get_by_role("status").filter(has_text="A new link is on its way").wait_for()
    second = smtp.wait_for(app, EMAIL, count=2)
    old_link, link = link_to(first, "/verify-email"), link_to(second, "/verify-email")
    assert old_link != link

    # Not active yet: signing in fails like a wrong password.
    page.goto(f"{live_server.url}/t/acme/login")
    sign_in(page, email=EMAIL, password=PASSWORD)
    page.get_by_role("alert").filter(has_text="Incorrect email address or password.").wait_for()

    page.goto(link)
    page.get_by_role("heading", name="Confirm your email address").wait_for()
    assert_page_ok(page, "confirm")
    _confirm(page, PASSWORD)
    page.get_by_role("heading", name="Your account is active").wait_for()
    assert_page_ok(page, "active")

    page.get_by_role("link", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/t/acme/login")
    sign_in(page, email=EMAIL, password=PASSWORD)
    page.get_by_text(f"Signed in as {EMAIL}").wait_for()

    # Every link worked until one was used; now the older one says so.
    page.goto(old_link)
    page.get_by_role("heading", name="This link cannot be used").wait_for()
    assert_page_ok(page, "used link")


def _confirm(page, password: str) -> None:
    """Finish on the link's page with the password chosen at registration."""
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Activate my account").click()


def _register(page, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/t/acme/register")
    page.get_by_label("Email address", exact=True).fill(email)
    _fill_password(page, password)
    page.get_by_role("button", name="Create my account").click()
    page.get_by_role("heading", name="Check your email").wait_for()


def _signs_in(page, base: str, email: str, password: str) -> bool:
    """Sign in on the tenant's page; whether it worked."""
    page.goto(f"{base}/t/acme/login")
    sign_in(page, email=email, password=password)
    welcome = page.get_by_text(f"Signed in as {email}")
    refused = page.get_by_role("alert").filter(has_text="Incorrect email address or password.")
    welcome.or_(refused).first.wait_for()
    return welcome.count() == 1


def test_attacker_registers_first_the_victim_takes_the_address(make_page, live_server, app, smtp,
                                                                tenant):
    """(a) The attacker registers the victim's address; the puzzled victim follows the link."""
    attacker, victim = make_page(), make_page()
    _register(attacker, live_server.url, VICTIM, SQUATTER_PASSWORD)
    mail = smtp.wait_for(app, VICTIM)
    victim.goto(link_to(mail, "/verify-email"))
    victim.get_by_role("heading", name="Confirm your email address").wait_for()
    victim.get_by_text("Enter the password you chose to finish").wait_for()
    assert_page_ok(victim, "confirm: two ways to finish")
    # The victim never chose a password: what they try is refused, nothing activates...
    _confirm(victim, PASSWORD)
    victim.get_by_role("alert").filter(
        has_text="This is not the password chosen at registration").wait_for()
    assert victim.title().startswith("Error:")
    assert_page_ok(victim, "confirm: wrong password")
    assert not _signs_in(attacker, live_server.url, VICTIM, SQUATTER_PASSWORD)
    # ...and choosing a password on the page makes the address theirs.
    victim.goto(link_to(mail, "/verify-email"))
    _fill_password(victim, PASSWORD)
    victim.get_by_role("button", name="Save this password and activate").click()
    victim.get_by_role("heading", name="Your account is active").wait_for()
    assert not _signs_in(attacker, live_server.url, VICTIM, SQUATTER_PASSWORD)
    assert _signs_in(victim, live_server.url, VICTIM, PASSWORD)


def test_victim_registers_first_the_attackers_registration_changes_nothing(
        make_page, live_server, app, smtp, tenant):
    """(b) The victim registers; the attacker registers the same address before the click."""
    victim, attacker = make_page(), make_page()
    _register(victim, live_server.url, VICTIM, PASSWORD)
    _register(attacker, live_server.url, VICTIM, SQUATTER_PASSWORD)
    newest = smtp.wait_for(app, VICTIM, count=2)
    first = smtp.received(VICTIM)[0]
    first_link, newest_link = link_to(first, "/verify-email"), link_to(newest, "/verify-email")
    assert first_link != newest_link
    # The victim's first link did not die...
    victim.goto(first_link)
    victim.get_by_role("heading", name="Confirm your email address").wait_for()
    # ...and the newest one, which the attacker caused, finishes with the victim's password.
    victim.goto(newest_link)
    _confirm(victim, PASSWORD)
    victim.get_by_role("heading", name="Your account is active").wait_for()
    victim.goto(first_link)
    victim.get_by_role("heading", name="This link cannot be used").wait_for()
    assert not _signs_in(attacker, live_server.url, VICTIM, SQUATTER_PASSWORD)
    assert _signs_in(victim, live_server.url, VICTIM, PASSWORD)


def test_an_existing_address_gets_a_notice(page, live_server, app, smtp, tenant, factory):
    factory.user("alice@example.com", tenant=tenant)
    page.goto(f"{live_server.url}/t/acme/register")
    page.get_by_label("Email address", exact=True).fill("alice@example.com")
    _fill_password(page, PASSWORD)
    page.get_by_role("button", name="Create my account").click()
    page.get_by_role("heading", name="Check your email").wait_for()
    notice = smtp.wait_for(app, "alice@example.com")
    assert notice["Subject"] == "You already have an account"
    assert "/t/acme/login" in text_of(notice)


def test_closed_registration(page, live_server, tenant):
    tenant.self_registration = False
    db.session.commit()
    page.goto(f"{live_server.url}/t/acme/login")
    page.get_by_role("heading", name="Sign in").wait_for()
    assert page.get_by_role("link", name="Create an account").count() == 0
    response = page.goto(f"{live_server.url}/t/acme/register")
    assert response.status == 403
    page.get_by_role("alert").filter(has_text="contact your service provider").wait_for()
    assert_page_ok(page, "registration closed")
