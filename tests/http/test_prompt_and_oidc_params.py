"""OIDC request parameters (OIDC Core 3.1.2.1): prompt, max_age, id_token_hint, claims,
ui_locales, login_hint, response_mode, and consent."""

from __future__ import annotations

import html
import json
import re

import pytest

from tests.http.helpers import assert_error_redirect, decode
from tests.support import PASSWORD, csrf_of, pkce_pair, query_of

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")


def _authorize(driver, rp, **params):
    _, challenge = pkce_pair()
    params.setdefault("code_challenge", challenge)
    params.setdefault("code_challenge_method", "S256")
    return driver.authorize(rp, **params)


def _is_login(response) -> bool:
    return response.status_code == 303 and response.headers["Location"].startswith("/login")


def _is_code(response, rp) -> bool:
    return (response.status_code in (302, 303)
            and response.headers["Location"].startswith(rp.redirect_uri + "?")
            and "code" in query_of(response.headers["Location"]))


# --- prompt=none --------------------------------------------------------------------


def test_prompt_none_without_session_is_login_required(app, driver, rp):
    response = _authorize(driver, rp, prompt="none", state="pn")
    assert_error_redirect(response, rp.redirect_uri, "login_required", state="pn",
                          issuer=app.config["IDP_ISSUER"])


def test_prompt_none_with_session_issues_a_code(driver, rp):
    driver.sign_in()
    assert _is_code(_authorize(driver, rp, prompt="none"), rp)


def test_prompt_none_without_consent_is_consent_required(app, factory, driver, alice):
    third_party = factory.client(third_party=True)
    driver.sign_in()
    response = _authorize(driver, third_party, prompt="none", state="c")
    assert_error_redirect(response, third_party.redirect_uri, "consent_required", state="c",
                          issuer=app.config["IDP_ISSUER"])


def test_prompt_none_after_consent_issues_a_code(factory, driver, alice):
    third_party = factory.client(third_party=True)
    driver.sign_in()
    _consent(driver, _authorize(driver, third_party, scope="openid email"), "allow")
    assert _is_code(_authorize(driver, third_party, prompt="none", scope="openid email"),
                    third_party)
    # More scope than consented to needs the person again.
    wider = _authorize(driver, third_party, prompt="none", scope="openid email profile")
    assert query_of(wider.headers["Location"])["error"] == "consent_required"


def test_prompt_none_with_two_organisations_is_account_selection_required(app, factory,
                                                                           driver, alice):
    shared = factory.client(shared=True)
    _second_membership(factory, alice)
    driver.sign_in()
    response = _authorize(driver, shared, prompt="none", state="a")
    assert_error_redirect(response, shared.redirect_uri, "account_selection_required",
                          state="a", issuer=app.config["IDP_ISSUER"])


# --- fresh login -----------------------------------------------------------------------


def test_prompt_login_forces_a_login(client, driver, rp):
    driver.sign_in()
    assert _is_code(_authorize(driver, rp), rp)
    response = _authorize(driver, rp, prompt="login")
    assert _is_login(response)
    after = driver.follow(driver.login(response))
    assert _is_code(after, rp)


def test_max_age_zero_forces_a_fresh_login(client, driver, rp):
    driver.sign_in()  # this very second
    response = _authorize(driver, rp, max_age="0")
    assert _is_login(response)
    assert _is_code(driver.follow(driver.login(response)), rp)


def test_max_age_forces_a_login_once_exceeded(app, client, driver, rp, clock):
    driver.sign_in()
    assert _is_code(_authorize(driver, rp, max_age="300"), rp)
    clock.advance(301)
    response = _authorize(driver, rp, max_age="300")
    assert _is_login(response)
    assert _is_code(driver.follow(driver.login(response)), rp)


def test_auth_time_reflects_the_fresh_login(app, client, driver, rp, clock):
    first = decode(client, driver.tokens(rp)["id_token"]).claims["auth_time"]
    clock.advance(600)
    second = decode(client, driver.tokens(rp, max_age="60")["id_token"]).claims
    assert second["auth_time"] >= first + 600


def test_id_token_hint_of_another_user_forces_a_login(client, factory, driver, rp, alice):
    factory.user("bob@example.com")
    bobs_id_token = driver.tokens(rp, email="bob@example.com")["id_token"]
    assert decode(client, bobs_id_token).claims["sub"] != alice.sub
    driver.sign_in("alice@example.com")
    assert _is_code(_authorize(driver, rp), rp)
    response = _authorize(driver, rp, id_token_hint=bobs_id_token)
    assert _is_login(response)
    with_prompt_none = _authorize(driver, rp, id_token_hint=bobs_id_token, prompt="none")
    assert query_of(with_prompt_none.headers["Location"])["error"] == "login_required"


