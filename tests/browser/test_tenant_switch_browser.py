"""Two companies, one email (issue 9, seed 003): the picker after the password, the
``organization`` hint, **Switch account** from a relying party without the password (and
the missing factor when the other company asks for more), the account-in-use notice, in
English and French, on a desktop and a 360 px phone, axe-core clean."""

from __future__ import annotations

import re

import pytest

from idp.extensions import db
from idp.factors.assurance import REQUIRED, set_mfa_policy
from tests.browser.pages import (
    LONG_EMAIL,
    assert_page_ok,
    callback_query,
    phone_only,
    sign_in,
)
from tests.smtp import text_of

pytestmark = pytest.mark.browser
GLOBEX = "Globex Corporation International Holdings"
CODE_RE = re.compile(r"^\s*(\d{6})\s*$", re.M)


@pytest.fixture
def strict_globex(two_tenant_person, factory):
    """Globex asks for the emailed code; Acme does not."""
    globex = factory.tenant("globex")
    set_mfa_policy(globex, REQUIRED)
    db.session.commit()
    return two_tenant_person


def _pick(page, name: str, button: str = "Continue") -> None:
    page.get_by_role("radio", name=name, exact=True).check()
    page.get_by_role("button", name=button, exact=True).click()


def test_switch_account_without_the_password_steps_up_for_the_stricter_company(
        page, live_server, app, smtp, strict_globex, make_rp, client):
    rp = make_rp(shared=True)
    auth = rp.authorization(live_server.url)
    page.goto(auth.url)
    sign_in(page, LONG_EMAIL)
    page.wait_for_url(f"{live_server.url}/login/select-tenant?**")
    _pick(page, "Acme")
    result = callback_query(page, rp)  # Acme is optional: no code asked
    claims = rp.exchange(client, result["code"], auth.verifier)["id_token_claims"]
    assert claims["org_slug"] == "acme" and claims["amr"] == ["pwd"]

    # The portal's "Switch account": prompt=select_account, no password asked.
    switch = rp.authorization(live_server.url, prompt="select_account")
    page.goto(switch.url)
    page.wait_for_url(f"{live_server.url}/select-tenant?**")
    page.get_by_text(f"Signed in as {LONG_EMAIL}").wait_for()
    assert page.get_by_label("Password", exact=True).count() == 0
    assert_page_ok(page, "picker again, signed in")
    _pick(page, GLOBEX)

    # Globex asks for more than this session has: the missing factor, not a denial.
    page.get_by_role("heading", name="Enter your code").wait_for()
    assert page.get_by_label("Password", exact=True).count() == 0
    code = CODE_RE.search(text_of(smtp.wait_for(app, LONG_EMAIL))).group(1)
    page.get_by_label("Sign-in code", exact=True).fill(code)
    page.get_by_role("button", name="Login", exact=True).click()
    result = callback_query(page, rp)
    assert result["state"] == switch.state
    claims = rp.exchange(client, result["code"], switch.verifier)["id_token_claims"]
    assert claims["org_slug"] == "globex" and claims["org_name"] == GLOBEX
    assert claims["org_role"] == "admin" and "mfa" in claims["amr"]


@phone_only
def test_the_organization_hint_skips_the_picker(page, live_server, two_tenant_person, make_rp,
                                                client):
    rp = make_rp(shared=True)
    auth = rp.authorization(live_server.url, organization="globex")
    page.goto(auth.url)
    sign_in(page, LONG_EMAIL)
    result = callback_query(page, rp)
    claims = rp.exchange(client, result["code"], auth.verifier)["id_token_claims"]
    assert claims["org_slug"] == "globex"


def test_the_notice_and_switch_account_on_the_account_page(page, live_server,
                                                          two_tenant_person):
    page.goto(f"{live_server.url}/login")
    sign_in(page, LONG_EMAIL)
    page.goto(f"{live_server.url}/account")
    notice = page.get_by_role("region", name="Account in use")
    notice.get_by_text(f"You are using the account {LONG_EMAIL}.").wait_for()
    assert_page_ok(page, "account page with the notice")

    notice.get_by_role("link", name="Switch account", exact=True).click()
    page.get_by_role("heading", name="Choose an organisation").wait_for()
    assert page.get_by_label("Password", exact=True).count() == 0
    assert_page_ok(page, "switch account picker")
    _pick(page, GLOBEX)
    page.wait_for_url(f"{live_server.url}/account")
    notice.get_by_text(f"You are using the account {LONG_EMAIL} for {GLOBEX}.").wait_for()

    # Closed with the keyboard: gone until the next sign-in.
    notice.get_by_role("button", name="Close the notice", exact=True).focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/account")
    page.get_by_role("heading", name="Your account").wait_for()
    assert page.get_by_role("region", name="Account in use").count() == 0
    page.goto(f"{live_server.url}/account")
    assert page.get_by_role("region", name="Account in use").count() == 0


def test_the_picker_and_the_notice_in_french(make_page, live_server, two_tenant_person,
                                            make_rp):
    page = make_page(locale="fr-FR")
    rp = make_rp(shared=True)
    page.goto(rp.authorization(live_server.url).url)
    sign_in(page, LONG_EMAIL, email_label="Adresse e-mail", password_label="Mot de passe",
            button="Se connecter")
    page.get_by_role("heading", name="Choisir une organisation").wait_for()
    page.get_by_text(f"Votre compte : {LONG_EMAIL}").wait_for()
    group = page.get_by_role("group", name=re.compile("organisation"))
    assert group.get_by_text("Administrateur", exact=True).is_visible()
    assert_page_ok(page, "picker, French")
    _pick(page, GLOBEX, button="Continuer")
    callback_query(page, rp)

    page.goto(f"{live_server.url}/account")
    notice = page.get_by_role("region", name="Compte utilisé")
    notice.get_by_text(f"Vous utilisez le compte {LONG_EMAIL} pour {GLOBEX}.").wait_for()
    notice.get_by_role("link", name="Changer de compte", exact=True).wait_for()
    assert_page_ok(page, "notice, French")
    notice.get_by_role("button", name="Fermer la notification", exact=True).click()
    page.get_by_role("heading", name="Votre compte").wait_for()
    assert page.get_by_role("region", name="Compte utilisé").count() == 0
