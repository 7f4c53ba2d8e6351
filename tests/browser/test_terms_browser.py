"""The partner's terms at sign-in (seeds 000/001), in a real browser: read, Accept or
Decline, a new version asked again; English and French, desktop and a 360 px phone."""

from __future__ import annotations

import pytest

from idp.extensions import db
from tests.browser.pages import LONG_EMAIL, assert_page_ok, callback_query, sign_in

pytestmark = pytest.mark.browser

FRENCH = {"email_label": "Adresse e-mail", "password_label": "Mot de passe",
          "button": "Se connecter"}
EN = ("# Monogoto partner terms\n\nBy using the service you agree to the "
      "[partner terms](https://example.com/partner) and to **fair use**.\n\n"
      "- Keep your credentials secret.\n- Tell us about misuse.\n\n"
      "<script>document.title = 'pwned'</script>")
FR = ("# Conditions partenaire Monogoto\n\nEn utilisant le service, vous acceptez les "
      "[conditions](https://example.com/partenaire) et un **usage raisonnable**.")


def publish(tenant, version: str, en: str = EN, fr: str = FR):
    from idp.services.terms import Text
    from idp.services.terms import publish as publish_version

    published = publish_version("partner-terms", version, {"en": Text(en), "fr": Text(fr)},
                                tenant=tenant)
    db.session.commit()
    return published


@pytest.fixture
def acme(factory, person):
    return factory.tenant()


def test_terms_accepted_once_and_asked_again_for_a_new_version(page, live_server, make_rp,
                                                                 acme, person):
    publish(acme, "2026-11")
    rp = make_rp()
    auth = rp.authorization(live_server.url)
    page.goto(auth.url)
    sign_in(page, LONG_EMAIL)

    page.wait_for_url(f"{live_server.url}/terms?**")
    assert page.title() == "Terms and conditions"
    page.get_by_role("heading", name="Terms and conditions", level=1).wait_for()
    text = page.get_by_role("region", name="Text of the terms, version 2026-11")
    text.get_by_role("heading", name="Monogoto partner terms", level=2).wait_for()
    assert text.get_by_role("link", name="partner terms").get_attribute("href") == \
        "https://example.com/partner"
    assert "<script>" in text.inner_text()  # shown as text, never run
    page.get_by_text("read and accept these terms (version 2026-11)").wait_for()
    assert_page_ok(page, "terms")

    page.get_by_role("button", name="Accept", exact=True).click()
    result = callback_query(page, rp)
    assert result["state"] == auth.state and result["code"]

    # Accepted: the next authorization goes straight back with a code.
    again = rp.authorization(live_server.url)
    page.goto(again.url)
    assert callback_query(page, rp)["code"]

    # A new version is asked again.
    publish(acme, "2026-12", en="# Monogoto partner terms\n\nThe **new** text.")
    newer = rp.authorization(live_server.url)
    page.goto(newer.url)
    page.wait_for_url(f"{live_server.url}/terms?**")
    region = page.get_by_role("region", name="Text of the terms, version 2026-12")
    region.get_by_text("The new text.").wait_for()
    page.get_by_role("button", name="Accept", exact=True).click()
    result = callback_query(page, rp)
    assert result["state"] == newer.state and result["code"]


def test_declining_the_terms_returns_access_denied(page, live_server, make_rp, acme, person):
    publish(acme, "1")
    rp = make_rp()
    auth = rp.authorization(live_server.url)
    page.goto(auth.url)
    sign_in(page, LONG_EMAIL)
    page.wait_for_url(f"{live_server.url}/terms?**")
    page.get_by_text("If you decline, you will not be signed in to Test portal.").wait_for()

    page.get_by_role("button", name="Decline", exact=True).click()
    result = callback_query(page, rp)
    assert result["error"] == "access_denied" and "code" not in result
    assert result["state"] == auth.state and result["iss"] == live_server.url

    # Nothing stayed signed in: the next authorization asks for the password again.
    page.goto(rp.authorization(live_server.url).url)
    page.get_by_label("Password", exact=True).wait_for()


def test_the_terms_in_french(make_page, live_server, make_rp, acme, person):
    publish(acme, "1")
    rp = make_rp()
    page = make_page(locale="fr-FR")
    auth = rp.authorization(live_server.url)
    page.goto(auth.url)
    sign_in(page, LONG_EMAIL, **FRENCH)

    page.wait_for_url(f"{live_server.url}/terms?**")
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.title() == "Conditions générales"
    region = page.get_by_role("region", name="Texte des conditions, version 1")
    assert region.get_attribute("lang") == "fr"
    region.get_by_role("heading", name="Conditions partenaire Monogoto").wait_for()
    assert "Monogoto partner terms" not in page.content()
    page.get_by_text("lisez et acceptez ces conditions (version 1)").wait_for()
    assert_page_ok(page, "French terms")

    page.get_by_role("button", name="Accepter", exact=True).click()
    assert callback_query(page, rp)["code"]
