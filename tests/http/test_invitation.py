"""The Complete Registration page over HTTP (seeds 000, 001): every bad input, one effect."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from idp.extensions import db
from idp.models import AccountToken, User
from idp.services import accounts, invitations
from tests.lifecycle import (
    GOOD_PASSWORD,
    OTHER_PASSWORD,
    digest,
    link_in,
    local,
    new_password_form,
    outbox,
    password_errors,
    signed_in_email,
    submit,
    token_of,
    weak_password_cases,
)
from tests.support import csrf_of

EMAIL = "dana.invited@example.com"


@pytest.fixture
def invitation(factory):
    invitation = invitations.invite_user(factory.tenant("acme", "Acme Fleet"), EMAIL, "member")
    db.session.commit()
    return invitation


@pytest.fixture
def url(invitation) -> str:
    return local(invitation.link)


def user_row() -> User:
    db.session.expire_all()
    return db.session.scalar(select(User).where(User.email == EMAIL))


def assert_unchanged() -> None:
    user = user_row()
    assert user.password_hash is None and not user.active and not user.email_verified
    assert [m.template for m in outbox(to=EMAIL)] == ["welcome"]


def test_the_page_shows_the_rules_and_loads_the_checker_with_the_nonce(client, url):
    page = client.get(url)
    assert page.status_code == 200
    html = page.text
    for rule in ("At least 8 characters", "At least 1 uppercase letter",
                 "At least 1 lowercase letter", "At least 1 number", "At least 1 symbol",
                 "Not a commonly used password", "Does not contain your email address"):
        assert rule in html
    assert 'data-min-length="8"' in html and 'data-require-symbol="true"' in html
    assert 'data-email-local="dana.invited"' in html
    assert re.search(r'<input id="new_password" name="new_password" type="password" '
                     r'autocomplete="new-password"', html)
    assert re.search(r'<input id="confirm_password" name="confirm_password" type="password" '
                     r'autocomplete="new-password"', html)
    assert "Generate password" in html and EMAIL in html and "Acme Fleet" in html
    nonce = re.search(r"'nonce-([^']+)'", page.headers["Content-Security-Policy"]).group(1)
    assert f'<script src="/static/password.js" nonce="{nonce}" defer></script>' in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "no inline script"
    assert not re.search(r"\son[a-z]+\s*=", html), "no inline event handler"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Cache-Control"] == "no-store"
    assert client.get("/static/password.js").status_code == 200
    assert "crypto.getRandomValues" in client.get("/static/password.js").text


def test_completing_sets_the_password_and_sends_the_person_to_sign_in(client, url):
    response = submit(client, url, new_password_form(GOOD_PASSWORD))
    assert response.status_code == 303
    assert response.headers["Location"] == "/invitation/done"
    done = client.get("/invitation/done")
    assert "Sign in" in done.text and 'href="/login"' in done.text
    assert signed_in_email(client) is None  # no automatic login
    user = user_row()
    assert user.active and user.email_verified and user.password_hash.startswith("$argon2id$")
    assert [m.template for m in outbox(to=EMAIL)] == ["welcome", "password_changed"]
    page = client.get("/login")
    signed = client.post("/login", data={"email": EMAIL, "password": GOOD_PASSWORD,
                                         "csrf_token": csrf_of(page.text)})
    assert signed.status_code == 303
    assert signed_in_email(client) == EMAIL


def test_a_get_does_not_use_the_link(client, url):
    for _ in range(3):
        assert client.get(url).status_code == 200
    assert submit(client, url, new_password_form(GOOD_PASSWORD)).status_code == 303


def test_a_reused_link_is_refused(client, url):
    assert submit(client, url, new_password_form(GOOD_PASSWORD)).status_code == 303
    again = client.get(url)
    assert again.status_code == 400
    assert "not valid or was already used" in again.text
    refused = client.post(url, data={**new_password_form(OTHER_PASSWORD),
                                     "csrf_token": csrf_of(client.get("/login").text)})
    assert refused.status_code == 400
    assert accounts.authenticate(EMAIL, GOOD_PASSWORD).email == EMAIL


def test_an_expired_link_is_refused(client, url, clock):
    clock.advance(72 * 3600 + 1)
    page = client.get(url)
    assert page.status_code == 400 and "expired" in page.text
    assert 'href="/password/forgot"' in page.text  # a way to get a new link
    csrf = csrf_of(client.get("/login").text)
    assert client.post(url, data={**new_password_form(GOOD_PASSWORD),
                                  "csrf_token": csrf}).status_code == 400
    assert_unchanged()


@pytest.mark.parametrize("mangle", [
    pytest.param(lambda t: t[:-1], id="truncated"),
    pytest.param(lambda t: t[:20], id="half"),
    pytest.param(lambda t: ("B" if t[0] == "A" else "A") + t[1:], id="tampered"),
    pytest.param(lambda t: t.upper(), id="case-changed"),
    pytest.param(lambda t: "", id="empty"),
    pytest.param(lambda t: t + "A" * 10_000, id="10kB"),
])
def test_mangled_links_are_refused(client, invitation, mangle):
    bad = "/invitation?token=" + mangle(token_of(invitation.link))
    page = client.get(bad)
    assert page.status_code == 400 and "not valid" in page.text
    csrf = csrf_of(client.get("/login").text)
    assert client.post(bad, data={**new_password_form(GOOD_PASSWORD),
                                  "csrf_token": csrf}).status_code == 400
    assert_unchanged()


def test_no_token_at_all(client, invitation):
    assert client.get("/invitation").status_code == 400
    assert_unchanged()


def test_a_superseded_link_is_refused_and_the_newest_works(client, invitation):
    newest = invitations.resend_invitation(invitation.user)
    db.session.commit()
    assert client.get(local(invitation.link)).status_code == 400
    assert submit(client, local(newest), new_password_form(GOOD_PASSWORD)).status_code == 303


def test_a_mismatched_confirmation_changes_nothing(client, url):
    response = submit(client, url, new_password_form(GOOD_PASSWORD, OTHER_PASSWORD))
    assert response.status_code == 400
    assert password_errors(response.text) == ["The two passwords do not match."]
    assert 'id="confirm_password"' in response.text and "aria-invalid" in response.text
    assert_unchanged()
    assert submit(client, url, new_password_form(GOOD_PASSWORD)).status_code == 303


@pytest.mark.parametrize("password, rule", weak_password_cases("Dana.Invited-77"))
def test_each_rule_is_checked_server_side_and_named(client, url, password, rule):
    response = submit(client, url, new_password_form(password))
    assert response.status_code == 400
    assert password_errors(response.text) == [rule]  # exactly the rule that failed
    assert re.search(r'<li data-rule="[a-z_]+" class="rule rule-unmet">\s*<span class="rule-icon" '
                     r'aria-hidden="true">✗</span>\s*<span class="rule-text">'
                     + re.escape(rule), response.text)
    assert_unchanged()


@pytest.mark.parametrize("missing", ["new_password", "confirm_password", "both"])
def test_empty_fields(client, url, missing):
    form = new_password_form(GOOD_PASSWORD)
    for name in (["new_password", "confirm_password"] if missing == "both" else [missing]):
        form.pop(name)
    response = submit(client, url, form)
    assert response.status_code == 400
    assert password_errors(response.text) == ["Enter your new password in both fields."]
    assert_unchanged()


def test_ten_kilobyte_fields_are_refused_cleanly(client, url):
    big = "Aa1!" * 2560
    response = submit(client, url, {"new_password": big, "confirm_password": big,
                                    "username": "x" * 10_240})
    assert response.status_code == 400
    assert password_errors(response.text) == ["At most 1024 characters"]
    assert big not in response.text  # never echoed back
    assert_unchanged()


def test_long_passwords_are_accepted(client, url):
    password = ("Tulip-Orbit-47!" * 10)[:128]
    assert submit(client, url, new_password_form(password)).status_code == 303
    assert accounts.authenticate(EMAIL, password).email == EMAIL


def test_a_missing_csrf_token_changes_nothing(client, url):
    client.get(url)
    response = client.post(url, data=new_password_form(GOOD_PASSWORD))
    assert response.status_code == 400
    assert "Your session has expired" in response.text
    assert_unchanged()
    assert client.get(url).status_code == 200  # the link still works


def test_a_double_submission_has_one_effect(client, url):
    page = client.get(url)
    form = {**new_password_form(GOOD_PASSWORD), "csrf_token": csrf_of(page.text)}
    first = client.post(url, data=form)
    second = client.post(url, data={**form, **new_password_form(OTHER_PASSWORD)})
    assert first.status_code == 303
    assert second.status_code == 400 and "already used" in second.text
    assert accounts.authenticate(EMAIL, GOOD_PASSWORD).email == EMAIL
    assert [m.template for m in outbox(to=EMAIL)] == ["welcome", "password_changed"]
    assert db.session.scalar(select(func.count()).select_from(AccountToken).where(
        AccountToken.used_at.is_(None))) == 0


def test_the_tenant_policy_is_shown_and_enforced(client, factory):
    tenant = factory.tenant("strict", "Strict Co")
    tenant.settings = {"password_policy": {"min_length": 16, "require_symbol": False}}
    db.session.commit()
    invitation = invitations.invite_user(tenant, EMAIL)
    db.session.commit()
    url = local(invitation.link)
    page = client.get(url).text
    assert "At least 16 characters" in page and "At least 1 symbol" not in page
    assert 'data-min-length="16"' in page and 'data-require-symbol="false"' in page
    response = submit(client, url, new_password_form(GOOD_PASSWORD))  # 15 characters
    assert password_errors(response.text) == ["At least 16 characters"]
    assert submit(client, url, new_password_form("Tulip Orbit Harbor 47")).status_code == 303


def test_the_page_is_in_french_for_a_french_browser(client, url):
    headers = {"Accept-Language": "fr-CA,fr;q=0.9"}
    page = client.get(url, headers=headers)
    assert "<h1>Compléter votre inscription</h1>" in page.text
    assert "Au moins 8 caractères" in page.text
    response = submit(client, url, new_password_form("Sh0rt!a"), headers=headers)
    assert password_errors(response.text) == ["Au moins 8 caractères"]


def test_the_link_in_the_email_is_hashed_at_rest(invitation):
    raw = token_of(invitation.link)
    stored = db.session.scalar(select(AccountToken.token_hash))
    assert stored == digest(raw) and stored != raw


def test_inviting_a_pre_registered_address_mails_the_invitation(client, app, factory):
    """An attacker self-registered the address first (pending, their password): the
    invitee still gets the welcome link, and completing it leaves no trace of the squatter."""
    squatter_password = "Squatter-Pa55-word!"
    factory.tenant("squat", "Squatter Inc")
    attacker = app.test_client()
    page = attacker.get("/t/squat/register")
    assert attacker.post("/t/squat/register", data={
        "email": EMAIL, "new_password": squatter_password,
        "confirm_password": squatter_password, "csrf_token": csrf_of(page.text)}).status_code == 303
    [verify] = outbox("verify_email", EMAIL)
    acme = factory.tenant("acme", "Acme Fleet")
    invitation = invitations.invite_user(acme, EMAIL)
    db.session.commit()
    assert invitation.link is not None
    assert [m.template for m in outbox(to=EMAIL)] == ["verify_email", "welcome"]
    done = submit(client, local(invitation.link), new_password_form(GOOD_PASSWORD))
    assert done.status_code == 303
    assert accounts.authenticate(EMAIL, GOOD_PASSWORD).email == EMAIL
    with pytest.raises(accounts.InvalidCredentials):
        accounts.authenticate(EMAIL, squatter_password)
    assert [m.tenant_id for m in user_row().memberships] == [acme.id]
    assert client.get(local(link_in(verify, "/verify-email"))).status_code == 400
