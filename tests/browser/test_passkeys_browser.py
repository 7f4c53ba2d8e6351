"""Passkeys in a real browser (issue 8): Chromium's virtual authenticator (CDP WebAuthn,
ctap2 over the internal transport, resident keys, user verification) registers a passkey
from the account page, signs in with it as the second factor and passwordless, renames and
removes it; in English and French, on a desktop and a 360 px phone, axe-core clean."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization

from idp.extensions import db
from idp.factors.assurance import PHISHING_RESISTANT, set_mfa_policy
from idp.factors.registry import get_factor
from tests import outbox
from tests.browser.pages import (
    LONG_EMAIL,
    assert_page_ok,
    callback_query,
    desktop_only,
    sign_in,
)
from tests.support import login_code
from tests.webauthn_soft import for_app

pytestmark = pytest.mark.browser


def virtual_authenticator(page) -> tuple:
    """A platform passkey authenticator on this page: user verification always succeeds."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True,
        "automaticPresenceSimulation": True}})
    return cdp, added["authenticatorId"]


def stored_credentials(cdp, authenticator_id: str) -> list[dict]:
    return cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"]


# What a browser without conditional mediation (passkeys in the autofill) looks like.
NO_AUTOFILL = """Object.defineProperty(PublicKeyCredential, "isConditionalMediationAvailable",
                                      {value: undefined, configurable: true});"""


TEXT = {
    "en": {"email": "Email address", "password": "Password", "receive": "Receive Code",
           "sign_in": "Sign in",
           "code": "Sign-in code", "login": "Login", "passkeys": "Passkeys",
           "name": "Name of this passkey (optional)", "add": "Add a passkey",
           "added": "Your passkey was added.", "with_passkey": "Sign in with a passkey",
           "use": "Use my passkey", "heading_use": "Use your passkey",
           "rename_field": "New name for {}", "rename": "Rename {}",
           "renamed": "Your passkey was renamed.", "remove": "Remove {}",
           "removed": "Your passkey was removed.", "none": "You have no passkey yet.",
           "codes": "Your recovery codes", "saved_codes": "I saved my codes"},
    "fr": {"email": "Adresse e-mail", "password": "Mot de passe", "receive": "Recevoir le code",
           "sign_in": "Se connecter",
           "code": "Code de connexion", "login": "Connexion", "passkeys": "Clés d’accès",
           "name": "Nom de cette clé d’accès (facultatif)", "add": "Ajouter une clé d’accès",
           "added": "Votre clé d’accès a été ajoutée.",
           "with_passkey": "Se connecter avec une clé d’accès",
           "use": "Utiliser ma clé d’accès", "heading_use": "Utilisez votre clé d’accès",
           "rename_field": "Nouveau nom pour {}", "rename": "Renommer {}",
           "renamed": "Votre clé d’accès a été renommée.", "remove": "Retirer {}",
           "removed": "Votre clé d’accès a été retirée.",
           "none": "Vous n’avez pas encore de clé d’accès.",
           "codes": "Vos codes de secours", "saved_codes": "J’ai enregistré mes codes"},
}


def _password_and_code(page, text: dict) -> None:
    """On the IdP's own login page (no tenant known yet: "Sign in"), then the code."""
    sign_in(page, LONG_EMAIL, email_label=text["email"], password_label=text["password"],
            button=text["sign_in"])
    page.get_by_label(text["code"], exact=True).fill(login_code(LONG_EMAIL))
    page.get_by_role("button", name=text["login"], exact=True).click()


