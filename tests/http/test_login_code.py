"""The sign-in as steps, and the emailed code (issue 7, seeds 000/001).

A tenant whose MFA policy is ``required`` asks the emailed code after the
password; until it is typed the person is pending: nothing treats them as
signed in, and no path skips the code.
"""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from idp.extensions import db
from idp.factors.assurance import PHISHING_RESISTANT, REQUIRED, set_mfa_policy
from idp.models import AuditEvent, Grant, Membership
from tests import outbox
from tests.http.helpers import assert_error_redirect, decode
from tests.support import (
    CODE_PAGE,
    PASSWORD,
    Driver,
    csrf_of,
    login_code,
    pkce_pair,
    query_of,
)

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")
EMAIL = "alice@example.com"


@pytest.fixture
def client(app):
    return outbox.isolated_client(app)


@pytest.fixture
def rp(factory, required, alice):
    return factory.client()


def _authorize(driver, rp, **params):
    _, challenge = pkce_pair()
    params.setdefault("code_challenge", challenge)
    params.setdefault("code_challenge_method", "S256")
    return driver.authorize(rp, **params)


def _to_code_page(driver, rp, **params):
    """Authorize and type the password: the redirect to the code page."""
    response = driver.login(_authorize(driver, rp, **params))
    assert response.status_code == 303, response.text[:300]
    assert response.headers["Location"].startswith(CODE_PAGE), response.headers["Location"]
    return response


def _post_code(http, code_url: str, code: str):
    page = http.get(code_url)
    assert page.status_code == 200, page.status_code
    return http.post(code_url, data={"code": code, "csrf_token": csrf_of(page.text)})


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def _latest_grant(result: dict) -> Grant:
    assert result["code"]
    db.session.expire_all()
    return db.session.scalars(select(Grant).order_by(Grant.id.desc())).first()


def _lands_with_code(driver, response, rp) -> dict:
    response = driver.follow(response)
    location = response.headers.get("Location", "")
    assert location.startswith(rp.redirect_uri + "?"), (response.status_code, location)
    params = query_of(location)
    assert "code" in params, params
    return params


# --- the seeds' login ------------------------------------------------------------------


def test_password_then_receive_code_then_login(client, driver, rp):
    first = _authorize(driver, rp)
    login_page = client.get(first.headers["Location"])
    assert "Receive Code" in login_page.text  # the next step is the emailed code
    response = driver.login(first)
    code_url = response.headers["Location"]
    page = client.get(code_url)
    html = page.text
    assert page.status_code == 200
    assert "a***@example.com" in html and EMAIL not in html  # where the code went, masked
    field = re.search(r"<input id=\"code\"[^>]*>", html, re.S).group(0)
    assert 'name="code"' in field and 'autocomplete="one-time-code"' in field
    assert 'inputmode="numeric"' in field
    assert ">Login</button>" in html and "Send a new code" in html
    assert "spam folder" in html and "support" in html
    sent = outbox.messages(EMAIL, "login_code")
    assert len(sent) == 1 and sent[0].subject.startswith("Your sign-in code")
    code = login_code()
    assert re.fullmatch(r"\d{6}", code)
    # Hashed at rest: the session row and the outbox row are the only copies, and the
    # session holds no clear code.
    from idp.models import BrowserSession
    rows = [str(row.data) for row in db.session.scalars(select(BrowserSession))]
    assert rows and not any(code in row for row in rows)
    done = _post_code(client, code_url, code)
    result = _lands_with_code(driver, done, rp)
    grant = _latest_grant(result)
    assert grant is not None and grant.amr == ["pwd", "otp", "mfa"]
    assert grant.acr == "urn:idp:loa:2"


def test_tokens_carry_amr_and_acr_computed_from_the_factors(client, driver, rp):
    tokens = driver.tokens(rp)  # code_flow answers the code step from the outbox
    claims = decode(client, tokens["id_token"]).claims
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    assert claims["acr"] == "urn:idp:loa:2"
    events = [e.data for e in db.session.scalars(
        select(AuditEvent).where(AuditEvent.event == "login"))]
    assert events[-1]["amr"] == ["pwd", "otp", "mfa"]


