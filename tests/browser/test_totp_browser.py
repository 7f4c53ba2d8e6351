"""The authenticator app in a real browser (issue 8, seeds 000/001/003): set it up from
the security page by reading the key off the page (pyotp plays the phone), sign in with
it, "send the code by email instead", "no access to the app?" (the admins' email read
from the SMTP server), a recovery code; French at 360 px; every page axe-clean."""

from __future__ import annotations

import re
import time

import pyotp
import pytest

from idp.extensions import db
from idp.factors import totp
from idp.factors.registry import get_factor
from idp.services import recovery_codes
from tests.browser.pages import assert_page_ok, callback_query, phone_only, sign_in
from tests.smtp import text_of

pytestmark = pytest.mark.browser
EMAIL = "alice@example.com"
CODE_RE = re.compile(r"^\s*(\d{6})\s*$", re.M)


def _enrolled(factory, **kwargs) -> pyotp.TOTP:
    """alice with an authenticator app (set up through the factor); her phone."""
    user = factory.user(EMAIL, **kwargs)
    factor, state = get_factor("totp"), {}
    secret = factor.enrol_start(user, state)["secret"]
    factor.enrol_confirm(user, {"code": totp.code_at(secret, totp.current_step() - 1)}, state)
    db.session.commit()
    return pyotp.TOTP(secret)


def _next_code(phone: pyotp.TOTP) -> str:
    """The code of the next step: the current one may be used up already (each step
    signs in once); the server accepts one step ahead."""
    return phone.at(time.time() + totp.STEP_SECONDS)


def test_set_up_the_app_then_sign_in_with_it(make_page, live_server, app, smtp, factory,
                                             required_rp, client):
    factory.user(EMAIL, given_name="Alice")
    page = make_page()
    page.goto(required_rp.authorization(live_server.url).url)
    sign_in(page, button="Receive Code")
    page.get_by_role("heading", name="Enter your code").wait_for()
    page.get_by_label("Sign-in code", exact=True).fill(
        CODE_RE.search(text_of(smtp.wait_for(app, EMAIL))).group(1))
    page.get_by_role("button", name="Login", exact=True).click()
    callback_query(page, required_rp)

    page.goto(f"{live_server.url}/account")
    page.get_by_role("link", name="Security: authenticator app, recovery codes").click()
    page.get_by_role("heading", name="Security", exact=True).wait_for()
    assert_page_ok(page, "security page")
    page.get_by_role("button", name="Set up an authenticator app").click()
    page.get_by_role("heading", name="Set up an authenticator app").wait_for()
    assert page.locator(".qr svg").count() == 1
    assert_page_ok(page, "authenticator setup")
    key = page.locator("#totp-secret").inner_text().replace(" ", "")  # typed in, by hand
    phone = pyotp.TOTP(key)
    page.get_by_label("Code from your app", exact=True).fill(_next_code(phone)[::-1] + "0")
    page.get_by_role("button", name="Turn on").click()
    page.get_by_role("alert").filter(has_text="This code is not correct").wait_for()
    assert_page_ok(page, "authenticator setup, wrong code")
    page.get_by_label("Code from your app", exact=True).fill(phone.now())
    page.get_by_role("button", name="Turn on").click()
    page.get_by_role("heading", name="Your recovery codes").wait_for()
    assert page.locator("#recovery-codes li").count() == 10
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the codes (.txt)").click()
    saved = download.value.path().read_text()
    assert page.locator("#recovery-codes li").first.inner_text() in saved
    assert_page_ok(page, "recovery codes")
    page.get_by_role("link", name="I saved my codes").click()
    page.get_by_text("10 of 10 codes left").wait_for()
    added = smtp.wait_for(app, EMAIL, count=2)
    assert added["Subject"] == "An authenticator app was added to your account"

    # Another browser: the password, then the app's code instead of an email.
    other = make_page()
    auth = required_rp.authorization(live_server.url)
    other.goto(auth.url)
    sign_in(other, button="Receive Code")
    other.get_by_role("heading", name="Enter the code from your app").wait_for()
    assert_page_ok(other, "sign-in, code from the app")
    other.get_by_label("Code from your app", exact=True).fill(_next_code(phone))
    other.get_by_role("button", name="Login", exact=True).click()
    result = callback_query(other, required_rp)
    tokens = required_rp.exchange(client, result["code"], auth.verifier)
    assert tokens["id_token_claims"]["amr"] == ["pwd", "otp", "mfa"]
    assert tokens["id_token_claims"]["acr"] == "urn:idp:loa:2"
    assert len(smtp.received(EMAIL)) == 2  # no sign-in code was emailed

    # Back in the first browser (signed in with a second factor minutes ago): remove it.
    page.get_by_role("button", name="Remove the authenticator app").click()
    page.get_by_role("status").filter(has_text="Your authenticator app was removed.").wait_for()
    page.get_by_text("No recovery codes").wait_for()
    assert_page_ok(page, "security page, app removed")
    removed = smtp.wait_for(app, EMAIL, count=3)
    assert removed["Subject"] == "An authenticator app was removed from your account"