def test_id_token_hint_of_the_signed_in_user_needs_no_login(client, driver, rp):
    id_token = driver.tokens(rp)["id_token"]
    assert _is_code(_authorize(driver, rp, id_token_hint=id_token, prompt="none"), rp)


def test_access_token_as_id_token_hint_is_invalid_request(app, client, driver, rp):
    access_token = driver.tokens(rp)["access_token"]
    response = _authorize(driver, rp, id_token_hint=access_token, state="h")
    assert_error_redirect(response, rp.redirect_uri, "invalid_request", state="h",
                          issuer=app.config["IDP_ISSUER"])


def test_expired_id_token_hint_is_still_a_hint(app, client, driver, rp, clock):
    id_token = driver.tokens(rp)["id_token"]
    clock.advance(app.config["IDP_ID_TOKEN_TTL"] + 60)
    assert _is_code(_authorize(driver, rp, id_token_hint=id_token, prompt="none"), rp)


# --- organisations -----------------------------------------------------------------------


def _second_membership(factory, user):
    from idp.extensions import db
    from idp.models import Membership

    beta = factory.tenant("beta", "Beta Logistics")
    db.session.add(Membership(user_id=user.id, tenant_id=beta.id, role="admin"))
    db.session.commit()
    return beta


def test_select_account_shows_the_picker(client, factory, driver, alice):
    shared = factory.client(shared=True)
    beta = _second_membership(factory, alice)
    driver.sign_in()
    response = driver.follow(_authorize(driver, shared, prompt="select_account"))
    assert response.status_code == 200 and "Beta Logistics" in response.text
    assert "Acme" in response.text
    flow = re.search(r'action="([^"]*select-tenant[^"]*)"', response.text).group(1)
    chosen = client.post(html.unescape(flow), data={"tenant": str(beta.id),
                                                    "csrf_token": csrf_of(response.text)})
    result = driver.follow(chosen)
    assert _is_code(result, shared)


def test_select_account_choice_reaches_the_tokens(client, factory, driver, alice):
    shared = factory.client(shared=True)
    beta = _second_membership(factory, alice)
    verifier, challenge = pkce_pair()
    response = driver.follow(driver.login(driver.authorize(
        shared, code_challenge=challenge, code_challenge_method="S256")))
    assert response.status_code == 200, "two memberships: the picker comes first"
    flow = html.unescape(re.search(r'action="([^"]*select-tenant[^"]*)"', response.text).group(1))
    result = driver.follow(client.post(flow, data={"tenant": str(beta.id),
                                                   "csrf_token": csrf_of(response.text)}))
    code = query_of(result.headers["Location"])["code"]
    tokens = driver.exchange(shared, {"code": code, "_verifier": verifier}).get_json()
    claims = decode(client, tokens["id_token"]).claims
    assert claims["org_slug"] == "beta" and claims["org_role"] == "admin"


def test_picker_refuses_an_organisation_not_offered(client, factory, driver, alice):
    shared = factory.client(shared=True)
    _second_membership(factory, alice)
    other = factory.tenant("gamma", "Gamma")
    driver.sign_in()
    page = driver.follow(_authorize(driver, shared, prompt="select_account"))
    flow = html.unescape(re.search(r'action="([^"]*select-tenant[^"]*)"', page.text).group(1))
    refused = client.post(flow, data={"tenant": str(other.id), "csrf_token": csrf_of(page.text)})
    assert refused.status_code == 400 and "Location" not in refused.headers


def test_picker_post_needs_the_csrf_token(client, factory, driver, alice):
    shared = factory.client(shared=True)
    beta = _second_membership(factory, alice)
    driver.sign_in()
    page = driver.follow(_authorize(driver, shared, prompt="select_account"))
    flow = html.unescape(re.search(r'action="([^"]*select-tenant[^"]*)"', page.text).group(1))
    forged = client.post(flow, data={"tenant": str(beta.id)})
    assert forged.status_code == 400 and "Location" not in forged.headers


def test_organization_parameter_skips_the_picker(client, factory, driver, alice):
    shared = factory.client(shared=True)
    _second_membership(factory, alice)
    driver.sign_in()
    response = _authorize(driver, shared, organization="beta")
    assert _is_code(response, shared)


def test_user_without_access_to_the_clients_tenant_is_denied(app, factory, driver, alice):
    beta = factory.tenant("beta", "Beta")
    beta_portal = factory.client(tenant=beta)
    driver.sign_in()
    response = _authorize(driver, beta_portal, state="x")
    assert_error_redirect(response, beta_portal.redirect_uri, "access_denied", state="x",
                          issuer=app.config["IDP_ISSUER"])