def test_an_optional_tenant_signs_in_with_the_password_alone(client, factory, driver, alice):
    rp = factory.client()  # acme with the default policy
    login_page = client.get(_authorize(driver, rp).headers["Location"])
    assert "Receive Code" not in login_page.text and ">Sign in</button>" in login_page.text
    tokens = driver.tokens(rp)
    claims = decode(client, tokens["id_token"]).claims
    assert claims["amr"] == ["pwd"] and claims["acr"] == "urn:idp:loa:1"
    assert outbox.messages(EMAIL, "login_code") == []


# --- the code: wrong, expired, replayed, another sign-in's, before a resend --------------


def test_wrong_code_is_refused_then_the_right_one_works(client, driver, rp):
    code_url = _to_code_page(driver, rp).headers["Location"]
    wrong = _post_code(client, code_url, _wrong(login_code()))
    assert wrong.status_code == 400
    assert "This code is not correct" in wrong.text and 'aria-invalid="true"' in wrong.text
    assert client.get("/account").status_code == 303  # still pending
    _lands_with_code(driver, _post_code(client, code_url, login_code()), rp)


def test_expired_code_is_refused(client, driver, rp, clock):
    code_url = _to_code_page(driver, rp).headers["Location"]
    code = login_code()
    clock.advance(601)
    response = _post_code(client, code_url, code)
    assert response.status_code == 400 and "This code has expired" in response.text


def test_a_used_code_cannot_be_used_again(app, client, driver, rp):
    code_url = _to_code_page(driver, rp).headers["Location"]
    code = login_code()
    _lands_with_code(driver, _post_code(client, code_url, code), rp)
    # The same sign-in is over: its page is gone.
    again = client.post(code_url, data={"code": code, "csrf_token": csrf_of(
        client.get("/login").text)})
    assert again.status_code == 400 and "no longer valid" in again.text
    # A new sign-in (prompt=login) sends a new code; the old one is refused.
    code_url = _to_code_page(driver, rp, prompt="login").headers["Location"]
    assert len(outbox.messages(EMAIL, "login_code")) == 2
    new = login_code()
    if new != code:
        assert _post_code(client, code_url, code).status_code == 400
    _lands_with_code(driver, _post_code(client, code_url, new), rp)


def test_another_sign_ins_code_is_refused(app, client, driver, rp):
    other = Driver(app, outbox.isolated_client(app))  # a second browser, same person
    mine = _to_code_page(driver, rp).headers["Location"]
    my_code = login_code()
    theirs = _to_code_page(other, rp).headers["Location"]
    their_code = login_code()
    assert mine != theirs
    if their_code != my_code:
        refused = _post_code(client, mine, their_code)
        assert refused.status_code == 400 and "This code is not correct" in refused.text
    _lands_with_code(driver, _post_code(client, mine, my_code), rp)
    _lands_with_code(other, _post_code(other.http, theirs, their_code), rp)


def test_a_resend_replaces_the_code_after_the_cooldown(client, driver, rp, clock):
    code_url = _to_code_page(driver, rp).headers["Location"]
    first = login_code()
    resend_url = code_url.replace(CODE_PAGE, CODE_PAGE + "/resend")
    page = client.get(code_url)
    assert "You can ask for a new code in" in page.text
    early = client.post(resend_url, data={"csrf_token": csrf_of(page.text)})
    assert early.status_code == 400 and "A code was just sent" in early.text
    assert len(outbox.messages(EMAIL, "login_code")) == 1
    clock.advance(61)
    resent = client.post(resend_url, data={"csrf_token": csrf_of(page.text)})
    assert resent.status_code == 200 and "We sent a new code" in resent.text
    assert len(outbox.messages(EMAIL, "login_code")) == 2
    second = login_code()
    if second != first:
        before = _post_code(client, code_url, first)
        assert before.status_code == 400 and "This code is not correct" in before.text
    _lands_with_code(driver, _post_code(client, code_url, second), rp)


