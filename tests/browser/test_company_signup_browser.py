"""Company sign-up in a real browser, reading the real mail (seed 004)."""

from __future__ import annotations

import pytest

from tests.browser.pages import assert_page_ok
from tests.smtp import link_to

pytestmark = pytest.mark.browser
PASSWORD = "Tulip-Orbit-47!"
EMAIL = "founder@example.com"


def test_three_steps_land_in_the_company_space(page, live_server, app, smtp):
    page.goto(f"{live_server.url}/signup")
    page.get_by_role("heading", name="Register your company").wait_for()
    assert_page_ok(page, "step 1")

    page.get_by_label("Email address", exact=True).fill(EMAIL)
    page.get_by_label("Confirm email address", exact=True).fill("founder@example.org")
    page.get_by_role("button", name="Validate").click()
    page.get_by_role("alert").filter(has_text="The two email addresses do not match.").wait_for()
    assert_page_ok(page, "step 1 error")
    page.get_by_label("Confirm email address", exact=True).fill(EMAIL)
    page.get_by_role("button", name="Validate").click()
    page.get_by_role("heading", name="Check your email").wait_for()
    assert_page_ok(page, "step 1 sent")

    link = link_to(smtp.wait_for(app, EMAIL), "/signup/continue")
    page.goto(link)
    page.get_by_role("heading", name="Your company").wait_for()
    assert_page_ok(page, "step 2")

    page.get_by_label("Company name", exact=True).fill("Akonet Demo")
    page.get_by_label("Identification type", exact=True).select_option("siren")
    page.get_by_label("Identification number", exact=True).fill("732 829 320")
    page.get_by_label("Contact phone number", exact=True).fill("+33 6 12 34 56 78")
    page.get_by_role("button", name="Next").click()
    page.get_by_role("heading", name="Your administrator account").wait_for()
    assert_page_ok(page, "step 3")

    # Back and forward keep the flow: step 2 shows what was typed.
    page.go_back()
    page.get_by_role("heading", name="Your company").wait_for()
    assert page.get_by_label("Company name", exact=True).input_value() == "Akonet Demo"
    page.go_forward()
    page.get_by_role("heading", name="Your administrator account").wait_for()
    page.go_back()
    page.get_by_role("heading", name="Your company").wait_for()

    # Changing the details from there, with mistakes first.
    page.get_by_label("Identification number", exact=True).fill("732 829 321")
    page.get_by_label("Contact phone number", exact=True).fill("06 12 34 56 78")
    page.get_by_role("button", name="Next").click()
    page.get_by_role("alert").filter(has_text="check it for a typing mistake").wait_for()
    page.get_by_text("with the country code, such as").first.wait_for()
    assert_page_ok(page, "step 2 errors")
    page.get_by_label("Identification number", exact=True).fill("732 829 320")
    page.get_by_label("Contact phone number", exact=True).fill("+33 6 12 34 56 78")
    page.get_by_role("button", name="Next").click()
    page.get_by_role("heading", name="Your administrator account").wait_for()

    # The same link opened in another tab continues where the person is.
    tab = page.context.new_page()
    tab.goto(link)
    tab.get_by_role("heading", name="Your administrator account").wait_for()
    tab.close()

    page.get_by_label("First name", exact=True).fill("Ada")
    page.get_by_label("Last name", exact=True).fill("Lovelace")
    page.get_by_label("New password", exact=True).fill(PASSWORD)
    page.get_by_label("Confirm new password", exact=True).fill(PASSWORD + "?")
    page.get_by_label("Display language", exact=True).select_option("en")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("alert").filter(has_text="The two passwords do not match.").wait_for()
    assert_page_ok(page, "step 3 error")
    page.get_by_label("New password", exact=True).fill(PASSWORD)
    page.get_by_label("Confirm new password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.get_by_role("heading", name="Welcome to Akonet Demo").wait_for()
    page.get_by_text(f"signed in as {EMAIL}").wait_for()
    page.get_by_text("Super-administrator").first.wait_for()
    assert_page_ok(page, "company space")

    # The link is spent.
    page.goto(link)
    page.get_by_role("heading", name="This link cannot be used").wait_for()
    assert_page_ok(page, "used link")


def test_french_choice_lands_in_french(page, live_server, app, smtp):
    page.goto(f"{live_server.url}/signup")
    page.get_by_label("Email address", exact=True).fill(EMAIL)
    page.get_by_label("Confirm email address", exact=True).fill(EMAIL)
    page.get_by_role("button", name="Validate").click()
    page.get_by_role("heading", name="Check your email").wait_for()
    page.goto(link_to(smtp.wait_for(app, EMAIL), "/signup/continue"))
    page.get_by_label("Company name", exact=True).fill("Société Générale de Test")
    page.get_by_label("Identification type", exact=True).select_option("vat")
    page.get_by_label("Identification number", exact=True).fill("FR 44 732829320")
    page.get_by_label("Contact phone number", exact=True).fill("0033 1 23 45 67 89")
    page.get_by_role("button", name="Next").click()
    page.get_by_label("First name", exact=True).fill("Marie")
    page.get_by_label("Last name", exact=True).fill("Curie")
    page.get_by_label("New password", exact=True).fill(PASSWORD)
    page.get_by_label("Confirm new password", exact=True).fill(PASSWORD)
    page.get_by_label("Display language", exact=True).select_option("fr")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Bienvenue chez Société Générale de Test").wait_for()
    assert page.locator("html").get_attribute("lang") == "fr"
    assert_page_ok(page, "company space (fr)")
