"""Passkeys over HTTP (issue 8): registration on the account page, passwordless sign-in,
the second factor after the password, ENROL under a phishing-resistant policy, and every
WebAuthn check with a software authenticator (tests/webauthn_soft.py)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from idp.extensions import db
from idp.factors.assurance import PHISHING_RESISTANT, REQUIRED, set_mfa_policy
from idp.models import AuditEvent, Grant, Membership, WebAuthnCredential
from tests import outbox
from tests.http.helpers import decode
from tests.support import Driver, csrf_of, login_code, pkce_pair, query_of
from tests.webauthn_soft import for_app

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")
EMAIL = "alice@example.com"


@pytest.fixture
def client(app):
    return outbox.isolated_client(app)


@pytest.fixture
def driver(app, client, factory):
    return Driver(app, client)


def _tenant_with(factory, policy: str):
    tenant = factory.tenant()
    set_mfa_policy(tenant, policy)
    db.session.commit()
    return tenant


@pytest.fixture
def required(factory):
    return _tenant_with(factory, REQUIRED)


@pytest.fixture
def authenticator(app):
    return for_app(app)


def strong_sign_in(driver):
    """Password and emailed code (the tenant requires them): a recent two-factor session."""
    done = driver.answer_code(driver.sign_in())
    assert done.status_code == 303 and not done.headers["Location"].startswith("/login")


def first_added(response) -> bool:
    """A first passkey (the first strong factor) answers with the recovery codes, once."""
    return response.status_code == 200 and response.text.count('<li>') >= 10 \
        and "Your recovery codes" in response.text


def register(client, authenticator, name="Work laptop", **broken):
    page = client.get("/account/passkeys")
    assert page.status_code == 200
    csrf = csrf_of(page.text)
    options = client.post("/account/passkeys/options", data={"csrf_token": csrf})
    assert options.status_code == 200, options.text[:300]
    credential = authenticator.create(options.get_json()["options"], **broken)
    return client.post("/account/passkeys", data={
        "csrf_token": csrf, "credential": json.dumps(credential), "name": name})


@pytest.fixture
def enrolled(driver, client, required, alice, authenticator):
    """alice, with a passkey registered from the account page, then signed out."""
    strong_sign_in(driver)
    assert first_added(register(client, authenticator))
    client.delete_cookie("idp_session")
    assert client.get("/account").status_code == 303
    return authenticator


def passkey_options(client, flow: str | None = None, signin: str | None = None):
    page = client.get("/login", query_string={"flow": flow} if flow else {})
    csrf = csrf_of(page.text)
    data = {"csrf_token": csrf, **({"signin": signin} if signin else {})}
    response = client.post("/login/passkey/options", data=data,
                           query_string={"flow": flow} if flow else {})
    assert response.status_code == 200, response.text[:300]
    body = response.get_json()
    return csrf, body["signin"], body["options"]


def passwordless(client, authenticator, flow: str | None = None, **broken):
    csrf, signin, options = passkey_options(client, flow)
    answer = authenticator.get(options, **broken)
    return client.post("/login/passkey/identify", query_string={"flow": flow} if flow else {},
                       data={"csrf_token": csrf, "signin": signin,
                             "credential": json.dumps(answer)})


def audits(event: str) -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.event == event)))


def signed_in(client) -> bool:
    return client.get("/account").status_code == 200


# --- registration ----------------------------------------------------------------------


def test_registering_a_passkey_from_the_account_page(driver, client, required, alice,
                                                     authenticator):
    strong_sign_in(driver)
    response = register(client, authenticator, name="  Work\tlaptop  ")
    assert first_added(response)
    assert 'href="/account/passkeys?saved=added"' in response.text  # "I saved my codes"
    [row] = db.session.scalars(select(WebAuthnCredential)).all()
    assert (row.user_id, row.name, row.credential_id) == (alice.id, "Work laptop",
                                                          authenticator.id)
    assert row.user_verified and row.transports == ["internal"] and row.last_used_at is None
    [mail] = outbox.messages(EMAIL, "passkey_added")
    assert "Work laptop" in mail.text_body
    assert audits("passkey_added")
    page = client.get("/account/passkeys")
    assert "Work laptop" in page.text and "Never" in page.text
    second = register(client, for_app(client.application), name="Phone")  # codes exist: none
    assert second.status_code == 303 and "saved=added" in second.headers["Location"]


def test_options_list_existing_passkeys_and_ask_for_a_resident_key(enrolled, client):
    passwordless(client, enrolled)
    page = client.get("/account/passkeys")
    options = client.post("/account/passkeys/options",
                          data={"csrf_token": csrf_of(page.text)}).get_json()["options"]
    assert options["rp"]["id"] == "localhost"
    assert options["authenticatorSelection"]["residentKey"] == "preferred"
    assert options["authenticatorSelection"]["userVerification"] == "preferred"
    assert [c["id"] for c in options["excludeCredentials"]] == [enrolled.id]
    assert options["user"]["id"] == enrolled.user_handle  # one handle per person


def test_registering_needs_a_recent_sign_in_with_a_second_factor(driver, client, alice,
                                                                 authenticator):
    driver.sign_in()  # password only (optional policy)
    page = client.get("/account/passkeys")
    assert page.status_code == 200 and "Confirm it is you" in page.text
    csrf = csrf_of(page.text)
    assert client.post("/account/passkeys/options",
                       data={"csrf_token": csrf}).status_code == 403
    refused = client.post("/account/passkeys", data={"csrf_token": csrf, "credential": "{}"})
    assert refused.status_code == 403
    assert db.session.scalar(select(func.count()).select_from(WebAuthnCredential)) == 0


def test_a_stale_sign_in_must_confirm_with_the_password_and_a_second_factor(
        app, driver, client, required, alice, authenticator, monkeypatch):
    strong_sign_in(driver)
    monkeypatch.setitem(app.config, "IDP_STEP_UP_MAX_AGE", -1)  # the sign-in is now too old
    page = client.get("/account/passkeys")
    assert "Confirm it is you" in page.text
    wrong = client.post("/account/passkeys/confirm",
                        data={"csrf_token": csrf_of(page.text), "password": "nope"})
    assert wrong.status_code == 400 and "not correct" in wrong.text
    response = client.post("/account/passkeys/confirm",
                           data={"csrf_token": csrf_of(page.text), "password": "Correct-Horse-9"})
    assert response.headers["Location"].startswith("/login/code")
    monkeypatch.setitem(app.config, "IDP_STEP_UP_MAX_AGE", 600)
    back = driver.answer_code(response)
    assert back.status_code == 303 and back.headers["Location"] == "/account/passkeys"
    assert first_added(register(client, authenticator))


def test_a_credential_registered_to_another_user_is_refused(driver, client, factory, app,
                                                            required, alice, authenticator):
    bob = factory.user("bob@example.com")
    strong_sign_in(driver)
    assert first_added(register(client, authenticator))
    other_client = outbox.isolated_client(app)
    other = Driver(app, other_client)
    other.answer_code(other.sign_in("bob@example.com"), email="bob@example.com")
    copy = for_app(app, credential_id=authenticator.credential_id)
    refused = register(other_client, copy)
    assert refused.status_code == 400 and "already registered" in refused.text
    assert db.session.scalar(select(func.count()).select_from(WebAuthnCredential)
                             .where(WebAuthnCredential.user_id == bob.id)) == 0
    assert [e.data["reason"] for e in audits("passkey_refused")] == ["taken"]


@pytest.mark.parametrize("broken", [
    {"origin": "https://evil.example"},
    {"rp_id": "evil.example"},
    {"client_type": "webauthn.get"},
    {"credential_type": "password"},
    {"up": False},
    {"challenge": "AAAAAAAAAAAAAAAAAAAAAA"},
])
def test_a_broken_registration_is_refused(driver, client, required, alice, authenticator,
                                          broken):
    strong_sign_in(driver)
    response = register(client, authenticator, **broken)
    assert response.status_code == 400
    assert db.session.scalar(select(func.count()).select_from(WebAuthnCredential)) == 0
    assert outbox.messages(EMAIL, "passkey_added") == []


def test_a_registration_challenge_is_good_once(driver, client, required, alice, authenticator):
    strong_sign_in(driver)
    page = client.get("/account/passkeys")
    csrf = csrf_of(page.text)
    options = client.post("/account/passkeys/options", data={"csrf_token": csrf}).get_json()
    credential = json.dumps(authenticator.create(options["options"]))
    assert first_added(client.post("/account/passkeys", data={
        "csrf_token": csrf, "credential": credential}))
    db.session.execute(WebAuthnCredential.__table__.delete())
    db.session.commit()
    again = client.post("/account/passkeys", data={"csrf_token": csrf, "credential": credential})
    assert again.status_code == 400
    assert db.session.scalar(select(func.count()).select_from(WebAuthnCredential)) == 0


def test_garbage_is_a_clear_error_not_a_500(driver, client, required, alice):
    strong_sign_in(driver)
    page = client.get("/account/passkeys")
    csrf = csrf_of(page.text)
    client.post("/account/passkeys/options", data={"csrf_token": csrf})
    for junk in ("", "not json", "[]", '{"id": 1}', "x" * 20000):
        response = client.post("/account/passkeys", data={"csrf_token": csrf, "credential": junk})
        assert response.status_code == 400, junk[:20]
    csrf, signin, _options = passkey_options(client)
    response = client.post("/login/passkey/identify", data={
        "csrf_token": csrf, "signin": signin, "credential": '{"type": "public-key"}'})
    assert response.status_code == 400 and "could not sign you in" in response.text


# --- rename and remove ---------------------------------------------------------------


def test_rename_and_remove(enrolled, client):
    passwordless(client, enrolled)
    [row] = db.session.scalars(select(WebAuthnCredential)).all()
    page = client.get("/account/passkeys")
    csrf = csrf_of(page.text)
    blank = client.post(f"/account/passkeys/{row.id}/rename", data={"csrf_token": csrf,
                                                                    "name": "   "})
    assert blank.status_code == 400 and "Enter a name" in blank.text
    renamed = client.post(f"/account/passkeys/{row.id}/rename",
                          data={"csrf_token": csrf, "name": "Phone"})
    assert renamed.status_code == 303
    db.session.expire_all()
    assert db.session.get(WebAuthnCredential, row.id).name == "Phone"
    assert client.post(f"/account/passkeys/{row.id + 1}/remove",
                       data={"csrf_token": csrf}).status_code == 404
    removed = client.post(f"/account/passkeys/{row.id}/remove", data={"csrf_token": csrf})
    assert removed.status_code == 303
    assert db.session.scalar(select(func.count()).select_from(WebAuthnCredential)) == 0
    [mail] = outbox.messages(EMAIL, "passkey_removed")
    assert "Phone" in mail.text_body
    assert audits("passkey_removed")


@pytest.mark.parametrize("bad_id", ["99999999999999999999999", "2147483648"])
def test_a_passkey_id_out_of_range_is_not_found_not_a_500(enrolled, client, bad_id):
    passwordless(client, enrolled)
    csrf = csrf_of(client.get("/account/passkeys").text)
    for action in ("rename", "remove"):
        response = client.post(f"/account/passkeys/{bad_id}/{action}",
                               data={"csrf_token": csrf, "name": "Phone"})
        assert response.status_code == 404, action


def test_another_users_passkey_cannot_be_renamed_or_removed(enrolled, app, factory):
    [row] = db.session.scalars(select(WebAuthnCredential)).all()
    factory.user("bob@example.com")
    bob_client = outbox.isolated_client(app)
    bob = Driver(app, bob_client)
    bob.answer_code(bob.sign_in("bob@example.com"), email="bob@example.com")
    csrf = csrf_of(bob_client.get("/account/passkeys").text)
    assert bob_client.post(f"/account/passkeys/{row.id}/rename",
                           data={"csrf_token": csrf, "name": "Mine"}).status_code == 404
    assert bob_client.post(f"/account/passkeys/{row.id}/remove",
                           data={"csrf_token": csrf}).status_code == 404
    db.session.expire_all()
    assert db.session.get(WebAuthnCredential, row.id).name == "Work laptop"


def test_removing_needs_a_recent_strong_sign_in(enrolled, app, client, monkeypatch):
    passwordless(client, enrolled)
    [row] = db.session.scalars(select(WebAuthnCredential)).all()
    csrf = csrf_of(client.get("/account/passkeys").text)
    monkeypatch.setitem(app.config, "IDP_STEP_UP_MAX_AGE", -1)
    assert client.post(f"/account/passkeys/{row.id}/remove",
                       data={"csrf_token": csrf}).status_code == 403
    assert db.session.get(WebAuthnCredential, row.id) is not None


# --- passwordless --------------------------------------------------------------------


def test_passwordless_sign_in(enrolled, client):
    response = passwordless(client, enrolled)
    assert response.status_code == 303, response.text[:300]
    assert signed_in(client)
    db.session.expire_all()
    [row] = db.session.scalars(select(WebAuthnCredential)).all()
    assert row.sign_count == enrolled.sign_count and row.last_used_at


def test_a_relying_party_sees_amr_and_acr_of_a_passkey(enrolled, client, driver, factory):
    rp = factory.client()
    verifier, challenge = pkce_pair()
    start = driver.authorize(rp, code_challenge=challenge, code_challenge_method="S256")
    flow = query_of(start.headers["Location"])["flow"]
    response = driver.follow(passwordless(client, enrolled, flow=flow))
    result = query_of(response.headers["Location"])
    tokens = driver.exchange(rp, {**result, "_verifier": verifier}).get_json()
    claims = decode(client, tokens["id_token"]).claims
    assert claims["amr"] == ["hwk", "user", "mfa"]
    assert claims["acr"] == "urn:idp:loa:3"


def test_a_synced_passkey_says_swk(driver, client, required, alice, app):
    synced = for_app(app, synced=True)
    strong_sign_in(driver)
    register(client, synced)
    client.delete_cookie("idp_session")
    passwordless(client, synced)
    db.session.expire_all()
    [login] = [e for e in audits("login") if "swk" in e.data["amr"]]
    assert login.data["amr"] == ["swk", "user", "mfa"]


@pytest.mark.parametrize("broken", [
    {"origin": "https://evil.example"},
    {"origin": "http://localhost:1"},
    {"rp_id": "evil.example"},
    {"client_type": "webauthn.create"},
    {"credential_type": "password"},
    {"up": False},
    {"uv": False},  # passwordless requires user verification
    {"challenge": "AAAAAAAAAAAAAAAAAAAAAA"},
    {"user_handle": "AAAA"},
])
def test_a_broken_assertion_is_refused(enrolled, client, broken):
    response = passwordless(client, enrolled, **broken)
    assert response.status_code == 400 and "could not sign you in" in response.text
    assert not signed_in(client)


def test_an_assertion_is_good_once(enrolled, client):
    csrf, signin, options = passkey_options(client)
    answer = json.dumps(enrolled.get(options))
    ok = client.post("/login/passkey/identify",
                     data={"csrf_token": csrf, "signin": signin, "credential": answer})
    assert ok.status_code == 303
    client.delete_cookie("idp_session")
    csrf = csrf_of(client.get("/login").text)
    replay = client.post("/login/passkey/identify",
                         data={"csrf_token": csrf, "signin": signin, "credential": answer})
    assert replay.status_code == 400 and not signed_in(client)


def test_a_challenge_of_another_sign_in_is_refused(enrolled, client):
    csrf, first, options = passkey_options(client)
    _csrf, second, _other = passkey_options(client)
    answer = json.dumps(enrolled.get(options))  # signed over the first sign-in's challenge
    response = client.post("/login/passkey/identify",
                           data={"csrf_token": csrf, "signin": second, "credential": answer})
    assert response.status_code == 400 and not signed_in(client)


def test_passkey_options_on_every_page_load_keep_the_authorization(enrolled, client, driver,
                                                                    factory):
    """Each login page load's autofill asks for options (a new passwordless sign-in): ten
    loads (wrong passwords, reloads) must not push the authorization out of the session."""
    rp = factory.client()
    login_url = driver.authorize(rp, code_challenge=pkce_pair()[1],
                                 code_challenge_method="S256").headers["Location"]
    flow = query_of(login_url)["flow"]
    for _load in range(10):
        passkey_options(client, flow)
    response = passwordless(client, enrolled, flow)
    assert response.status_code == 303
    done = driver.follow(response)
    assert done.headers["Location"].startswith(rp.redirect_uri + "?code="), \
        done.headers.get("Location")


def test_a_challenge_is_popped_even_when_the_answer_fails(enrolled, client):
    csrf, signin, options = passkey_options(client)
    bad = client.post("/login/passkey/identify", data={
        "csrf_token": csrf, "signin": signin,
        "credential": json.dumps(enrolled.get(options, origin="https://evil.example"))})
    assert bad.status_code == 400
    good = client.post("/login/passkey/identify", data={
        "csrf_token": csrf, "signin": signin, "credential": json.dumps(enrolled.get(options))})
    assert good.status_code == 400 and not signed_in(client)


def test_a_sign_count_that_goes_backwards_is_refused_and_audited(enrolled, client):
    assert passwordless(client, enrolled, sign_count=5).status_code == 303
    client.delete_cookie("idp_session")
    response = passwordless(client, enrolled, sign_count=3)
    assert response.status_code == 400 and not signed_in(client)
    [event] = audits("passkey_sign_count")
    assert (event.data["stored"], event.data["received"]) == (5, 3)
    assert passwordless(client, enrolled, sign_count=5).status_code == 400  # not forward
    assert passwordless(client, enrolled, sign_count=6).status_code == 303


def test_a_counter_of_zero_is_accepted_when_the_authenticator_keeps_none(enrolled, client):
    db.session.execute(WebAuthnCredential.__table__.update().values(sign_count=0))
    db.session.commit()
    for _ in range(2):
        assert passwordless(client, enrolled, sign_count=0).status_code == 303
        client.delete_cookie("idp_session")


def test_a_disabled_users_passkey_is_refused(enrolled, client, alice):
    alice.active = False
    db.session.commit()
    response = passwordless(client, enrolled)
    assert response.status_code == 400 and not signed_in(client)


def test_an_unknown_passkey_is_refused(enrolled, app, client):
    response = passwordless(client, for_app(app))
    assert response.status_code == 400 and not signed_in(client)


# --- second factor -------------------------------------------------------------------


def _enrol_through_the_factor(user, authenticator) -> None:
    """A passkey registered through the factor interface (no account page), committed."""
    from idp.factors.registry import get_factor

    state: dict = {}
    options = get_factor("webauthn").enrol_start(user, state)["options"]
    get_factor("webauthn").enrol_confirm(user, {"credential": authenticator.create(options)},
                                         state)
    db.session.commit()


def _password(client, flow: str | None = None):
    page = client.get("/login", query_string={"flow": flow} if flow else {})
    return client.post("/login", query_string={"flow": flow} if flow else {},
                       data={"email": EMAIL, "password": "Correct-Horse-9",
                             "csrf_token": csrf_of(page.text)})


def _second_step(client, authenticator, location: str, **broken):
    assert location.startswith("/login/passkey?"), location
    signin = query_of(location)["signin"]
    page = client.get(location)
    assert page.status_code == 200 and "Use your passkey" in page.text
    csrf = csrf_of(page.text)
    options = client.post("/login/passkey/options",
                          data={"csrf_token": csrf, "signin": signin}).get_json()["options"]
    assert [c["id"] for c in options["allowCredentials"]] == [authenticator.id]
    answer = authenticator.get(options, **broken)
    return client.post(location, data={"csrf_token": csrf, "credential": json.dumps(answer)})


def test_the_passkey_is_the_second_factor_after_the_password(enrolled, client, driver, factory):
    rp = factory.client()
    codes = len(outbox.messages(EMAIL, "login_code"))
    verifier, challenge = pkce_pair()
    start = driver.authorize(rp, code_challenge=challenge, code_challenge_method="S256")
    flow = query_of(start.headers["Location"])["flow"]
    response = _password(client, flow)
    assert not signed_in(client)
    assert client.get("/login/code", query_string=query_of(response.headers["Location"])
                      ).headers["Location"].startswith("/login/passkey?")  # its own page
    response = driver.follow(_second_step(client, enrolled, response.headers["Location"],
                                          uv=False))
    result = query_of(response.headers["Location"])
    tokens = driver.exchange(rp, {**result, "_verifier": verifier}).get_json()
    claims = decode(client, tokens["id_token"]).claims
    assert claims["amr"] == ["pwd", "hwk", "mfa"] and claims["acr"] == "urn:idp:loa:3"
    assert len(outbox.messages(EMAIL, "login_code")) == codes  # the passkey replaced the code


def test_another_users_passkey_is_refused_as_second_factor(enrolled, app, client, factory):
    bob = factory.user("bob@example.com")
    other = for_app(app)
    _enrol_through_the_factor(bob, other)
    response = _password(client)
    location = response.headers["Location"]
    signin = query_of(location)["signin"]
    csrf = csrf_of(client.get(location).text)
    options = client.post("/login/passkey/options",
                          data={"csrf_token": csrf, "signin": signin}).get_json()["options"]
    refused = client.post(location, data={"csrf_token": csrf,
                                          "credential": json.dumps(other.get(options))})
    assert refused.status_code == 400 and "not registered to your account" in refused.text
    assert not signed_in(client)
    assert [e.data["reason"] for e in audits("passkey_refused")] == ["other_user"]


def test_the_second_factor_step_refuses_a_broken_assertion(enrolled, client):
    response = _second_step(client, enrolled, _password(client).headers["Location"],
                            origin="https://evil.example")
    assert response.status_code == 400 and not signed_in(client)


# --- phishing-resistant ----------------------------------------------------------------


@pytest.fixture
def phishing_resistant(factory):
    return _tenant_with(factory, PHISHING_RESISTANT)


def test_phishing_resistant_walks_a_person_through_registering_a_passkey(
        client, driver, factory, phishing_resistant, alice, authenticator):
    rp = factory.client()
    verifier, challenge = pkce_pair()
    start = driver.authorize(rp, code_challenge=challenge, code_challenge_method="S256")
    flow = query_of(start.headers["Location"])["flow"]
    response = driver.answer_code(_password(client, flow))
    location = response.headers["Location"]
    assert location.startswith("/login/passkey/enrol?")
    # Pending: nothing is signed in, the login page sends back here, no code is issued.
    assert not signed_in(client)
    assert client.get("/login", query_string={"flow": flow}).headers["Location"] == location
    assert client.get(f"/oauth/authorize?{start.request.query_string.decode()}"
                      ).headers["Location"].startswith("/login")
    assert client.get("/account/passkeys").status_code == 303
    page = client.get(location)
    assert page.status_code == 200 and "Create a passkey" in page.text
    csrf = csrf_of(page.text)
    signin = query_of(location)["signin"]
    options = client.post("/login/passkey/options",
                          data={"csrf_token": csrf, "signin": signin}).get_json()["options"]
    broken = client.post(location, data={"csrf_token": csrf, "credential": json.dumps(
        authenticator.create(options, origin="https://evil.example"))})
    assert broken.status_code == 400 and not signed_in(client)
    options = client.post("/login/passkey/options",
                          data={"csrf_token": csrf, "signin": signin}).get_json()["options"]
    done = client.post(location, data={"csrf_token": csrf, "name": "Phone",
                                       "credential": json.dumps(authenticator.create(options))})
    result = query_of(driver.follow(done).headers["Location"])
    tokens = driver.exchange(rp, {**result, "_verifier": verifier}).get_json()
    claims = decode(client, tokens["id_token"]).claims
    assert claims["acr"] == "urn:idp:loa:3"
    assert claims["amr"] == ["pwd", "otp", "hwk", "user", "mfa"]
    assert [r.name for r in db.session.scalars(select(WebAuthnCredential))] == ["Phone"]
    assert outbox.messages(EMAIL, "passkey_added")


def test_phishing_resistant_with_a_passkey_asks_it_instead_of_the_code(
        client, driver, phishing_resistant, alice, authenticator):
    _enrol_through_the_factor(alice, authenticator)
    response = _second_step(client, authenticator, _password(client).headers["Location"])
    assert response.status_code == 303 and signed_in(client)
    assert outbox.messages(EMAIL, "login_code") == []


def test_phishing_resistant_passwordless_needs_nothing_else(client, driver, phishing_resistant,
                                                           alice, authenticator, factory):
    _enrol_through_the_factor(alice, authenticator)
    rp = factory.client()
    verifier, challenge = pkce_pair()
    start = driver.authorize(rp, code_challenge=challenge, code_challenge_method="S256")
    flow = query_of(start.headers["Location"])["flow"]
    response = driver.follow(passwordless(client, authenticator, flow=flow))
    assert response.headers["Location"].startswith(rp.redirect_uri)
    assert db.session.scalar(select(func.count()).select_from(Grant)) == 1


def test_the_enrol_step_refuses_other_states(enrolled, client):
    location = _password(client).headers["Location"]  # a passkey step, not ENROL
    signin = query_of(location)["signin"]
    response = client.get("/login/passkey/enrol", query_string={"signin": signin})
    assert response.status_code == 400


def test_no_path_skips_the_pending_passkey(enrolled, client, driver, factory):
    """Password typed, passkey pending: the login page, /authorize and /account all send
    back to the passkey step or treat the person as anonymous; no code is issued."""
    rp = factory.client()
    _verifier, challenge = pkce_pair()
    start = driver.authorize(rp, code_challenge=challenge, code_challenge_method="S256")
    flow = query_of(start.headers["Location"])["flow"]
    step = _password(client, flow).headers["Location"]
    assert step.startswith("/login/passkey?")
    assert client.get("/login", query_string={"flow": flow}).headers["Location"] == step
    again = client.get(f"/oauth/authorize?{start.request.query_string.decode()}")
    assert again.headers["Location"].startswith("/login")
    assert client.get("/consent", query_string={"flow": flow}).status_code in (302, 303)
    assert not signed_in(client)
    assert db.session.scalar(select(func.count()).select_from(Grant)) == 0


def test_the_passkey_step_offers_the_emailed_code_instead(enrolled, client):
    """Someone without their passkey at hand (policy `required`) can take the emailed code."""
    location = _password(client).headers["Location"]
    page = client.get(location)
    assert "Send the code by email instead" in page.text
    signin = query_of(location)["signin"]
    chosen = client.post("/login/code/choose", query_string={"signin": signin},
                         data={"csrf_token": csrf_of(page.text), "factor": "email_code"})
    assert chosen.status_code == 303
    code_page = client.get(chosen.headers["Location"])
    assert code_page.status_code == 200 and "Use your passkey" in code_page.text  # and back
    assert outbox.messages(EMAIL, "login_code")
    assert not signed_in(client)


def test_phishing_resistant_offers_no_way_around_the_passkey(
        client, driver, phishing_resistant, alice, authenticator):
    _enrol_through_the_factor(alice, authenticator)
    location = _password(client).headers["Location"]
    page = client.get(location)
    assert page.status_code == 200 and "Send the code by email instead" not in page.text
    refused = client.post("/login/code/choose", query_string=query_of(location),
                          data={"csrf_token": csrf_of(page.text), "factor": "email_code"})
    assert refused.status_code == 400 and outbox.messages(EMAIL, "login_code") == []


def test_a_stale_session_must_prove_a_second_factor_again_before_enrol(
        client, driver, factory, required, alice, authenticator, app, monkeypatch):
    """A two-factor session past the step-up window (a stolen cookie, a shared computer)
    meets a phishing-resistant company: the ENROL step must not add a passkey on the old
    factors alone, as the account page refuses (recent_strong_login); a fresh code first."""
    strong_sign_in(driver)  # acme requires two factors: password and code, signed in
    vault = factory.tenant("vault", "Vault")
    set_mfa_policy(vault, PHISHING_RESISTANT)
    db.session.add(Membership(user_id=alice.id, tenant_id=vault.id, role="member"))
    db.session.commit()
    rp = factory.client(tenant=vault)
    monkeypatch.setitem(app.config, "IDP_STEP_UP_MAX_AGE", -1)  # those factors are stale
    codes = len(outbox.messages(EMAIL, "login_code"))
    start = driver.authorize(rp, code_challenge=pkce_pair()[1], code_challenge_method="S256")
    step = driver.follow(start)
    assert not step.request.path.startswith("/login/passkey/enrol"), step.request.path
    assert "Enter your code" in step.text
    assert len(outbox.messages(EMAIL, "login_code")) == codes + 1
    monkeypatch.setitem(app.config, "IDP_STEP_UP_MAX_AGE", 600)
    location = step.request.path + "?" + step.request.query_string.decode()
    enrol = client.post(location, data={"code": login_code(), "csrf_token": csrf_of(step.text)})
    assert enrol.headers["Location"].startswith("/login/passkey/enrol?"), "then ENROL"


def test_switch_account_to_a_phishing_resistant_company_walks_through_enrol(
        client, driver, factory, required, alice, authenticator):
    """Switch account to a company that asks for a passkey the person has not registered:
    the ENROL step (not an error page that leaves that step pending for the next /login)."""
    strong_sign_in(driver)
    vault = factory.tenant("vault", "Vault")
    set_mfa_policy(vault, PHISHING_RESISTANT)
    db.session.add(Membership(user_id=alice.id, tenant_id=vault.id, role="member"))
    db.session.commit()
    page = client.get("/switch-account")
    answer = client.post("/switch-account", data={"tenant": str(vault.id),
                                                  "csrf_token": csrf_of(page.text)})
    assert answer.status_code == 303, answer.status_code
    location = answer.headers["Location"]
    assert location.startswith("/login/passkey/enrol?")
    csrf = csrf_of(client.get(location).text)
    options = client.post("/login/passkey/options", data={
        "csrf_token": csrf, "signin": query_of(location)["signin"]}).get_json()["options"]
    done = client.post(location, data={"csrf_token": csrf, "name": "Phone",
                                       "credential": json.dumps(authenticator.create(options))})
    assert done.status_code == 303
    assert "for Vault." in client.get("/account").text


def test_an_enrol_step_left_past_the_step_up_window_adds_no_passkey(
        client, driver, phishing_resistant, alice, authenticator, app, monkeypatch):
    """The ENROL step waits up to the flow's lifetime; its factors must still be recent
    when the passkey arrives (as the account page checks at the POST too)."""
    location = driver.answer_code(_password(client)).headers["Location"]
    assert location.startswith("/login/passkey/enrol?")
    csrf = csrf_of(client.get(location).text)
    options = client.post("/login/passkey/options", data={
        "csrf_token": csrf, "signin": query_of(location)["signin"]}).get_json()["options"]
    monkeypatch.setitem(app.config, "IDP_STEP_UP_MAX_AGE", -1)  # left open, then answered
    late = client.post(location, data={"csrf_token": csrf,
                                       "credential": json.dumps(authenticator.create(options))})
    assert late.status_code == 400 and not signed_in(client)
    assert db.session.scalar(select(func.count()).select_from(WebAuthnCredential)) == 0