def test_five_wrong_codes_start_the_sign_in_over(client, driver, rp):
    code_url = _to_code_page(driver, rp).headers["Location"]
    code = login_code()
    for _ in range(4):
        assert _post_code(client, code_url, _wrong(code)).status_code == 400
    fifth = _post_code(client, code_url, _wrong(code))
    assert fifth.status_code == 400
    assert "Too many wrong codes" in fifth.text and 'name="password"' in fifth.text
    # The sign-in is over: even the right code is refused now.
    gone = client.get(code_url)
    assert gone.status_code == 400 and "no longer valid" in gone.text
    assert client.get("/account").status_code == 303
    failures = db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.event == "login_failed"))
    assert failures == 5


# --- no path skips it ------------------------------------------------------------------


def test_pending_person_is_sent_back_to_the_code_step(client, driver, rp):
    first = _authorize(driver, rp)
    flow_id = query_of(first.headers["Location"])["flow"]
    code_url = driver.login(first).headers["Location"]
    # /account
    account = driver.follow(client.get("/account"))
    assert account.status_code == 200 and "Enter your code" in account.text
    # /oauth/authorize (resuming the same authorization), consent, the login page
    for path in (f"/oauth/authorize/resume?flow={flow_id}", f"/consent?flow={flow_id}",
                 f"/select-tenant?flow={flow_id}", f"/login?flow={flow_id}"):
        response = driver.follow(client.get(path))
        assert response.status_code == 200 and "Enter your code" in response.text, path
    # a new authorization request
    response = driver.follow(_authorize(driver, rp))
    assert response.status_code == 200 and "Enter your code" in response.text
    # the token endpoint: no code was ever issued
    assert db.session.scalar(select(func.count()).select_from(Grant)) == 0
    token = driver.token(rp, grant_type="authorization_code", code="made-up",
                         redirect_uri=rp.redirect_uri)
    assert token.status_code == 400 and token.get_json()["error"] == "invalid_grant"
    # and the code still finishes the sign-in
    _lands_with_code(driver, _post_code(client, code_url, login_code()), rp)


def test_prompt_none_while_the_code_is_pending_is_login_required(app, client, driver, rp):
    _to_code_page(driver, rp)
    response = _authorize(driver, rp, prompt="none", state="pn")
    assert_error_redirect(response, rp.redirect_uri, "login_required", state="pn",
                          issuer=app.config["IDP_ISSUER"])


def test_max_age_and_prompt_login_ask_every_factor_again(client, driver, rp):
    driver.tokens(rp)
    for params in ({"prompt": "login"}, {"max_age": "0"}):
        response = _authorize(driver, rp, **params)
        page = client.get(response.headers["Location"])
        assert 'name="password"' in page.text  # the password first, then the code
        code_url = driver.login(response).headers["Location"]
        assert code_url.startswith(CODE_PAGE)
        _lands_with_code(driver, _post_code(client, code_url, login_code()), rp)


# --- step-up ---------------------------------------------------------------------------


@pytest.fixture
def optional_rp(factory, alice):
    return factory.client()  # acme, policy optional


@pytest.mark.parametrize("params", [
    {"acr_values": "urn:idp:loa:2"},
    {"acr_values": "urn:example:unknown urn:idp:loa:2"},
    {"claims": json.dumps({"id_token": {"acr": {"essential": True,
                                                 "value": "urn:idp:loa:2"}}})},
])
def test_step_up_asks_for_the_missing_factor_only(client, driver, optional_rp, params):
    driver.sign_in()  # the password alone: loa:1
    response = _authorize(driver, optional_rp, **params)
    assert response.headers["Location"].startswith("/login?flow=")
    step_up = client.get(response.headers["Location"])
    assert step_up.status_code == 303 and step_up.headers["Location"].startswith(CODE_PAGE)
    done = _post_code(client, step_up.headers["Location"], login_code())
    result = _lands_with_code(driver, done, optional_rp)
    grant = _latest_grant(result)
    assert grant.acr == "urn:idp:loa:2" and grant.amr == ["pwd", "otp", "mfa"]
    # The session now meets loa:2: the next request needs no step.
    again = driver.follow(_authorize(driver, optional_rp, **params))
    assert "code" in query_of(again.headers["Location"])


