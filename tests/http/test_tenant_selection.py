"""The tenant step (issue 9): the company is picked after the password and before the
second factor, so the picked company's MFA policy decides it; org claims in every token;
refresh bound to the membership and to an active tenant; bad picker POSTs."""

from __future__ import annotations

import html
import re

import pytest

from idp.extensions import db
from idp.factors.assurance import REQUIRED, set_mfa_policy
from idp.models import Membership
from idp.services import clients, memberships
from idp.services.tenants import get_by_slug
from tests.http.helpers import assert_error_page, assert_error_redirect, bearer, decode
from tests.outbox import messages
from tests.support import CODE_PAGE, PASSWORD, csrf_of, login_code, pkce_pair, query_of

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")
EMAIL = "alice@example.com"
PICKER = "/login/select-tenant"
ACTION_RE = re.compile(r'<form method="post" action="([^"]*(?:select-tenant|switch-account)[^"]*)"')


@pytest.fixture
def beta(factory, alice):
    """alice is also an admin of Beta Logistics, whose policy asks for a second factor."""
    tenant = factory.tenant("beta", "Beta Logistics")
    set_mfa_policy(tenant, REQUIRED)
    db.session.add(Membership(user_id=alice.id, tenant_id=tenant.id, role="admin"))
    db.session.commit()
    return tenant


@pytest.fixture
def shared(factory, alice, beta):
    return factory.client(shared=True)


def _authorize(driver, rp, **params):
    verifier, challenge = pkce_pair()
    response = driver.authorize(rp, code_challenge=challenge, code_challenge_method="S256",
                                **params)
    return response, verifier


def _password(driver, response):
    """From the login redirect: the password; returns the answer (a redirect)."""
    return driver.login(response)


def _picker_action(page) -> str:
    return html.unescape(ACTION_RE.search(page.text).group(1))


def _pick(client, page, tenant_id) -> object:
    return client.post(_picker_action(page), data={"tenant": str(tenant_id),
                                                   "csrf_token": csrf_of(page.text)})


def _to_pending_picker(client, driver, rp, **params):
    response, verifier = _authorize(driver, rp, **params)
    answer = _password(driver, response)
    assert answer.status_code == 303 and answer.headers["Location"].startswith(PICKER)
    page = client.get(answer.headers["Location"])
    assert page.status_code == 200
    return page, verifier


def _code_of(driver, response, rp) -> str:
    response = driver.follow(response)
    location = response.headers["Location"]
    assert location.startswith(rp.redirect_uri + "?"), location
    return query_of(location)["code"]


def _tokens(driver, rp, code, verifier) -> dict:
    response = driver.exchange(rp, {"code": code, "_verifier": verifier})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _refresh(driver, rp, token):
    return driver.token(rp, grant_type="refresh_token", refresh_token=token)


def _signed_in(client) -> bool:
    return client.get("/account").status_code == 200


# --- the pick comes before the second factor ---------------------------------------------


def test_the_pending_person_picks_before_the_second_factor(client, driver, alice, beta, shared):
    page, _verifier = _to_pending_picker(client, driver, shared)
    assert "Beta Logistics" in page.text and "Acme" in page.text
    assert "Administrator" in page.text and "Member" in page.text  # the role of each
    assert not _signed_in(client), "a pending person is not signed in"
    assert messages(EMAIL, "login_code") == [], "no second factor before the pick"


def test_an_optional_company_needs_no_second_factor_even_beside_a_stricter_one(
        client, driver, alice, beta, shared):
    """The known gap: the strictest membership used to decide before the pick."""
    page, verifier = _to_pending_picker(client, driver, shared)
    acme = get_by_slug("acme")
    code = _code_of(driver, _pick(client, page, acme.id), shared)
    assert messages(EMAIL, "login_code") == []
    claims = decode(client, _tokens(driver, shared, code, verifier)["id_token"]).claims
    assert claims["org_slug"] == "acme" and claims["amr"] == ["pwd"]


def test_the_picked_companys_policy_asks_the_second_factor(client, driver, alice, beta,
                                                           shared):
    page, verifier = _to_pending_picker(client, driver, shared)
    answer = _pick(client, page, beta.id)
    assert answer.status_code == 303 and answer.headers["Location"].startswith(CODE_PAGE)
    assert not _signed_in(client)
    code = _code_of(driver, driver.answer_code(answer), shared)
    claims = decode(client, _tokens(driver, shared, code, verifier)["id_token"]).claims
    assert claims["org_slug"] == "beta" and "mfa" in claims["amr"]