# --- claims / acr ------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [
    {"essential": True, "value": "urn:example:hardware-key"},
    {"essential": True, "values": ["urn:example:hardware-key", "urn:example:other"]},
])
def test_essential_acr_that_cannot_be_met_is_an_error(app, driver, rp, spec):
    """No factor reaches these values: an error. (urn:idp:loa:2 is a step-up instead,
    tests/http/test_login_code.py.)"""
    driver.sign_in()
    claims = json.dumps({"id_token": {"acr": spec}})
    response = _authorize(driver, rp, claims=claims, state="acr")
    assert_error_redirect(response, rp.redirect_uri, "access_denied", state="acr",
                          issuer=app.config["IDP_ISSUER"])


@pytest.mark.parametrize("spec", [
    {"essential": True, "value": "urn:idp:loa:1"},
    {"essential": True},
    {"essential": False, "value": "urn:idp:loa:2"},
    None,
])
def test_acr_that_can_be_met_issues_a_code(client, driver, rp, spec):
    claims = json.dumps({"id_token": {"acr": spec}})
    tokens = driver.tokens(rp, claims=claims)
    assert decode(client, tokens["id_token"]).claims["acr"] == "urn:idp:loa:1"


def test_claims_request_adds_id_token_claims(client, factory, driver):
    factory.user(given_name="Alice")
    rp = factory.client()
    claims = json.dumps({"id_token": {"given_name": None}})
    id_token = decode(client, driver.tokens(rp, scope="openid", claims=claims)["id_token"])
    assert id_token.claims["given_name"] == "Alice" and "email" not in id_token.claims


# --- pages -----------------------------------------------------------------------------


@pytest.mark.parametrize("ui_locales", ["fr", "fr-CA en", "de fr"])
def test_ui_locales_gives_a_french_page(client, driver, rp, ui_locales):
    page = driver.follow(_authorize(driver, rp, ui_locales=ui_locales))
    assert page.status_code == 200
    assert '<html lang="fr">' in page.text
    english = driver.follow(_authorize(driver, rp, ui_locales="en"))
    assert '<html lang="en">' in english.text


def test_login_hint_prefills_the_email(client, driver, rp):
    page = driver.follow(_authorize(driver, rp, login_hint="hint@example.com"))
    field = re.search(r'<input id="email"[^>]*>', page.text, re.S).group(0)
    assert 'value="hint@example.com"' in field


def test_login_hint_is_escaped(client, driver, rp):
    page = driver.follow(_authorize(driver, rp, login_hint='"><script>alert(1)</script>'))
    assert "<script>alert(1)</script>" not in page.text


def test_form_post_renders_an_auto_submitting_form(app, client, driver, rp):
    driver.sign_in()
    state = "st \"<é>"
    response = _authorize(driver, rp, response_mode="form_post", state=state)
    assert response.status_code == 200 and "Location" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"
    page = response.text
    form = re.search(r'<form method="post" action="([^"]+)"', page)
    assert form and html.unescape(form.group(1)) == rp.redirect_uri
    fields = {m.group(1): html.unescape(m.group(2)) for m in re.finditer(
        r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)}
    assert fields["code"] and fields["state"] == state
    assert fields["iss"] == app.config["IDP_ISSUER"]
    nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"]).group(1)
    assert f'<script nonce="{nonce}">' in page and ".submit()" in page


def test_form_post_carries_errors_with_iss(app, client, driver, rp):
    response = _authorize(driver, rp, response_mode="form_post", prompt="none", state="e")
    assert response.status_code == 200
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"',
                             response.text))
    assert fields["error"] == "login_required" and fields["state"] == "e"
    assert html.unescape(fields["iss"]) == app.config["IDP_ISSUER"]


# --- consent -----------------------------------------------------------------------------


def _consent(driver, response, decision):
    page = driver.follow(response)
    assert page.status_code == 200 and 'name="decision"' in page.text, page.status_code
    action = html.unescape(re.search(r'action="([^"]*consent[^"]*)"', page.text).group(1))
    return driver.http.post(action, data={"decision": decision,
                                          "csrf_token": csrf_of(page.text)})


def test_consent_allow_issues_a_code(factory, driver, alice):
    third_party = factory.client(third_party=True)
    driver.sign_in()
    response = _consent(driver, _authorize(driver, third_party), "allow")
    assert response.status_code == 303
    assert _is_code(driver.follow(response), third_party)