def _journey(page, live_server, client, rp, lang: str) -> None:
    text = TEXT[lang]
    cdp, authenticator = virtual_authenticator(page)

    # Signed in with the password and the emailed code: the account page adds a passkey.
    page.goto(f"{live_server.url}/login")
    assert page.locator("#email").get_attribute("autocomplete") == "username webauthn"
    _password_and_code(page, text)
    page.wait_for_url(lambda url: "/login" not in url)
    page.goto(f"{live_server.url}/account")
    page.get_by_role("link", name=text["passkeys"], exact=True).click()
    page.get_by_role("heading", name=text["passkeys"], exact=True).wait_for()
    page.get_by_text(text["none"]).wait_for()
    assert_page_ok(page, f"passkeys page, none yet ({lang})")
    page.get_by_label(text["name"], exact=True).fill("Work laptop")
    page.get_by_role("button", name=text["add"], exact=True).click()
    # The first strong factor: the recovery codes, shown once, then back to the passkeys.
    page.get_by_role("heading", name=text["codes"], exact=True).wait_for()
    assert page.locator("#recovery-codes li").count() == 10
    assert_page_ok(page, f"recovery codes after a first passkey ({lang})")
    page.get_by_role("link", name=text["saved_codes"], exact=True).click()
    page.get_by_role("status").filter(has_text=text["added"]).wait_for()
    page.get_by_role("heading", name="Work laptop").wait_for()
    assert_page_ok(page, f"passkeys page, one passkey ({lang})")
    [credential] = stored_credentials(cdp, authenticator)
    assert credential["isResidentCredential"] is True
    assert outbox.messages(LONG_EMAIL, "passkey_added")

    # Rename it.
    page.get_by_label(text["rename_field"].format("Work laptop"), exact=True).fill("Phone")
    page.get_by_role("button", name=text["rename"].format("Work laptop"), exact=True).click()
    page.get_by_role("status").filter(has_text=text["renamed"]).wait_for()
    page.get_by_role("heading", name="Phone").wait_for()

    # Passwordless through the browser's autofill (mediation "conditional"): the virtual
    # authenticator picks its passkey as soon as the login page asks, no email typed.
    page.context.clear_cookies()
    auth = rp.authorization(live_server.url)
    page.goto(auth.url)
    result = callback_query(page, rp)
    claims = rp.exchange(client, result["code"], auth.verifier)["id_token_claims"]
    assert claims["amr"] == ["hwk", "user", "mfa"] and claims["acr"] == "urn:idp:loa:3"

    # A browser without the autofill: the "Sign in with a passkey" button.
    page.add_init_script(NO_AUTOFILL)
    page.context.clear_cookies()
    auth = rp.authorization(live_server.url)
    page.goto(auth.url)
    page.get_by_role("button", name=text["with_passkey"], exact=True).wait_for()
    assert_page_ok(page, f"login page with the passkey button ({lang})")
    page.get_by_role("button", name=text["with_passkey"], exact=True).click()
    result = callback_query(page, rp)
    claims = rp.exchange(client, result["code"], auth.verifier)["id_token_claims"]
    assert claims["amr"] == ["hwk", "user", "mfa"] and claims["acr"] == "urn:idp:loa:3"

    # Second factor: the password, then the passkey instead of the emailed code.
    page.context.clear_cookies()
    codes = len(outbox.messages(LONG_EMAIL, "login_code"))
    auth = rp.authorization(live_server.url)
    page.goto(auth.url)
    sign_in(page, LONG_EMAIL, email_label=text["email"], password_label=text["password"],
            button=text["receive"])
    page.get_by_role("heading", name=text["heading_use"], exact=True).wait_for()
    assert_page_ok(page, f"passkey step ({lang})")
    page.get_by_role("button", name=text["use"], exact=True).click()
    result = callback_query(page, rp)
    claims = rp.exchange(client, result["code"], auth.verifier)["id_token_claims"]
    assert claims["amr"] == ["pwd", "hwk", "user", "mfa"]
    assert len(outbox.messages(LONG_EMAIL, "login_code")) == codes

    # Remove it (the sign-in above is recent and has a second factor).
    page.goto(f"{live_server.url}/account/passkeys")
    page.get_by_role("button", name=text["remove"].format("Phone"), exact=True).click()
    page.get_by_role("status").filter(has_text=text["removed"]).wait_for()
    page.get_by_text(text["none"]).wait_for()
    assert_page_ok(page, f"passkeys page, removed ({lang})")
    assert outbox.messages(LONG_EMAIL, "passkey_removed")


def test_passkeys_in_english(page, live_server, client, factory, required_rp):
    factory.user(LONG_EMAIL, given_name="Alexandrina")
    _journey(page, live_server, client, required_rp, "en")


def test_passkeys_in_french(make_page, live_server, client, factory, required_rp):
    factory.user(LONG_EMAIL, locale="fr")
    _journey(make_page(locale="fr-FR"), live_server, client, required_rp, "fr")


def test_a_phishing_resistant_tenant_walks_a_person_through_creating_a_passkey(
        page, live_server, client, factory, make_rp):
    tenant = factory.tenant()
    set_mfa_policy(tenant, PHISHING_RESISTANT)
    db.session.commit()
    rp = make_rp()
    factory.user(LONG_EMAIL)
    cdp, authenticator = virtual_authenticator(page)
    page.add_init_script(NO_AUTOFILL)
    auth = rp.authorization(live_server.url)
    page.goto(auth.url)
    text = TEXT["en"]
    sign_in(page, LONG_EMAIL, button=text["receive"])
    page.get_by_label(text["code"], exact=True).fill(login_code(LONG_EMAIL))
    page.get_by_role("button", name=text["login"], exact=True).click()
    page.get_by_role("heading", name="Create a passkey", exact=True).wait_for()
    assert_page_ok(page, "create a passkey at sign-in")
    page.get_by_label(text["name"], exact=True).fill("Phone")
    page.get_by_role("button", name="Create a passkey", exact=True).click()
    result = callback_query(page, rp)
    claims = rp.exchange(client, result["code"], auth.verifier)["id_token_claims"]
    assert claims["acr"] == "urn:idp:loa:3"
    assert len(stored_credentials(cdp, authenticator)) == 1
    assert outbox.messages(LONG_EMAIL, "passkey_added")


@desktop_only
def test_passkey_sign_in_under_the_real_csp(make_page, live_server, client, factory, make_rp):
    """webauthn.js loads and its fetch is allowed by the pages' own CSP (no bypass)."""
    rp = make_rp()
    person = factory.user(LONG_EMAIL)
    page = make_page(bypass_csp=False)
    problems = []
    page.on("console", lambda msg: problems.append(msg.text)
            if "Content Security Policy" in msg.text or "Refused to" in msg.text else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    cdp, authenticator = virtual_authenticator(page)
    # A passkey registered through the factor, then given to the browser's authenticator.
    soft = for_app(client.application)
    state: dict = {}
    options = get_factor("webauthn").enrol_start(person, state)["options"]
    get_factor("webauthn").enrol_confirm(person, {"credential": soft.create(options)}, state)
    db.session.commit()
    key = soft.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    cdp.send("WebAuthn.addCredential", {"authenticatorId": authenticator, "credential": {
        "credentialId": base64.b64encode(soft.credential_id).decode(),
        "isResidentCredential": True, "rpId": "localhost",
        "privateKey": base64.b64encode(key).decode(),
        "userHandle": base64.b64encode(base64.urlsafe_b64decode(
            soft.user_handle + "=" * (-len(soft.user_handle) % 4))).decode(),
        "signCount": 0}})
    auth = rp.authorization(live_server.url)
    page.goto(auth.url)
    callback_query(page, rp)  # the autofill signed in
    assert not problems, problems