def test_one_membership_skips_the_picker(client, driver, rp):
    response, _ = _authorize(driver, rp)
    answer = _password(driver, response)
    assert not answer.headers["Location"].startswith(PICKER)


def test_organization_hint_skips_the_picker(client, driver, alice, beta, shared):
    response, verifier = _authorize(driver, shared, organization="beta")
    answer = _password(driver, response)
    assert answer.headers["Location"].startswith(CODE_PAGE), "beta's policy, no picker"
    code = _code_of(driver, driver.answer_code(answer), shared)
    claims = decode(client, _tokens(driver, shared, code, verifier)["id_token"]).claims
    assert claims["org_slug"] == "beta"


def _picker_body(page) -> str:
    """The page without what differs per request (flow ids, CSRF token, nonces)."""
    return re.sub(r'(signin|flow)=[^"&]+|value="[^"]{20,}"|nonce-[^\'"]+', "", page.text)


def test_an_organization_not_yours_is_ignored_whether_it_exists_or_not(
        client, factory, driver, alice, beta, shared):
    factory.tenant("gamma", "Gamma Secret Works")  # exists; alice is not in it
    pages = []
    for slug in ("gamma", "no-such-tenant"):
        page, _ = _to_pending_picker(client, driver, shared, organization=slug)
        pages.append(page)
    assert "Gamma" not in pages[0].text
    assert pages[0].status_code == pages[1].status_code == 200
    assert _picker_body(pages[0]) == _picker_body(pages[1])


def test_prompt_none_when_a_pick_is_needed(app, client, driver, alice, beta, shared):
    driver.answer_code(driver.sign_in())  # outside any client: no company in use yet
    response, _ = _authorize(driver, shared, prompt="none", state="pn")
    assert_error_redirect(response, shared.redirect_uri, "account_selection_required",
                          state="pn", issuer=app.config["IDP_ISSUER"])


def test_the_company_in_use_picks_itself_for_the_next_client(client, driver, alice, beta,
                                                            shared):
    page, _ = _to_pending_picker(client, driver, shared)
    _code_of(driver, _pick(client, page, get_by_slug("acme").id), shared)
    response, _ = _authorize(driver, shared, prompt="none")
    assert "code" in query_of(response.headers["Location"])


# --- bad picker POSTs ----------------------------------------------------------------------


@pytest.mark.parametrize("forged", ["gamma", "not-served", "abc", "1.5", "", "9" * 40, "-1"])
def test_a_forged_tenant_in_the_pending_picker_is_refused(client, factory, driver, alice, beta,
                                                          forged):
    gamma = factory.tenant("gamma", "Gamma")
    listed = factory.client(shared=True)
    clients.share_with(_client_row(listed), [get_by_slug("acme"), beta])
    db.session.add(Membership(user_id=alice.id, tenant_id=gamma.id, role="member"))
    other = factory.tenant("other", "Other")  # served by nobody here; alice is not in it
    db.session.commit()
    value = {"gamma": str(other.id), "not-served": str(gamma.id)}.get(forged, forged)
    page, _ = _to_pending_picker(client, driver, listed)
    assert "Gamma" not in page.text, "the client does not serve gamma: not offered"
    refused = client.post(_picker_action(page), data={"tenant": value,
                                                      "csrf_token": csrf_of(page.text)})
    assert refused.status_code == 400 and "Location" not in refused.headers
    assert "Choose one of the listed organisations." in refused.text
    assert not _signed_in(client)


def _client_row(registered):
    from idp.models import Client

    return db.session.query(Client).filter_by(client_id=registered.client_id).one()


def test_the_picker_error_is_translated(client, driver, alice, beta, shared):
    response, _ = _authorize(driver, shared, ui_locales="fr")
    answer = _password(driver, response)
    page = client.get(answer.headers["Location"])
    assert "Choisir une organisation" in page.text
    refused = client.post(_picker_action(page), data={"tenant": "x",
                                                      "csrf_token": csrf_of(page.text)})
    assert refused.status_code == 400
    assert "Choisissez l'une des organisations proposées." in html.unescape(refused.text)