def test_consent_deny_is_access_denied_with_iss(app, factory, driver, alice):
    third_party = factory.client(third_party=True)
    driver.sign_in()
    response = _consent(driver, _authorize(driver, third_party, state="d"), "deny")
    assert response.status_code == 303
    assert_error_redirect(response, third_party.redirect_uri, "access_denied", state="d",
                          issuer=app.config["IDP_ISSUER"])


def test_consent_post_needs_the_csrf_token(factory, driver, alice):
    third_party = factory.client(third_party=True)
    driver.sign_in()
    page = driver.follow(_authorize(driver, third_party))
    action = html.unescape(re.search(r'action="([^"]*consent[^"]*)"', page.text).group(1))
    forged = driver.http.post(action, data={"decision": "allow"})
    assert forged.status_code == 400 and "Location" not in forged.headers
    assert query_of(_authorize(driver, third_party, prompt="none")
                    .headers["Location"])["error"] == "consent_required"


def test_prompt_consent_asks_again(factory, driver, rp):
    driver.sign_in()
    response = driver.follow(_authorize(driver, rp, prompt="consent"))
    assert response.status_code == 200 and 'name="decision"' in response.text


def test_full_login_with_consent_and_password(factory, driver, alice):
    third_party = factory.client(third_party=True)
    response = driver.login(_authorize(driver, third_party), password=PASSWORD)
    response = _consent(driver, response, "allow")
    assert _is_code(driver.follow(response), third_party)


def test_decisions_in_a_flow_belong_to_who_made_them(app, factory, driver, alice):
    """A flow paused at consent survives a sign-out and sign-in (flows live in the browser
    session): whoever resumes it must not inherit the organisation chosen for someone else."""
    third_party = factory.client(third_party=True)  # a client of acme only
    factory.user("mallory@example.com", tenant=factory.tenant("other", "Other"))
    paused = driver.follow(driver.login(_authorize(driver, third_party, state="p")))
    assert 'name="decision"' in paused.text  # alice, of acme, is asked to consent
    flow = re.search(r"flow=([\w-]+)", paused.text).group(1)

    driver.sign_in("mallory@example.com")  # not a member of acme
    resumed = driver.http.get("/oauth/authorize/resume", query_string={"flow": flow})
    assert_error_redirect(resumed, third_party.redirect_uri, "access_denied", state="p",
                          issuer=app.config["IDP_ISSUER"])



# --- claims requested one by one are covered by consent ----------------------------------

EMAIL_AND_NAME = json.dumps({"id_token": {"email": None}, "userinfo": {"name": None}})


def _consent_page(driver, response):
    page = driver.follow(response)
    assert page.status_code == 200 and 'name="decision"' in page.text, page.status_code
    return page


def _allow_and_redeem(driver, rp, **params) -> tuple[str, dict]:
    """Authorize with PKCE, allow on the consent page; the consent page's text and tokens."""
    verifier, challenge = pkce_pair()
    page = _consent_page(driver, driver.authorize(rp, code_challenge=challenge,
                                                  code_challenge_method="S256", **params))
    action = html.unescape(re.search(r'action="([^"]*consent[^"]*)"', page.text).group(1))
    allowed = driver.http.post(action, data={"decision": "allow",
                                             "csrf_token": csrf_of(page.text)})
    location = driver.follow(allowed).headers["Location"]
    tokens = driver.exchange(rp, {"code": query_of(location)["code"], "_verifier": verifier})
    assert tokens.status_code == 200, tokens.get_json()
    return page.text, tokens.get_json()


def _userinfo(driver, tokens) -> dict:
    return driver.http.get("/oauth/userinfo", headers={
        "Authorization": f"Bearer {tokens['access_token']}"}).get_json()


def _consent_row(user, client_id):
    from sqlalchemy import select

    from idp.extensions import db
    from idp.models import Consent

    return db.session.scalar(select(Consent).where(Consent.user_id == user.id,
                                                   Consent.client_id == client_id))


@pytest.fixture
def third_party(factory):
    factory.user(given_name="Alice", family_name="Martin")
    return factory.client(third_party=True)


def test_consent_page_lists_the_claims_requested_one_by_one(client, driver, third_party):
    """scope=openid with claims for email and name: the page listed only "confirm who you
    are", then the ID token and userinfo carried both."""
    driver.sign_in()
    page, tokens = _allow_and_redeem(driver, third_party, scope="openid",
                                     claims=EMAIL_AND_NAME)
    assert "See your email address" in page and "See your name" in page
    assert decode(client, tokens["id_token"]).claims["email"] == "alice@example.com"
    assert _userinfo(driver, tokens)["name"] == "Alice Martin"


