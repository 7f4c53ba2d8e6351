"""A tenant's branded entry address and the language switcher, in a real browser.

The branding is set the way an operator sets it (`idp tenant update` with a logo
file); the pages are read like a person reads them: the name in the header, the
logo drawn, the button in the tenant's colour, and the language kept from page
to page once chosen.
"""

from __future__ import annotations

import io

import pytest
from PIL import Image

from idp.extensions import db
from idp.models import User
from tests.browser.pages import assert_page_ok, desktop_only, sign_in
from tests.support import PASSWORD

pytestmark = pytest.mark.browser
BRAND_RGB = "rgb(122, 31, 92)"  # #7a1f5c


@pytest.fixture
def acme(app, factory, tmp_path):
    tenant = factory.tenant("acme", "Acme Fleet")
    logo = tmp_path / "acme.png"
    out = io.BytesIO()
    Image.new("RGB", (120, 40), (122, 31, 92)).save(out, format="PNG")
    logo.write_bytes(out.getvalue())
    result = app.test_cli_runner().invoke(args=[
        "idp", "tenant", "update", "acme", "--logo", str(logo), "--color", "#7a1f5c",
        "--support-email", "help@acme.example", "--support-url", "https://help.acme.example/",
        "--display-name", "fr=Acme Flotte"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    return tenant


def _logo_drawn(page) -> bool:
    logo = page.locator("header img.tenant-logo")
    logo.wait_for()
    return logo.evaluate("img => img.complete && img.naturalWidth === 120")


def _button_colour(page, name: str) -> str:
    return page.get_by_role("button", name=name, exact=True).evaluate(
        "b => getComputedStyle(b).backgroundColor")


@pytest.mark.parametrize(("locale", "name", "button", "help_text"), [
    ("en-US", "Acme Fleet", "Sign in", "Need help? Contact Acme Fleet support:"),
    ("fr-FR", "Acme Flotte", "Se connecter", "Besoin d’aide ? Contactez l’assistance de Acme Flotte :"),
])
def test_the_branded_entry_address(make_page, live_server, acme, locale, name, button, help_text):
    page = make_page(locale=locale)
    page.goto(f"{live_server.url}/t/acme/")
    header = page.locator("header.site-header")
    assert header.inner_text().strip() == name  # the tenant's name, not "Identity"
    assert _logo_drawn(page)
    assert _button_colour(page, button) == BRAND_RGB
    page.get_by_text(help_text).wait_for()
    page.get_by_role("link", name="help@acme.example").wait_for()
    assert page.locator("html").get_attribute("lang") == locale[:2]
    assert_page_ok(page, f"branded entry ({locale})")


@desktop_only
def test_the_branding_loads_under_the_real_csp(make_page, live_server, acme):
    page = make_page(bypass_csp=False)
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text)
            if "Content Security Policy" in message.text else None)
    page.goto(f"{live_server.url}/t/acme/login")
    assert _logo_drawn(page)
    assert _button_colour(page, "Sign in") == BRAND_RGB
    assert page.locator("footer a", has_text="help@acme.example").evaluate(
        "a => getComputedStyle(a).color") == BRAND_RGB
    assert refused == []


def _switch_with_the_keyboard(page, language: str) -> None:
    """Tab to the language's button and press Enter, as a keyboard user would."""
    target = page.get_by_role("button", name=language, exact=True)
    for _ in range(30):
        page.keyboard.press("Tab")
        if target.evaluate("b => b === document.activeElement"):
            break
    else:
        raise AssertionError(f"Tab never reached the {language} button")
    with page.expect_navigation():
        page.keyboard.press("Enter")


def _current_language(page) -> str:
    return page.locator(".language-switcher [aria-current=true]").inner_text()


def test_the_language_switcher_keeps_the_language_across_pages(make_page, live_server, acme,
                                                                factory, app):
    person = factory.user("marie@example.com", tenant=acme)
    page = make_page(locale="en-US")
    page.goto(f"{live_server.url}/t/acme/login")
    assert _current_language(page) == "English"
    switcher = page.get_by_role("navigation", name="Languages")
    assert switcher.get_by_role("button").count() == 1  # the current one is not a button

    _switch_with_the_keyboard(page, "Français")
    assert page.url == f"{live_server.url}/t/acme/login"  # back on the same page
    page.get_by_role("heading", name="Se connecter").wait_for()
    assert page.locator("html").get_attribute("lang") == "fr"
    assert _current_language(page) == "Français"
    assert page.get_by_role("navigation", name="Langues").get_by_role(
        "button", name="English").count() == 1
    assert_page_ok(page, "login in French")

    page.get_by_role("link", name="Créer un compte").click()
    page.get_by_role("heading", name="Créer un compte").wait_for()
    assert _current_language(page) == "Français"
    assert_page_ok(page, "registration in French")

    page.go_back()
    page.get_by_role("link", name="Mot de passe oublié ?").click()
    page.get_by_role("heading", name="Mot de passe oublié ?").wait_for()
    page.get_by_role("link", name="Retour à la connexion").click()

    sign_in(page, "marie@example.com", PASSWORD, email_label="Adresse e-mail",
            password_label="Mot de passe", button="Se connecter")
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/account")
    page.get_by_role("heading", name="Votre compte").wait_for()
    assert_page_ok(page, "account in French")
    with app.app_context():
        assert db.session.get(User, person.id).locale is None  # chosen before signing in

    _switch_with_the_keyboard(page, "English")
    page.get_by_role("heading", name="Your account").wait_for()
    assert page.url == f"{live_server.url}/account"
    with app.app_context():
        assert db.session.get(User, person.id).locale == "en"  # saved for the person
    assert_page_ok(page, "account in English")


def test_the_saved_language_wins_over_the_browsers(make_page, live_server, factory, app):
    person = factory.user("marie@example.com", locale="fr")
    page = make_page(locale="en-US")
    page.goto(f"{live_server.url}/login")
    page.get_by_role("heading", name="Sign in").wait_for()
    sign_in(page, "marie@example.com", PASSWORD)
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/account")
    page.get_by_role("heading", name="Votre compte").wait_for()
    assert page.locator("html").get_attribute("lang") == "fr"
    assert _current_language(page) == "Français"
    assert_page_ok(page, "account in the saved language")
    with app.app_context():
        assert db.session.get(User, person.id).locale == "fr"


@desktop_only
def test_the_switcher_works_on_a_page_without_a_form(make_page, live_server):
    """No form, no cookie, no CSRF token: the browser's Sec-Fetch-Site vouches for the POST."""
    page = make_page(locale="en-US")
    page.goto(f"{live_server.url}/no-such-page")
    assert page.context.cookies() == []
    with page.expect_navigation():
        page.get_by_role("button", name="Français").click()
    assert page.url == f"{live_server.url}/no-such-page"
    page.get_by_text("Cette page n'existe pas.").wait_for()
    assert page.locator("html").get_attribute("lang") == "fr"
    assert_page_ok(page, "404 in French")