def test_a_replayed_pending_picker_post_is_refused(client, driver, alice, beta, shared):
    page, _ = _to_pending_picker(client, driver, shared)
    first = _pick(client, page, beta.id)
    assert first.headers["Location"].startswith(CODE_PAGE)
    replay = _pick(client, page, get_by_slug("acme").id)
    assert_error_page(replay)
    # The replay did not change the company: the code page still waits for beta's factor.
    assert client.get(first.headers["Location"]).status_code == 200


def test_a_replayed_signed_in_picker_post_is_refused(client, driver, alice, beta, shared):
    driver.answer_code(driver.sign_in())
    response, _ = _authorize(driver, shared, prompt="select_account")
    page = driver.follow(response)
    assert page.status_code == 200 and "select-tenant" in page.text
    acme = get_by_slug("acme")
    _code_of(driver, _pick(client, page, acme.id), shared)
    assert_error_page(_pick(client, page, acme.id))


def test_the_picker_post_needs_the_csrf_token(client, driver, alice, beta, shared):
    page, _ = _to_pending_picker(client, driver, shared)
    forged = client.post(_picker_action(page), data={"tenant": str(beta.id)})
    assert forged.status_code == 400 and "Location" not in forged.headers


# --- switching without the password ------------------------------------------------------


def test_select_account_switches_without_the_password_and_steps_up(client, driver, alice,
                                                                   beta, shared):
    page, _ = _to_pending_picker(client, driver, shared)
    _code_of(driver, _pick(client, page, get_by_slug("acme").id), shared)
    response, verifier = _authorize(driver, shared, prompt="select_account")
    page = driver.follow(response)
    assert page.status_code == 200 and 'name="password"' not in page.text
    answer = driver.follow(_pick(client, page, beta.id))
    # Beta asks for more than this session has: the missing factor, not a denial.
    assert answer.status_code == 200 and "Enter your code" in answer.text
    assert 'name="password"' not in answer.text
    code_page = answer.request.path + "?" + answer.request.query_string.decode()
    done = client.post(code_page, data={"code": login_code(), "csrf_token": csrf_of(answer.text)})
    code = _code_of(driver, done, shared)
    claims = decode(client, _tokens(driver, shared, code, verifier)["id_token"]).claims
    assert claims["org_slug"] == "beta" and "mfa" in claims["amr"]


def test_select_account_does_not_switch_the_company_in_use_before_the_missing_factor(
        client, driver, alice, beta, shared):
    """Like Switch account on the account page: a stricter company is the one in use only
    once its factor is done (else a session of one factor says, and next picks, Beta)."""
    page, _ = _to_pending_picker(client, driver, shared)
    _code_of(driver, _pick(client, page, get_by_slug("acme").id), shared)
    page = driver.follow(_authorize(driver, shared, prompt="select_account")[0])
    answer = driver.follow(_pick(client, page, beta.id))
    assert "Enter your code" in answer.text  # the step-up is pending
    assert "for Acme." in client.get("/account").text, "not switched before the factor"
    response, _ = _authorize(driver, shared, prompt="none")
    assert "code" in query_of(response.headers["Location"]), "Acme is still the one in use"


def test_switch_account_on_a_hosted_page_shows_the_picker_again(client, factory, driver,
                                                                alice, beta):
    consenting = factory.client(shared=True, third_party=True)
    page, verifier = _to_pending_picker(client, driver, consenting)
    consent = driver.follow(_pick(client, page, get_by_slug("acme").id))
    assert "Switch account" in consent.text
    flow = re.search(r'name="flow" value="([^"]+)"', consent.text).group(1)
    again = driver.follow(client.post("/switch-account/again", data={
        "flow": flow, "csrf_token": csrf_of(consent.text)}))
    assert again.status_code == 200 and "Choose an organisation" in again.text
    assert 'name="password"' not in again.text


def test_switch_account_from_the_account_page(client, factory, driver, alice):
    gamma = factory.tenant("gamma", "Gamma Freight")
    db.session.add(Membership(user_id=alice.id, tenant_id=gamma.id, role="member"))
    db.session.commit()
    driver.sign_in()
    account = client.get("/account")
    assert "You are using the account alice@example.com." in account.text
    page = client.get("/switch-account")
    assert page.status_code == 200 and "Gamma Freight" in page.text
    done = _pick(client, page, gamma.id)
    assert done.status_code == 303
    assert "You are using the account alice@example.com for Gamma Freight." in \
        client.get("/account").text
    refused = client.post("/switch-account", data={"tenant": "999999",
                                                   "csrf_token": csrf_of(page.text)})
    assert refused.status_code == 400 and "Choose one of the listed" in refused.text