def test_a_required_tenant_steps_up_a_password_only_session(client, factory, driver, alice,
                                                            optional_rp):
    driver.sign_in()
    beta = factory.tenant("beta", "Beta")
    set_mfa_policy(beta, REQUIRED)
    db.session.add(Membership(user_id=alice.id, tenant_id=beta.id, role="member"))
    db.session.commit()
    beta_rp = factory.client(tenant=beta)
    response = driver.follow(_authorize(driver, beta_rp))
    assert response.status_code == 200 and "Enter your code" in response.text


# --- policy ----------------------------------------------------------------------------


def test_direct_sign_in_applies_the_strictest_membership_policy(client, factory, driver, alice):
    beta = factory.tenant("beta", "Beta")
    set_mfa_policy(beta, REQUIRED)
    db.session.add(Membership(user_id=alice.id, tenant_id=beta.id, role="member"))
    db.session.commit()
    response = driver.sign_in()
    assert response.headers["Location"].startswith(CODE_PAGE)
    assert client.get("/account").status_code == 303
    done = _post_code(client, response.headers["Location"], login_code())
    assert done.status_code == 303
    assert client.get("/account").status_code == 200


def test_phishing_resistant_without_a_passkey_asks_the_code_then_a_passkey(
        client, factory, driver, alice):
    """No passkey yet: the password, the emailed code, then registering one (ENROL);
    nothing is signed in or issued before (tests/http/test_passkeys.py goes on)."""
    tenant = factory.tenant()
    set_mfa_policy(tenant, PHISHING_RESISTANT)
    db.session.commit()
    rp = factory.client()
    response = driver.login(_authorize(driver, rp))
    assert response.headers["Location"].startswith(CODE_PAGE)
    response = _post_code(client, response.headers["Location"], login_code())
    assert response.headers["Location"].startswith("/login/passkey/enrol")
    assert client.get("/account").status_code == 303  # not signed in
    assert db.session.scalar(select(func.count()).select_from(Grant)) == 0


def test_code_sends_are_limited_per_account(app, client, driver, rp, monkeypatch):
    monkeypatch.setitem(app.config, "IDP_LOGIN_CODE_ACCOUNT_LIMIT", 2)
    for _ in range(2):
        _to_code_page(driver, rp, prompt="login")
    response = driver.follow(_to_code_page(driver, rp, prompt="login"))
    assert len(outbox.messages(EMAIL, "login_code")) == 2
    assert "Too many codes were sent" in response.text


def test_code_sends_are_limited_per_ip(app, factory, driver, rp, monkeypatch):
    monkeypatch.setitem(app.config, "IDP_LOGIN_CODE_IP_LIMIT", 1)
    factory.user("bob@example.com")
    _to_code_page(driver, rp)
    other = Driver(app, outbox.isolated_client(app))
    response = other.login(_authorize(other, rp), email="bob@example.com")
    page = other.follow(response)
    assert "Too many codes were sent" in page.text
    assert outbox.messages("bob@example.com", "login_code") == []


# --- language --------------------------------------------------------------------------


def test_french_pages_and_mail(client, factory, required):
    user = factory.user("lea@example.com", locale="fr")
    rp = factory.client()
    headers = {"Accept-Language": "fr"}
    driver = Driver(None, client)
    first = _authorize(driver, rp)
    page = client.get(first.headers["Location"], headers=headers)
    assert "Recevoir le code" in page.text
    response = client.post(first.headers["Location"], headers=headers, data={
        "email": user.email, "password": PASSWORD, "csrf_token": csrf_of(page.text)})
    code_page = client.get(response.headers["Location"], headers=headers)
    assert "Connexion" in code_page.text and 'lang="fr"' in code_page.text
    mail = outbox.messages(user.email, "login_code")[-1]
    assert mail.locale == "fr" and "code" in mail.subject.lower()
    assert "Your sign-in code" not in mail.subject