def test_the_consent_page_speaks_french_for_claims(driver, third_party):
    driver.sign_in()
    page = _consent_page(driver, _authorize(driver, third_party, scope="openid",
                                            claims=EMAIL_AND_NAME, ui_locales="fr"))
    assert "Voir votre adresse e-mail" in page.text and "Voir votre nom" in page.text


def test_consent_is_stored_with_its_claims(driver, third_party):
    from idp.models import User

    driver.sign_in()
    _allow_and_redeem(driver, third_party, scope="openid", claims=EMAIL_AND_NAME)
    alice = User.query.filter_by(email="alice@example.com").one()
    row = _consent_row(alice, third_party.client_id)
    assert row.scope.split() == ["openid"] and sorted(row.claims.split()) == ["email", "name"]


def test_consent_to_openid_does_not_cover_claims(app, driver, third_party):
    driver.sign_in()
    _consent(driver, _authorize(driver, third_party, scope="openid"), "allow")
    assert _is_code(_authorize(driver, third_party, scope="openid", prompt="none"), third_party)
    silent = _authorize(driver, third_party, scope="openid", prompt="none",
                        claims=EMAIL_AND_NAME, state="pn")
    assert_error_redirect(silent, third_party.redirect_uri, "consent_required", state="pn",
                          issuer=app.config["IDP_ISSUER"])
    # Without prompt=none, the person is asked, for the claims.
    page = _consent_page(driver, _authorize(driver, third_party, scope="openid",
                                            claims=EMAIL_AND_NAME))
    assert "See your email address" in page.text


def test_consented_claims_need_no_consent_again(client, driver, third_party):
    driver.sign_in()
    _allow_and_redeem(driver, third_party, scope="openid", claims=EMAIL_AND_NAME)
    again = _authorize(driver, third_party, scope="openid", prompt="none",
                       claims=json.dumps({"id_token": {"email": None}}))
    assert _is_code(again, third_party)
    wider = _authorize(driver, third_party, scope="openid", prompt="none",
                       claims=json.dumps({"id_token": {"email": None, "given_name": None}}))
    assert query_of(wider.headers["Location"])["error"] == "consent_required"


def test_consent_to_a_scope_covers_its_claims(driver, third_party):
    driver.sign_in()
    _consent(driver, _authorize(driver, third_party, scope="openid email"), "allow")
    covered = _authorize(driver, third_party, scope="openid", prompt="none",
                         claims=json.dumps({"id_token": {"email_verified": None}}))
    assert _is_code(covered, third_party)


def test_claims_the_client_may_not_ask_for_are_not_asked_nor_released(client, driver,
                                                                      third_party):
    from idp.extensions import db
    from idp.models import Client

    db.session.query(Client).filter_by(client_id=third_party.client_id).one().scope = \
        "openid email"
    db.session.commit()
    driver.sign_in()
    page, tokens = _allow_and_redeem(driver, third_party, scope="openid",
                                     claims=EMAIL_AND_NAME)
    assert "See your email address" in page and "See your name" not in page
    assert "email" in decode(client, tokens["id_token"]).claims
    assert "name" not in _userinfo(driver, tokens)


def test_first_party_claims_are_capped_by_the_clients_scopes(client, factory, driver):
    """No consent page for a first-party client, but still nothing beyond its scopes."""
    from idp.extensions import db
    from idp.models import Client

    factory.user(given_name="Alice", family_name="Martin")
    rp = factory.client()
    db.session.query(Client).filter_by(client_id=rp.client_id).one().scope = "openid email"
    db.session.commit()
    claims = json.dumps({"id_token": {"email": None, "given_name": None},
                         "userinfo": {"name": None, "email": None}})
    tokens = driver.tokens(rp, scope="openid", claims=claims)
    id_token = decode(client, tokens["id_token"]).claims
    assert id_token["email"] == "alice@example.com" and "given_name" not in id_token
    info = _userinfo(driver, tokens)
    assert info["email"] == "alice@example.com" and "name" not in info


def test_consent_page_of_a_client_removed_meanwhile_ends_the_flow(driver, third_party):
    from idp.extensions import db
    from idp.models import Client

    driver.sign_in()
    page = _consent_page(driver, _authorize(driver, third_party, claims=EMAIL_AND_NAME))
    action = html.unescape(re.search(r'action="([^"]*consent[^"]*)"', page.text).group(1))
    db.session.delete(db.session.query(Client).filter_by(client_id=third_party.client_id).one())
    db.session.commit()
    for response in (driver.http.get(action), driver.http.post(action, data={
            "decision": "allow", "csrf_token": csrf_of(page.text)})):
        ended = driver.follow(response)
        assert ended.status_code == 400 and "Location" not in ended.headers