def test_send_the_code_by_email_instead(page, live_server, app, smtp, factory, required_rp):
    _enrolled(factory)
    page.goto(required_rp.authorization(live_server.url).url)
    sign_in(page, button="Receive Code")
    page.get_by_role("heading", name="Enter the code from your app").wait_for()
    page.get_by_role("button", name="Send the code by email instead").click()
    page.get_by_role("heading", name="Enter your code").wait_for()
    assert_page_ok(page, "emailed code, app set up")
    page.get_by_label("Sign-in code", exact=True).fill(
        CODE_RE.search(text_of(smtp.wait_for(app, EMAIL))).group(1))
    page.get_by_role("button", name="Login", exact=True).click()
    callback_query(page, required_rp)


def test_no_access_to_the_app_asks_the_admins(page, live_server, app, smtp, factory,
                                              required_rp):
    _enrolled(factory)
    factory.user("boss@example.com", role="admin")
    page.goto(required_rp.authorization(live_server.url).url)
    sign_in(page, button="Receive Code")
    page.get_by_role("link", name="No access to the app?").click()
    page.get_by_role("heading", name="No access to your authenticator app").wait_for()
    assert_page_ok(page, "no access, confirm")
    page.get_by_role("button", name="Ask an administrator to reset it").click()
    page.get_by_role("status").filter(has_text="An administrator will reset").wait_for()
    assert_page_ok(page, "no access, requested")
    mail = smtp.wait_for(app, "boss@example.com")
    assert mail["Subject"] == "A person cannot use their authenticator app"
    assert EMAIL in text_of(mail)
    assert smtp.received(EMAIL) == []
    # Meanwhile the emailed code still signs in.
    page.get_by_role("button", name="Send the code by email instead").click()
    page.get_by_label("Sign-in code", exact=True).fill(
        CODE_RE.search(text_of(smtp.wait_for(app, EMAIL))).group(1))
    page.get_by_role("button", name="Login", exact=True).click()
    callback_query(page, required_rp)


def test_sign_in_with_a_recovery_code(page, live_server, app, smtp, factory, required_rp,
                                      client):
    _enrolled(factory)
    from idp.services.accounts import get_by_email

    codes = recovery_codes.issue(get_by_email(EMAIL))
    db.session.commit()
    auth = required_rp.authorization(live_server.url)
    page.goto(auth.url)
    sign_in(page, button="Receive Code")
    page.get_by_role("button", name="Use a recovery code").click()
    page.get_by_role("heading", name="Enter a recovery code").wait_for()
    assert_page_ok(page, "recovery code")
    page.get_by_label("Recovery code", exact=True).fill("2345-6789-abcd")
    page.get_by_role("button", name="Login", exact=True).click()
    page.get_by_role("alert").filter(has_text="This recovery code is not correct").wait_for()
    assert_page_ok(page, "recovery code, wrong")
    page.get_by_label("Recovery code", exact=True).fill(codes[3])
    page.get_by_role("button", name="Login", exact=True).click()
    result = callback_query(page, required_rp)
    tokens = required_rp.exchange(client, result["code"], auth.verifier)
    assert tokens["id_token_claims"]["amr"] == ["pwd", "otp", "mfa"]
    notice = smtp.wait_for(app, EMAIL)
    assert notice["Subject"] == "A recovery code was used to sign in"