def test_switch_account_needs_a_session(client):
    assert client.get("/switch-account").headers["Location"].startswith("/login")


def test_the_notice_closes_until_the_next_sign_in(client, driver, rp):
    driver.sign_in()
    page = client.get("/account")
    assert "You are using the account alice@example.com for Acme." in page.text
    closed = client.post("/account/notice/close", data={"next": "//evil.example/x",
                                                        "csrf_token": csrf_of(page.text)})
    assert closed.headers["Location"] == "/account", "never another site"
    assert "You are using the account" not in client.get("/account").text
    assert client.post("/account/notice/close", data={"next": "/account"}).status_code == 400
    driver.sign_in()
    assert "You are using the account" in client.get("/account").text


@pytest.mark.parametrize("target", ["/\t/evil.example/x", "/\n/evil.example", "/ /evil.example",
                                    "/\x0b/evil.example", "/\x7f/evil.example"])
def test_the_notice_never_sends_to_another_site_through_a_control_character(client, driver,
                                                                              rp, target):
    """Browsers drop tabs and newlines from a URL: ``/<tab>/evil`` is ``//evil``. The 404
    page of ``/%09/evil.example`` carries that path in the notice's close form."""
    driver.sign_in()
    page = client.get("/%09/evil.example")
    assert 'name="next" value="/\t/evil.example"' in page.text
    closed = client.post("/account/notice/close", data={"next": target,
                                                        "csrf_token": csrf_of(page.text)})
    assert closed.status_code == 303 and closed.headers["Location"] == "/account"


# --- tokens: claims, refresh bound to the membership and the tenant ----------------------


def _beta_tokens(client, driver, shared, scope="openid profile email offline_access"):
    response, verifier = _authorize(driver, shared, organization="beta", scope=scope)
    code = _code_of(driver, driver.answer_code(_password(driver, response)), shared)
    return _tokens(driver, shared, code, verifier)


ORG = {"org_slug": "beta", "org_name": "Beta Logistics", "org_role": "admin"}


def test_org_claims_in_every_token_and_after_refresh(client, driver, alice, beta, shared):
    tokens = _beta_tokens(client, driver, shared)
    for token in (tokens["id_token"], tokens["access_token"]):
        claims = decode(client, token).claims
        assert {k: claims[k] for k in ORG} == ORG and claims["org_id"] == str(beta.id)
    info = client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).get_json()
    assert {k: info[k] for k in ORG} == ORG and info["org_id"] == str(beta.id)
    fresh = _refresh(driver, shared, tokens["refresh_token"])
    assert fresh.status_code == 200
    claims = decode(client, fresh.get_json()["access_token"]).claims
    assert {k: claims[k] for k in ORG} == ORG, "a refresh keeps the chosen tenant"


def test_refresh_after_the_membership_is_removed_is_invalid_grant(client, driver, alice, beta,
                                                                  shared):
    tokens = _beta_tokens(client, driver, shared)
    memberships.remove(beta, EMAIL)
    db.session.commit()
    response = _refresh(driver, shared, tokens["refresh_token"])
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"


def test_refresh_after_the_tenant_is_disabled_is_invalid_grant(client, driver, alice, beta,
                                                               shared):
    tokens = _beta_tokens(client, driver, shared)
    memberships.set_active(beta, False)
    db.session.commit()
    response = _refresh(driver, shared, tokens["refresh_token"])
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"
    memberships.set_active(beta, True)
    db.session.commit()
    assert _refresh(driver, shared, tokens["refresh_token"]).status_code == 200


def test_refresh_after_the_client_stops_serving_the_tenant_is_invalid_grant(
        client, driver, alice, beta, shared):
    """A tenant taken off a shared client's list: its people's refresh tokens there die."""
    tokens = _beta_tokens(client, driver, shared)
    clients.share_with(_client_row(shared), [get_by_slug("acme")])
    db.session.commit()
    refreshed = _refresh(driver, shared, tokens["refresh_token"])
    assert refreshed.status_code == 400 and refreshed.get_json()["error"] == "invalid_grant"


