"""Journey 1 in a real browser (seeds 000, 001): the operator creates the account, the
person follows the welcome email's Complete Registration link, sets a password with
the live rule checks and the generator, gets the confirmation email, and signs in."""

from __future__ import annotations

import pytest

from idp.services.password_policy import PasswordPolicy, violations
from tests.browser.pages import assert_page_ok, sign_in
from tests.smtp import link_to, text_of

pytestmark = pytest.mark.browser
EMAIL = "dana.invited@example.com"


def csp_problems(page) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text)
            if "Content Security Policy" in msg.text or "Refused to" in msg.text else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems


def rule_state(page, rule: str) -> str:
    classes = page.locator(f'li[data-rule="{rule}"]').get_attribute("class").split()
    return "met" if "rule-met" in classes else "unmet" if "rule-unmet" in classes else "neutral"


def test_complete_registration_from_the_welcome_email(make_page, live_server, app, smtp,
                                                      factory):
    tenant = factory.tenant("acme", "Acme Fleet")
    tenant.settings = {"support_email": "help@acme.example"}
    from idp.extensions import db

    db.session.commit()
    # The operator creates the account (seeds: after the service agreement is signed).
    result = app.test_cli_runner().invoke(args=["idp", "user", "create", "--tenant", "acme",
                                                "--email", EMAIL, "--invite"])
    assert result.exit_code == 0, result.output

    welcome = smtp.wait_for(app, EMAIL)
    assert welcome["Subject"] == "Welcome to Acme Fleet / Bienvenue sur Acme Fleet"
    body = text_of(welcome)
    assert body.index("Complete Registration") < body.index("Compléter l'inscription")
    assert "help@acme.example" in body and "spam" in body.lower()
    link = link_to(welcome, "/invitation")
    assert link.startswith(live_server.url + "/invitation?token=")

    # The accessibility scan needs a CSP-bypassing page; the journey runs under the real CSP.
    scan = make_page()
    scan.goto(link)
    scan.get_by_role("heading", name="Complete your registration").wait_for()
    assert_page_ok(scan, "set password")
    scan.get_by_label("New password", exact=True).fill("short")
    scan.get_by_label("Confirm new password", exact=True).fill("short")
    scan.get_by_role("button", name="Save password").click()
    scan.get_by_role("alert").filter(has_text="Your password was not saved").wait_for()
    assert scan.title() == "Error: Complete your registration"
    assert_page_ok(scan, "set password with errors")

    page = make_page(bypass_csp=False)
    problems = csp_problems(page)
    page.goto(link)
    page.get_by_role("heading", name="Complete your registration").wait_for()
    page.get_by_text(f"Choose the password for {EMAIL}.").wait_for()
    page.get_by_role("button", name="Generate password").wait_for()  # shown once the script ran

    new_password = page.get_by_label("New password", exact=True)
    confirm = page.get_by_label("Confirm new password", exact=True)
    assert new_password.get_attribute("autocomplete") == "new-password"
    assert confirm.get_attribute("autocomplete") == "new-password"

    # The rules turn as the person types.
    new_password.press_sequentially("tulip")
    assert rule_state(page, "min_length") == "unmet"
    assert rule_state(page, "lower") == "met"
    assert rule_state(page, "upper") == "unmet"
    assert rule_state(page, "common") == "neutral"  # checked by the server only
    new_password.press_sequentially("-Orbit-47!")
    for rule in ("min_length", "upper", "lower", "digit", "symbol", "contains_email"):
        assert rule_state(page, rule) == "met", rule
    confirm.press_sequentially("Tulip")
    page.get_by_text("The two passwords do not match yet.").wait_for()
    new_password.fill("dana.invited-Orbit-47!")
    assert rule_state(page, "contains_email") == "unmet"

    # The generator fills both fields and shows what it chose.
    page.get_by_role("button", name="Generate password").click()
    generated = page.locator("#generated-value").inner_text()
    assert len(generated) >= 16
    assert violations(generated, PasswordPolicy(), EMAIL) == []
    assert new_password.input_value() == generated and confirm.input_value() == generated
    assert new_password.get_attribute("type") == "text"  # visible, so it can be noted
    page.get_by_text("The two passwords match.").wait_for()
    assert page.get_by_label("Show passwords").is_checked()
    page.get_by_role("button", name="Generate password").click()
    assert page.locator("#generated-value").inner_text() != generated  # fresh each time
    generated = page.locator("#generated-value").inner_text()

    page.get_by_role("button", name="Save password").click()
    page.get_by_role("heading", name="Your account is ready").wait_for()
    changed = smtp.wait_for(app, EMAIL, count=2)
    assert changed["Subject"] == "Your password was changed"

    # The link worked once.
    page.goto(link)
    page.get_by_role("alert").filter(has_text="not valid or was already used").wait_for()
    page.get_by_role("link", name="Sign in").click()
    sign_in(page, email=EMAIL, password=generated)
    page.get_by_text(f"Signed in as {EMAIL}").wait_for()
    assert not problems, problems