@phone_only
def test_the_app_pages_in_french_on_a_phone(make_page, live_server, app, smtp, factory,
                                            required_rp):
    phone = _enrolled(factory, locale="fr")
    factory.user("boss@example.com", role="admin")
    page = make_page(locale="fr-FR")
    page.goto(required_rp.authorization(live_server.url).url)
    sign_in(page, email_label="Adresse e-mail", password_label="Mot de passe",
            button="Recevoir le code")
    page.get_by_role("heading", name="Saisissez le code de votre application").wait_for()
    assert_page_ok(page, "code from the app, French")
    page.get_by_role("link", name="Pas d’accès à l’application ?").click()
    page.get_by_role("heading", name="Pas d’accès à votre application d’authentification").wait_for()
    assert_page_ok(page, "no access, French")
    page.get_by_role("link", name="Retour au code de votre application").click()
    page.get_by_label("Code de votre application", exact=True).fill(_next_code(phone))
    page.get_by_role("button", name="Connexion", exact=True).click()
    callback_query(page, required_rp)
    page.goto(f"{live_server.url}/account/security")
    page.get_by_role("heading", name="Sécurité", exact=True).wait_for()
    assert_page_ok(page, "security page, French")


def test_trust_this_browser_then_stop_trusting_it(page, live_server, app, smtp, factory,
                                                  required_rp):
    """The tenant allows 30 days: the checkbox, the next sign-in skips the app's code, the
    security page (after confirming it is you) lists the browser and revokes it."""
    from idp.services.tenants import get_by_slug
    from idp.services.trusted_browsers import set_trust_days

    phone = _enrolled(factory)
    set_trust_days(get_by_slug("acme"), 30)
    db.session.commit()
    page.goto(required_rp.authorization(live_server.url).url)
    sign_in(page, button="Receive Code")
    page.get_by_label("Code from your app", exact=True).fill(phone.now())
    page.get_by_label("Trust this browser for 30 days").check()
    assert_page_ok(page, "code from the app, trust this browser")
    page.get_by_role("button", name="Login", exact=True).click()
    callback_query(page, required_rp)

    page.goto(required_rp.authorization(live_server.url, prompt="login").url)
    sign_in(page, button="Receive Code")
    callback_query(page, required_rp)  # no second step in this browser

    page.goto(f"{live_server.url}/account/security")
    page.get_by_role("heading", name="Confirm it is you").wait_for()
    assert_page_ok(page, "security page, confirm it is you")
    page.get_by_label("Current password", exact=True).fill("Correct-Horse-9")
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Code from your app", exact=True).fill(_next_code(phone))
    page.get_by_role("button", name="Login", exact=True).click()
    page.get_by_role("heading", name="Trusted browsers").wait_for()
    assert page.get_by_text("Trusted until").count() == 1
    assert_page_ok(page, "security page, a trusted browser")
    page.get_by_role("button", name="Stop trusting").click()
    page.get_by_role("status").filter(has_text="This browser is no longer trusted.").wait_for()
    page.get_by_text("No trusted browser").wait_for()

    page.goto(required_rp.authorization(live_server.url, prompt="login").url)
    sign_in(page, button="Receive Code")
    page.get_by_role("heading", name="Enter the code from your app").wait_for()