def test_the_mail_is_bilingual_when_the_language_is_unknown(client, driver, rp):
    _to_code_page(driver, rp)
    mail = outbox.messages(EMAIL, "login_code")[-1]
    assert " / " in mail.subject  # English then French


# --- the plan --------------------------------------------------------------------------


def test_a_step_without_a_prompt_none_error_is_interaction_required(app, driver, rp,
                                                                     monkeypatch):
    from idp.flows import authorization

    monkeypatch.setattr(authorization, "PROMPT_NONE_ERRORS", {})
    response = _authorize(driver, rp, prompt="none", state="pn")
    assert_error_redirect(response, rp.redirect_uri, "interaction_required", state="pn",
                          issuer=app.config["IDP_ISSUER"])


def test_step_views_refuse_a_flow_in_another_state(client, factory, driver, alice):
    """Posting a consent for a flow that still waits for its sign-in decides nothing."""
    consent_rp = factory.client(third_party=True)
    first = _authorize(driver, consent_rp)
    flow_id = query_of(first.headers["Location"])["flow"]
    driver.sign_in()  # signed in elsewhere; this flow is still at its LOGIN step
    page = client.get("/login")
    response = client.post(f"/consent?flow={flow_id}", data={
        "decision": "allow", "csrf_token": csrf_of(page.text)})
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/oauth/authorize/resume")
    from idp.models import Consent
    assert db.session.scalar(select(func.count()).select_from(Consent)) == 0


# --- the session -----------------------------------------------------------------------


def _session_cookie(http) -> str | None:
    cookie = http.get_cookie("idp_session")
    return cookie.value if cookie is not None else None


def test_the_session_id_rotates_after_each_factor(client, driver, rp):
    first = _authorize(driver, rp)
    before = _session_cookie(client)
    code_url = driver.login(first).headers["Location"]
    after_password = _session_cookie(client)
    assert before and after_password and after_password != before
    _lands_with_code(driver, _post_code(client, code_url, login_code()), rp)
    signed_in = _session_cookie(client)
    assert signed_in not in (before, after_password)
    assert client.get("/account").status_code == 200


def test_sign_in_with_another_account_drops_the_pending_one(client, factory, driver, rp):
    factory.user("bob@example.com")
    first = _authorize(driver, rp)
    login_url = first.headers["Location"]
    code_url = driver.login(first).headers["Location"]
    assert client.get(login_url).headers["Location"].startswith(CODE_PAGE)
    restart = client.post(code_url.replace(CODE_PAGE, CODE_PAGE + "/restart"),
                          data={"csrf_token": csrf_of(client.get(code_url).text)})
    assert restart.status_code == 303 and restart.headers["Location"] == login_url
    page = client.get(login_url)
    assert page.status_code == 200 and 'name="password"' in page.text
    response = client.post(login_url, data={"email": "bob@example.com", "password": PASSWORD,
                                            "csrf_token": csrf_of(page.text)})
    code_url = response.headers["Location"]
    _lands_with_code(driver, _post_code(client, code_url, login_code("bob@example.com")), rp)


def test_without_smtp_the_console_shows_the_code(app, driver, rp):
    import io

    from idp.mail.transport import ConsoleTransport
    from idp.mail.worker import deliver_due

    _to_code_page(driver, rp)
    stream = io.StringIO()
    with app.app_context():
        deliver_due(transport=ConsoleTransport(stream))
    assert login_code() in stream.getvalue()


def test_the_tenant_login_page_of_a_required_tenant(client, driver, required, alice):
    page = client.get("/t/acme/login")
    assert ">Receive Code</button>" in page.text
    response = client.post("/t/acme/login", data={"email": EMAIL, "password": PASSWORD,
                                                   "csrf_token": csrf_of(page.text)})
    assert response.status_code == 303 and response.headers["Location"].startswith(CODE_PAGE)
    done = _post_code(client, response.headers["Location"], login_code())
    assert done.status_code == 303 and client.get("/account").status_code == 200