def test_a_code_redeemed_after_the_tenant_is_disabled_is_invalid_grant(client, driver, alice,
                                                                       beta, shared):
    """Disabled, a tenant signs nobody in: a code issued just before is worth nothing."""
    response, verifier = _authorize(driver, shared, organization="beta")
    code = _code_of(driver, driver.answer_code(_password(driver, response)), shared)
    memberships.set_active(beta, False)
    db.session.commit()
    redeemed = driver.exchange(shared, {"code": code, "_verifier": verifier})
    assert redeemed.status_code == 400 and redeemed.get_json()["error"] == "invalid_grant"


def test_a_disabled_tenant_is_refused_at_authorization(app, factory, driver, alice):
    acme = get_by_slug("acme")
    portal = factory.client(tenant=acme)
    memberships.set_active(acme, False)
    db.session.commit()
    response, _ = _authorize(driver, portal, state="d")
    answer = driver.follow(_password(driver, response))
    assert_error_redirect(answer, portal.redirect_uri, "access_denied", state="d",
                          issuer=app.config["IDP_ISSUER"])


def test_a_disabled_tenant_is_not_offered(client, driver, alice, beta, shared):
    memberships.set_active(beta, False)
    db.session.commit()
    response, _ = _authorize(driver, shared)
    answer = _password(driver, response)
    assert not answer.headers["Location"].startswith(PICKER), "one company left: no picker"


def test_a_client_shared_with_a_list_offers_only_those(client, factory, driver, alice, beta):
    listed = factory.client(shared=True)
    clients.share_with(_client_row(listed), [beta])
    db.session.commit()
    response, _ = _authorize(driver, listed)
    answer = _password(driver, response)
    assert answer.headers["Location"].startswith(CODE_PAGE), "only beta: no picker, its policy"


def test_a_client_shared_with_others_only_denies_the_person(app, factory, driver, alice):
    gamma = factory.tenant("gamma", "Gamma")
    listed = factory.client(shared=True)
    clients.share_with(_client_row(listed), [gamma])
    db.session.commit()
    response, _ = _authorize(driver, listed, state="s")
    answer = driver.follow(driver.login(response, EMAIL, PASSWORD))
    assert_error_redirect(answer, listed.redirect_uri, "access_denied", state="s",
                          issuer=app.config["IDP_ISSUER"])


def test_refresh_checks_the_membership_itself_not_only_the_revocation(client, driver, alice,
                                                                       beta, shared):
    """A membership gone by another path than `idp user remove` (no grant revoked): the
    binding check alone refuses the refresh."""
    from sqlalchemy import delete

    tokens = _beta_tokens(client, driver, shared)
    db.session.execute(delete(Membership).where(Membership.user_id == alice.id,
                                                Membership.tenant_id == beta.id))
    db.session.commit()
    response = _refresh(driver, shared, tokens["refresh_token"])
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"


def test_switch_account_to_a_stricter_company_asks_the_missing_factor(client, factory, driver,
                                                                      alice):
    driver.sign_in()  # acme only (optional): one factor
    strict = factory.tenant("beta", "Beta Logistics")
    set_mfa_policy(strict, REQUIRED)
    db.session.add(Membership(user_id=alice.id, tenant_id=strict.id, role="member"))
    db.session.commit()
    page = client.get("/switch-account")
    answer = _pick(client, page, strict.id)
    assert answer.status_code == 303 and answer.headers["Location"].startswith(CODE_PAGE)
    assert "for Acme." in client.get("/account").text, "not switched before the factor"
    done = driver.answer_code(answer)
    assert done.status_code == 303
    assert "for Beta Logistics." in client.get("/account").text


def test_the_picker_shows_a_tenants_logo_and_allows_only_its_origin(client, driver, alice,
                                                                    beta, shared):
    beta.settings = {**beta.settings, "logo_url": "https://cdn.beta.example/logo.png"}
    acme = get_by_slug("acme")
    acme.settings = {**(acme.settings or {}), "logo_url": "javascript:alert(1)"}
    db.session.commit()
    page, _ = _to_pending_picker(client, driver, shared)
    assert page.text.count('class="tenant-choice-logo"') == 1
    assert 'src="https://cdn.beta.example/logo.png"' in page.text
    assert "javascript:" not in page.text
    policy = page.headers["Content-Security-Policy"]
    assert "img-src 'self' data: https://cdn.beta.example;" in policy
    assert "frame-ancestors 'none'" in policy
