"""The authenticator app (TOTP) and recovery codes as second factors (issue 8).

Enrolment on the security page (a recent sign-in with a second factor first), the
sign-in asking the app's code instead of the emailed one, a code accepted once on
every worker, +-1 step, the key encrypted at rest, attempts capped, "send the code by
email instead", recovery codes, and "no access to the app".
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select, text

from idp.extensions import db
from idp.factors import sealed, totp
from idp.factors.base import Accepted, Attempt, Rejected
from idp.factors.registry import get_factor
from idp.models import (
    BrowserSession,
    FactorResetRequest,
    Grant,
    RecoveryCode,
    TotpCredential,
)
from idp.services import factor_reset, recovery_codes
from tests import outbox
from tests.support import CODE_PAGE, PASSWORD, csrf_of, login_code, pkce_pair, query_of

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")
EMAIL = "alice@example.com"
SECRET_RE = re.compile(r'data-secret="([A-Z2-7]+)"')
CODES_RE = re.compile(r"<li>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</li>")


@pytest.fixture
def client(app):
    return outbox.isolated_client(app)


@pytest.fixture
def rp(factory, required, alice):
    return factory.client()


def enrol(user) -> str:
    """Set up TOTP through the factor (as the security page does); the key."""
    factor, state = get_factor("totp"), {}
    secret = factor.enrol_start(user, state)["secret"]
    result = factor.enrol_confirm(user, {"code": totp.code_at(secret, totp.current_step() - 1)},
                                  state)
    assert isinstance(result, Accepted)
    db.session.commit()
    return secret


def now_code(secret: str, offset: int = 0) -> str:
    return totp.code_at(secret, totp.current_step() + offset)


def _authorize(driver, rp, **params):
    _, challenge = pkce_pair()
    params.setdefault("code_challenge", challenge)
    params.setdefault("code_challenge_method", "S256")
    return driver.authorize(rp, **params)


def _to_factor_page(driver, rp, **params) -> str:
    response = driver.login(_authorize(driver, rp, **params))
    assert response.status_code == 303, response.text[:300]
    assert response.headers["Location"].startswith(CODE_PAGE), response.headers["Location"]
    return response.headers["Location"]


def _post(http, url: str, page_url: str | None = None, **data):
    page = http.get(page_url or url)
    assert page.status_code == 200, (page.status_code, page_url or url)
    return http.post(url, data={**data, "csrf_token": csrf_of(page.text)})


def _lands(driver, response, rp) -> dict:
    response = driver.follow(response)
    location = response.headers.get("Location", "")
    assert location.startswith(rp.redirect_uri + "?"), (response.status_code, location,
                                                        response.text[:400])
    return query_of(location)


def _grant() -> Grant:
    db.session.expire_all()
    return db.session.scalars(select(Grant).order_by(Grant.id.desc())).first()


# --- the sign-in -------------------------------------------------------------------------


def test_an_enrolled_app_is_asked_instead_of_the_emailed_code(client, driver, rp, alice):
    secret = enrol(alice)
    code_url = _to_factor_page(driver, rp)
    page = client.get(code_url)
    assert page.status_code == 200 and "Enter the code from your app" in page.text
    assert 'autocomplete="one-time-code"' in page.text
    assert "Send the code by email instead" in page.text and "No access to the app?" in page.text
    assert outbox.messages(EMAIL, "login_code") == []  # nothing was emailed
    _lands(driver, _post(client, code_url, code=now_code(secret)), rp)
    grant = _grant()
    assert grant.amr == ["pwd", "otp", "mfa"] and grant.acr == "urn:idp:loa:2"


def test_an_optional_tenant_still_asks_an_enrolled_app(client, factory, driver, alice):
    rp = factory.client()  # acme, optional policy
    secret = enrol(alice)
    code_url = _to_factor_page(driver, rp)
    _lands(driver, _post(client, code_url, code=now_code(secret)), rp)
    assert _grant().amr == ["pwd", "otp", "mfa"]


def test_a_code_is_accepted_once_in_its_step(app, client, driver, rp, alice):
    secret = enrol(alice)
    code = now_code(secret)
    _lands(driver, _post(client, _to_factor_page(driver, rp), code=code), rp)
    again_url = _to_factor_page(driver, rp, prompt="login")
    replay = _post(client, again_url, code=code)
    assert replay.status_code == 400 and "already used" in replay.text
    assert client.get("/account").status_code in (200, 303)


def test_a_replay_fails_on_another_worker(app, alice, required):
    """Two app objects on one database: the step is stored in the row, not in memory."""
    from idp import create_app

    secret = enrol(alice)
    second = create_app({**{k: app.config[k] for k in (
        "TESTING", "SQLALCHEMY_DATABASE_URI", "IDP_ISSUER", "IDP_KEYS_DIR", "SECRET_KEY")},
        "IDP_ENABLE_MAIL_WORKER": False, "SERVER_NAME": None})
    code = now_code(secret)
    factor = get_factor("totp")
    with app.app_context():
        user = db.session.get(type(alice), alice.id)
        assert factor.verify(user, {"code": code}, {}, Attempt("192.0.2.1", "a")) \
            == Accepted(alice.id, ("otp",))
        db.session.commit()
    with second.app_context():
        from idp.extensions import db as second_db

        user = second_db.session.get(type(alice), alice.id)
        result = factor.verify(user, {"code": code}, {}, Attempt("192.0.2.2", "b"))
        assert isinstance(result, Rejected) and result.reason == "replayed"
        second_db.session.remove()


def test_concurrent_answers_have_one_winner(app, ctx, alice):
    """The conditional UPDATE decides: only one of two answers for a step wins."""
    enrol(alice)
    credential = db.session.scalar(select(TotpCredential))
    step = totp.current_step() + 1
    assert totp.consume(credential.id, step) is True
    assert totp.consume(credential.id, step) is False
    assert totp.consume(credential.id, step - 1) is False  # an older step, too
    db.session.commit()


@pytest.mark.parametrize("offset, accepted", [(-2, False), (-1, True), (0, True), (1, True),
                                              (2, False)])
def test_one_step_either_side_and_no_more(ctx, alice, monkeypatch, offset, accepted):
    secret = enrol(alice)
    # A time in the middle of a step, far from the confirmation's step.
    base = (totp.current_step() + 10) * totp.STEP_SECONDS + 15
    monkeypatch.setattr(totp, "_now", lambda: base)
    code = totp.code_at(secret, base // totp.STEP_SECONDS + offset)
    result = get_factor("totp").verify(alice, {"code": code}, {}, Attempt(None, "x"))
    assert isinstance(result, Accepted) is accepted, result
    # The edges of the window at the step's first and last second.
    for edge in (base - 15, base + 14):
        step = edge // totp.STEP_SECONDS
        assert (totp.matching_step(secret, totp.code_at(secret, step + offset), edge)
                is not None) is accepted


def test_a_code_of_another_key_is_refused(ctx, alice):
    enrol(alice)
    other = totp.new_secret()
    result = get_factor("totp").verify(alice, {"code": now_code(other)}, {}, Attempt(None, "x"))
    assert isinstance(result, Rejected) and result.reason == "wrong"


def test_the_key_is_encrypted_at_rest_and_bound_to_its_owner(ctx, factory, alice):
    secret = enrol(alice)
    row = db.session.execute(text("SELECT secret_encrypted FROM totp_credentials")).scalar()
    assert secret not in row and secret.lower() not in row.lower() and row.startswith("v1.")
    assert sealed.unseal(totp.PURPOSE, row, f"user:{alice.id}") == secret
    bob = factory.user("bob@example.com")
    with pytest.raises(sealed.Unsealable):  # copied into another person's row: no key
        sealed.unseal(totp.PURPOSE, row, f"user:{bob.id}")
    dumped = " ".join(str(r) for r in db.session.execute(text("SELECT * FROM totp_credentials")))
    assert secret not in dumped


def test_five_wrong_codes_end_the_sign_in(client, driver, rp, alice):
    secret = enrol(alice)
    code_url = _to_factor_page(driver, rp)
    for _ in range(4):
        response = _post(client, code_url, code=now_code(secret, 5))
        assert response.status_code == 400 and "not correct" in response.text
    fifth = _post(client, code_url, code=now_code(secret, 5))
    assert fifth.status_code == 400 and "Too many wrong codes" in fifth.text
    assert client.get(code_url).status_code == 400  # the sign-in is over


def test_answers_are_capped_per_account_across_sign_ins(app, client, driver, rp, alice):
    secret = enrol(alice)
    limit = app.config["IDP_FACTOR_ACCOUNT_TRIES"]
    for _ in range(limit // 4 + 1):  # new sign-ins reset the per-sign-in count, not this
        code_url = _to_factor_page(driver, rp, prompt="login")
        for _ in range(4):
            _post(client, code_url, code=now_code(secret, 5))
    code_url = _to_factor_page(driver, rp, prompt="login")
    capped = _post(client, code_url, code=now_code(secret))  # even the right code
    assert capped.status_code == 400 and "Too many attempts for this account" in capped.text


# --- other ways ------------------------------------------------------------------------


def test_send_the_code_by_email_instead(client, driver, rp, alice):
    enrol(alice)
    code_url = _to_factor_page(driver, rp)
    switch = _post(client, "/login/code/choose?" + code_url.split("?", 1)[1], code_url,
                   factor="email_code")
    assert switch.status_code == 303 and switch.headers["Location"].startswith(CODE_PAGE)
    page = client.get(code_url)
    assert "Enter your code" in page.text and "Use your authenticator app" in page.text
    _lands(driver, _post(client, code_url, code=login_code()), rp)
    assert _grant().amr == ["pwd", "otp", "mfa"]


def test_only_offered_factors_can_be_chosen(client, driver, rp, alice):
    enrol(alice)
    code_url = _to_factor_page(driver, rp)
    query = code_url.split("?", 1)[1]
    for bogus in ("password", "recovery_code_x", "", "webauthn"):
        response = _post(client, f"/login/code/choose?{query}", code_url, factor=bogus)
        assert response.status_code == 400 and "not available" in response.text, bogus


def test_a_recovery_code_signs_in_once_and_emails_the_person(client, driver, rp, alice):
    enrol(alice)
    codes = recovery_codes.issue(alice)
    db.session.commit()
    code_url = _to_factor_page(driver, rp)
    query = code_url.split("?", 1)[1]
    assert "Use a recovery code" in client.get(code_url).text
    _post(client, f"/login/code/choose?{query}", code_url, factor="recovery_code")
    page = client.get(code_url)
    assert "Enter a recovery code" in page.text
    _lands(driver, _post(client, code_url, code=codes[0].upper().replace("-", " ")), rp)
    grant = _grant()
    assert grant.amr == ["pwd", "otp", "mfa"] and grant.acr == "urn:idp:loa:2"
    used = outbox.messages(EMAIL, "factor_changed")
    assert used and "recovery code was used" in used[-1].subject
    # Used once: a second sign-in refuses it.
    code_url = _to_factor_page(driver, rp, prompt="login")
    query = code_url.split("?", 1)[1]
    _post(client, f"/login/code/choose?{query}", code_url, factor="recovery_code")
    refused = _post(client, code_url, code=codes[0])
    assert refused.status_code == 400 and "already used" in refused.text


def test_regenerated_codes_replace_the_old_ones(ctx, alice):
    enrol(alice)
    old = recovery_codes.issue(alice)
    new = recovery_codes.issue(alice)
    db.session.commit()
    assert len(new) == 10 == len(set(new)) and not set(old) & set(new)
    assert db.session.scalar(select(func.count(RecoveryCode.id))) == 10
    factor = get_factor("recovery_code")
    assert isinstance(factor.verify(alice, {"code": old[0]}, {}, Attempt(None, "x")), Rejected)
    assert isinstance(factor.verify(alice, {"code": new[0]}, {}, Attempt(None, "x")), Accepted)
    hashes = " ".join(db.session.scalars(select(RecoveryCode.code_hash)))
    assert not any(c.replace("-", "") in hashes or c in hashes for c in new)


# --- no access to the app ----------------------------------------------------------------


def test_no_access_asks_the_admins_and_resolve_resets(client, factory, driver, rp, alice,
                                                       required):
    admin = factory.user("boss@example.com", tenant=required, role="admin")
    other_tenant = factory.tenant("globex", "Globex")
    stranger = factory.user("other-admin@example.com", tenant=other_tenant, role="admin")
    factory.user("member@example.com", tenant=required)
    enrol(alice)
    recovery_codes.issue(alice)
    db.session.commit()
    code_url = _to_factor_page(driver, rp)
    no_access = "/login/code/no-access?" + code_url.split("?", 1)[1]
    page = client.get(no_access)
    assert page.status_code == 200 and "Ask an administrator to reset it" in page.text
    sent = _post(client, no_access)
    assert sent.status_code == 200 and "An administrator will reset" in sent.text
    assert "code sent by email" in sent.text
    mails = outbox.messages(kind="factor_reset_request")
    assert [m.to_address for m in mails] == ["boss@example.com"]
    assert EMAIL in mails[0].text_body
    request = db.session.scalar(select(FactorResetRequest))
    assert (request.user_id, request.tenant_id, request.status) == (alice.id, required.id,
                                                                   "pending")
    # Asking again does not email again.
    _post(client, no_access)
    assert len(outbox.messages(kind="factor_reset_request")) == 1
    # Another tenant's admin cannot resolve it; the person cannot approve their own.
    for who in (stranger, alice):
        with pytest.raises(factor_reset.NotFound):
            factor_reset.resolve_request(request.id, who, True)
    factor_reset.resolve_request(request.id, admin, True)
    db.session.commit()
    assert db.session.scalar(select(func.count(TotpCredential.id))) == 0
    assert db.session.scalar(select(func.count(RecoveryCode.id))) == 0
    assert request.status == "approved" and request.resolved_by == admin.id
    assert "reset" in outbox.messages(EMAIL, "factor_changed")[-1].subject
    with pytest.raises(factor_reset.NotFound):  # resolved once
        factor_reset.resolve_request(request.id, admin, False)
    # The sign-in now asks the emailed code.
    _to_factor_page(driver, rp, prompt="login")
    assert outbox.messages(EMAIL, "login_code")


def test_no_access_requests_are_throttled(app, ctx, factory, alice, required):
    factory.user("boss@example.com", tenant=required, role="admin")
    limit = app.config["IDP_FACTOR_RESET_LIMIT"]
    for _ in range(limit):
        factor_reset.request_reset(alice, [required])
        db.session.commit()
        db.session.execute(text("UPDATE factor_reset_requests SET status = 'denied'"))
        db.session.commit()
    with pytest.raises(factor_reset.Throttled):
        factor_reset.request_reset(alice, [required])


# --- the security page -------------------------------------------------------------------


def _sign_in_with_code(driver, client):
    response = driver.sign_in()
    assert response.headers["Location"].startswith(CODE_PAGE)
    driver.follow(_post(client, response.headers["Location"], code=login_code()))


def test_enrolment_from_the_security_page(client, driver, alice, required):
    _sign_in_with_code(driver, client)
    page = client.get("/account/security")
    assert page.status_code == 200 and "Set up an authenticator app" in page.text
    start = _post(client, "/account/security/totp", "/account/security")
    assert start.status_code == 200 and "<svg" in start.text and "QR code" in start.text
    secret = SECRET_RE.search(start.text).group(1)
    assert len(secret) == 32
    rows = " ".join(str(r.data) for r in db.session.scalars(select(BrowserSession)))
    assert secret not in rows  # the enrolment state is sealed too
    wrong = _post(client, "/account/security/totp/confirm", "/account/security",
                  code=now_code(secret, 5))
    assert wrong.status_code == 400 and "not correct" in wrong.text
    assert SECRET_RE.search(wrong.text).group(1) == secret  # the same key, shown again
    done = _post(client, "/account/security/totp/confirm", "/account/security",
                 code=now_code(secret))
    assert done.status_code == 200 and "shown only once" in done.text
    codes = CODES_RE.findall(done.text)
    assert len(codes) == 10 and "recovery-codes.txt" in done.text
    assert outbox.messages(EMAIL, "factor_changed")[-1].subject.startswith(
        "An authenticator app was added")
    assert "10 of 10 codes left" in client.get("/account/security").text
    regenerated = _post(client, "/account/security/recovery-codes", "/account/security")
    assert regenerated.status_code == 200
    assert not set(CODES_RE.findall(regenerated.text)) & set(codes)
    assert outbox.messages(EMAIL, "factor_changed")[-1].subject == \
        "New recovery codes for your account"
    removed = _post(client, "/account/security/totp/remove", "/account/security")
    assert removed.status_code == 303
    assert db.session.scalar(select(func.count(TotpCredential.id))) == 0
    assert db.session.scalar(select(func.count(RecoveryCode.id))) == 0  # their backup too
    assert "removed" in outbox.messages(EMAIL, "factor_changed")[-1].subject


def test_changes_need_a_recent_sign_in_with_a_second_factor(client, factory, driver, alice,
                                                            clock):
    """acme optional: a password-only session is signed in but may not change factors."""
    driver.sign_in()
    page = client.get("/account/security")
    assert page.status_code == 200 and "Confirm it is you" in page.text
    for path in ("/account/security/totp", "/account/security/totp/confirm",
                 "/account/security/totp/remove", "/account/security/recovery-codes"):
        response = _post(client, path, "/account/security", code="123456")
        assert response.status_code == 303 and "confirm=1" in response.headers["Location"], path
    assert db.session.scalar(select(func.count(TotpCredential.id))) == 0
    wrong = _post(client, "/account/security/confirm", "/account/security", password="nope")
    assert wrong.status_code == 400 and "Incorrect password" in wrong.text
    confirm = _post(client, "/account/security/confirm", "/account/security", password=PASSWORD)
    assert confirm.status_code == 303 and confirm.headers["Location"].startswith(CODE_PAGE)
    back = _post(client, confirm.headers["Location"], code=login_code())
    assert back.status_code == 303 and back.headers["Location"].endswith("/account/security")
    assert "Set up an authenticator app</button>" in client.get("/account/security").text
    assert _post(client, "/account/security/totp", "/account/security").status_code == 200
    clock.advance(601)  # no longer recent
    late = _post(client, "/account/security/totp", "/account/security")
    assert late.status_code == 303 and "confirm=1" in late.headers["Location"]


def test_a_pending_session_reaches_neither_tokens_nor_security_changes(client, driver, rp,
                                                                      alice):
    enrol(alice)
    first = _authorize(driver, rp)
    flow_id = query_of(first.headers["Location"])["flow"]
    code_url = driver.login(first).headers["Location"]
    for path in ("/account/security", f"/oauth/authorize/resume?flow={flow_id}",
                 f"/consent?flow={flow_id}"):
        response = driver.follow(client.get(path))
        assert "Enter the code from your app" in response.text, path
    csrf = csrf_of(client.get(code_url).text)
    for path in ("/account/security/totp", "/account/security/totp/remove",
                 "/account/security/recovery-codes"):
        response = client.post(path, data={"csrf_token": csrf})
        assert response.status_code == 303 and "/login" in response.headers["Location"], path
    assert db.session.scalar(select(func.count(Grant.id))) == 0
    assert db.session.scalar(select(func.count(TotpCredential.id))) == 1


# --- trusted browsers ----------------------------------------------------------------------


@pytest.fixture
def trusting(required):
    from idp.services.trusted_browsers import set_trust_days

    set_trust_days(required, 30)
    db.session.commit()
    return required


def test_a_trusted_browser_skips_the_second_factor_until_revoked(client, driver, rp, alice,
                                                                 trusting):
    from idp.services import trusted_browsers

    secret = enrol(alice)
    code_url = _to_factor_page(driver, rp)
    page = client.get(code_url)
    assert "Trust this browser for 30 days" in page.text
    response = client.post(code_url, data={"code": now_code(secret), "trust_browser": "1",
                                           "csrf_token": csrf_of(page.text)})
    cookie = client.get_cookie(trusted_browsers.COOKIE_NAME)
    assert cookie is not None and cookie.http_only and cookie.max_age == 30 * 86400
    _lands(driver, response, rp)
    # The next sign-in in this browser: the password only, amr still tells the factors.
    response = driver.login(_authorize(driver, rp, prompt="login"))
    _lands(driver, response, rp)
    grant = _grant()
    assert grant.amr == ["pwd", "otp", "mfa"] and grant.acr == "urn:idp:loa:2"
    # The stored token is a hash; the cookie is bound to alice.
    row = db.session.scalar(select(trusted_browsers.TrustedBrowser))
    assert row.token_hash not in cookie.value
    assert trusted_browsers.token_from_cookie(cookie.value, alice.id + 1) is None
    # A trusted browser does not count as a fresh second factor for security changes.
    assert "Confirm it is you" in client.get("/account/security").text
    # Another browser is asked as before.
    other = outbox.isolated_client(client.application)
    from tests.support import Driver

    assert Driver(client.application, other).login(
        _authorize(Driver(client.application, other), rp)).headers["Location"].startswith(
        CODE_PAGE)
    # Revoked from the security page (after confirming it is you): asked again.
    confirm = _post(client, "/account/security/confirm", "/account/security", password=PASSWORD)
    driver.follow(_post(client, confirm.headers["Location"], code=now_code(secret, 1)))
    security = client.get("/account/security")
    assert "Trusted until" in security.text
    revoke = client.post(f"/account/security/browsers/{row.id}/revoke",
                         data={"csrf_token": csrf_of(security.text)})
    assert revoke.status_code == 303
    assert _to_factor_page(driver, rp, prompt="login").startswith(CODE_PAGE)


def test_trust_is_off_by_default_and_dies_with_a_password_change(client, driver, rp, alice,
                                                                 required):
    from idp.services import trusted_browsers
    from idp.services.accounts import finish_password_change

    secret = enrol(alice)
    page = client.get(_to_factor_page(driver, rp))
    assert "Trust this browser" not in page.text  # the tenant did not turn it on
    trusted_browsers.set_trust_days(required, 7)
    token = trusted_browsers.trust(alice.id, [{"id": "totp", "amr": ["otp"], "at": 1}], 7)
    db.session.commit()
    assert trusted_browsers.remembered(alice.id, token, 7)
    assert trusted_browsers.remembered(alice.id, token, 0) == []  # turned off since
    finish_password_change(alice, "password_reset")
    db.session.commit()
    assert trusted_browsers.remembered(alice.id, token, 7) == []
    assert secret  # the app stays set up


def test_a_forged_or_foreign_trust_cookie_is_ignored(client, driver, rp, alice, trusting,
                                                     factory):
    from idp.services import trusted_browsers

    enrol(alice)
    bob = factory.user("bob@example.com", tenant=trusting)
    token = trusted_browsers.trust(bob.id, [{"id": "totp", "amr": ["otp"], "at": 1}], 30)
    db.session.commit()
    for value in (trusted_browsers.cookie_value(bob.id, token),  # bob's, in alice's sign-in
                  trusted_browsers.cookie_value(alice.id, token),  # re-signed to alice: no row
                  "forged." + token):
        client.set_cookie(trusted_browsers.COOKIE_NAME, value, domain="localhost")
        assert _to_factor_page(driver, rp, prompt="login").startswith(CODE_PAGE)
    # The control: alice's own trust, set the same way, is honoured.
    mine = trusted_browsers.trust(alice.id, [{"id": "totp", "amr": ["otp"], "at": 1}], 30)
    db.session.commit()
    client.set_cookie(trusted_browsers.COOKIE_NAME, trusted_browsers.cookie_value(alice.id, mine),
                      domain="localhost")
    _lands(driver, driver.login(_authorize(driver, rp, prompt="login")), rp)


def test_bad_inputs_get_clear_errors_not_500s(app, client, driver, alice, required, clock,
                                              monkeypatch):
    _sign_in_with_code(driver, client)
    # Confirming with no setup started: the setup "took too long".
    early = _post(client, "/account/security/totp/confirm", "/account/security", code="123456")
    assert early.status_code == 400 and "took too long" in early.text
    start = _post(client, "/account/security/totp", "/account/security")
    secret = SECRET_RE.search(start.text).group(1)
    for junk in ("", "abcdef", "1" * 64, "12345", "<script>"):
        response = _post(client, "/account/security/totp/confirm", "/account/security",
                         code=junk)
        assert response.status_code == 400 and "not correct" in response.text, junk
    monkeypatch.setitem(app.config, "IDP_TOTP_ENROL_TTL", 60)
    clock.advance(61)  # the key waited too long for its first code
    late = _post(client, "/account/security/totp/confirm", "/account/security",
                 code=now_code(secret))
    assert late.status_code == 400 and "took too long" in late.text and db.session.scalar(
        select(func.count(TotpCredential.id))) == 0
    # A trusted browser that is not this person's, or no number at all.
    assert _post(client, "/account/security/browsers/999/revoke",
                 "/account/security").status_code in (303, 404)
    assert client.post("/account/security/browsers/x/revoke").status_code in (400, 404)
    # The sign-in's other ways without a sign-in, or a stale one.
    csrf = csrf_of(client.get("/account/security").text)
    for path in ("/login/code/choose", "/login/code/no-access",
                 "/login/code/choose?signin=nope"):
        response = client.post(path, data={"csrf_token": csrf, "factor": "email_code"})
        assert response.status_code == 400 and "no longer valid" in response.text, path
