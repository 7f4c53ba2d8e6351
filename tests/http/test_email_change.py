"""The account page: language, and changing the email address (step-up, confirm, notice)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from idp.extensions import db
from idp.models import AccountToken, User
from tests import outbox
from tests.support import PASSWORD, csrf_of

OLD = "alice@example.com"
NEW = "alice.new@example.com"
CONFIRM = "/account/email/confirm"


@pytest.fixture
def client(app):
    """Requests in their own app context (see tests/outbox.py), like separate browsers."""
    return outbox.isolated_client(app)


@pytest.fixture
def alice(factory):
    return factory.user(OLD, given_name="Alice", family_name="Martin")


@pytest.fixture
def signed_in(client, alice):
    page = client.get("/login")
    response = client.post("/login", data={"email": OLD, "password": PASSWORD,
                                           "csrf_token": csrf_of(page.text)})
    assert response.status_code == 303
    return client


def _request(client, new_email=NEW, password=None, csrf=True):
    page = client.get("/account/email")
    data = {"new_email": new_email}
    if password is not None:
        data["password"] = password
    if csrf:
        data["csrf_token"] = csrf_of(page.text)
    return client.post("/account/email", data=data)


def _email_of(user_id: int) -> str:
    db.session.expire_all()
    return db.session.get(User, user_id).email


def _confirm(client, link):
    page = client.get(link)
    assert page.status_code == 200, page.text
    return client.post(CONFIRM, data={"token": outbox.token_of(link),
                                      "csrf_token": csrf_of(page.text)})


# ----------------------------------------------------------------------------- profile


def test_the_account_page_needs_a_session(client):
    for path in ("/account", "/account/email"):
        response = client.get(path)
        assert response.status_code == 303 and response.headers["Location"] == "/login"


def test_profile_shows_email_name_language(signed_in, alice):
    page = signed_in.get("/account")
    assert page.status_code == 200
    assert OLD in page.text and "Alice Martin" in page.text
    assert 'name="locale"' in page.text and 'href="/account/email"' in page.text
    assert page.headers["Cache-Control"] == "no-store"


def test_language_is_stored_and_used(signed_in, alice):
    page = signed_in.get("/account")
    response = signed_in.post("/account/language", data={"locale": "fr",
                                                         "csrf_token": csrf_of(page.text)})
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(User, alice.id).locale == "fr"
    french = signed_in.get(response.headers["Location"], headers={"Accept-Language": "en"})
    assert 'lang="fr"' in french.text and "Votre langue a été enregistrée." in french.text


@pytest.mark.parametrize("value", ["de", "", "x" * 10_240, "fr\n"])
def test_unknown_languages_change_nothing(signed_in, alice, value):
    page = signed_in.get("/account")
    signed_in.post("/account/language", data={"locale": value, "csrf_token": csrf_of(page.text)})
    db.session.expire_all()
    assert db.session.get(User, alice.id).locale is None


def test_language_needs_csrf(signed_in, alice):
    response = signed_in.post("/account/language", data={"locale": "fr"})
    assert response.status_code == 400
    db.session.expire_all()
    assert db.session.get(User, alice.id).locale is None


# ----------------------------------------------------------------------------- change


def test_change_takes_effect_only_after_the_new_address_confirms(signed_in, alice, app):
    response = _request(signed_in)
    assert response.status_code == 303 and response.headers["Location"] == "/account/email/sent"
    sent = signed_in.get("/account/email/sent")
    assert NEW in sent.text and OLD in sent.text
    assert sorted(outbox.kinds()) == [("email_change_notice", OLD), ("email_change_verify", NEW)]
    notice = outbox.messages(OLD, "email_change_notice")[0]
    assert "a***@example.com" in notice.text_body and NEW not in notice.text_body
    assert _email_of(alice.id) == OLD, "nothing changes before the confirmation"
    link = outbox.last_link(NEW, "email_change_verify", CONFIRM)
    page = signed_in.get(link)
    assert page.status_code == 200 and _email_of(alice.id) == OLD, "GET changes nothing"
    done = _confirm(signed_in, link)
    assert done.status_code == 200 and NEW in done.text
    assert _email_of(alice.id) == NEW
    db.session.expire_all()
    assert db.session.get(User, alice.id).email_verified
    # The old address no longer signs in; the new one does.
    other = outbox.isolated_client(app)
    login = other.get("/login")
    assert other.post("/login", data={"email": OLD, "password": PASSWORD,
                                      "csrf_token": csrf_of(login.text)}).status_code == 400
    assert other.post("/login", data={"email": NEW, "password": PASSWORD,
                                      "csrf_token": csrf_of(login.text)}).status_code == 303


def test_the_link_works_in_another_browser(signed_in, alice, app):
    _request(signed_in)
    other = outbox.isolated_client(app)
    assert _confirm(other, outbox.last_link(NEW, "email_change_verify", CONFIRM)).status_code == 200
    assert _email_of(alice.id) == NEW


def test_an_address_of_another_account_gets_the_same_answer(signed_in, alice, factory):
    bob = factory.user("bob@example.com")
    response = _request(signed_in, "Bob@Example.com")
    assert response.status_code == 303 and response.headers["Location"] == "/account/email/sent"
    assert outbox.kinds() == [("email_change_notice", OLD)]
    assert db.session.scalar(select(AccountToken)) is None
    assert _email_of(alice.id) == OLD and _email_of(bob.id) == "bob@example.com"


def test_the_address_taken_meanwhile(signed_in, alice, factory):
    _request(signed_in)
    link = outbox.last_link(NEW, "email_change_verify", CONFIRM)
    factory.user(NEW)
    page = signed_in.get(link)
    assert page.status_code == 200
    response = signed_in.post(CONFIRM, data={"token": outbox.token_of(link),
                                             "csrf_token": csrf_of(page.text)})
    assert response.status_code == 400
    assert _email_of(alice.id) == OLD


def test_a_newer_request_kills_the_older_link(signed_in, alice):
    _request(signed_in)
    first = outbox.last_link(NEW, "email_change_verify", CONFIRM)
    _request(signed_in, "alice.other@example.com")
    assert signed_in.get(first).status_code == 400
    _confirm(signed_in, outbox.last_link("alice.other@example.com", "email_change_verify", CONFIRM))
    assert _email_of(alice.id) == "alice.other@example.com"


# ----------------------------------------------------------------------------- step-up


def test_an_old_login_must_type_the_password(signed_in, alice, clock):
    clock.advance(11 * 60)
    page = signed_in.get("/account/email")
    assert 'name="password"' in page.text and "current password" in page.text
    missing = _request(signed_in)
    assert missing.status_code == 400 and "This password is not correct." in missing.text
    wrong = _request(signed_in, password=PASSWORD + "x")
    assert wrong.status_code == 400
    assert outbox.kinds() == []
    right = _request(signed_in, password=PASSWORD)
    assert right.status_code == 303
    assert ("email_change_verify", NEW) in outbox.kinds()
    # Re-entered just now: the next request within 10 minutes needs no password.
    assert 'name="password"' not in signed_in.get("/account/email").text


def test_a_recent_login_needs_no_password(signed_in, alice):
    page = signed_in.get("/account/email")
    assert 'name="password"' not in page.text


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("value", "message"), [
    ("", "Enter a valid email address"),
    ("not-an-address", "Enter a valid email address"),
    ("josé@exämple.fr", "without accents"),
    ("x" * 10_240 + "@example.com", "too long"),
    ("ALICE@example.com", "This is already your email address."),
])
def test_bad_new_addresses(signed_in, alice, value, message):
    response = _request(signed_in, value)
    assert response.status_code == 400
    assert message in response.text
    assert len(response.text) < 20_000
    assert outbox.kinds() == []


def test_an_internationalised_domain(signed_in, alice):
    assert _request(signed_in, "alice@exämple.fr").status_code == 303
    _confirm(signed_in, outbox.last_link("alice@xn--exmple-cua.fr", "email_change_verify", CONFIRM))
    assert _email_of(alice.id) == "alice@xn--exmple-cua.fr"


def test_missing_csrf_changes_nothing(signed_in, alice):
    assert _request(signed_in, csrf=False).status_code == 400
    assert outbox.kinds() == []


# ----------------------------------------------------------------------------- links


def test_a_used_link(signed_in, alice):
    _request(signed_in)
    link = outbox.last_link(NEW, "email_change_verify", CONFIRM)
    _confirm(signed_in, link)
    again = signed_in.get(link)
    assert again.status_code == 400 and "already used" in again.text


def test_an_expired_link(signed_in, alice, clock):
    _request(signed_in)
    link = outbox.last_link(NEW, "email_change_verify", CONFIRM)
    page = signed_in.get(link)
    clock.advance(24 * 3600 + 1)
    late = signed_in.post(CONFIRM, data={"token": outbox.token_of(link),
                                         "csrf_token": csrf_of(page.text)})
    assert late.status_code == 400 and "has expired" in late.text
    assert _email_of(alice.id) == OLD


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
    lambda t: t[: len(t) // 2],
    lambda t: "",
    lambda t: t + "x" * 10_000,
], ids=["tampered", "truncated", "empty", "huge"])
def test_bad_links(signed_in, alice, mangle):
    _request(signed_in)
    token = outbox.token_of(outbox.last_link(NEW, "email_change_verify", CONFIRM))
    assert signed_in.get(CONFIRM, query_string={"token": mangle(token)}).status_code == 400
    page = signed_in.get("/account")
    posted = signed_in.post(CONFIRM, data={"token": mangle(token),
                                           "csrf_token": csrf_of(page.text)})
    assert posted.status_code == 400
    assert _email_of(alice.id) == OLD


def test_a_disabled_account_cannot_confirm(signed_in, alice):
    _request(signed_in)
    link = outbox.last_link(NEW, "email_change_verify", CONFIRM)
    db.session.get(User, alice.id).active = False
    db.session.commit()
    assert signed_in.get(link).status_code == 400
    assert _email_of(alice.id) == OLD


# ----------------------------------------------------------------------------- pre-account takeover


def _squat(app, factory, email=NEW):
    """Someone self-registers the address (pending, their password) and never confirms."""
    factory.tenant("squat", "Squatter Inc")
    attacker = outbox.isolated_client(app)
    page = attacker.get("/t/squat/register")
    assert attacker.post("/t/squat/register", data={
        "email": email, "new_password": "Squatter-Pa55-word!",
        "confirm_password": "Squatter-Pa55-word!",
        "csrf_token": csrf_of(page.text)}).status_code == 303
    return db.session.scalar(select(User.id).where(User.email == email))


def test_a_pre_registered_address_does_not_block_the_owners_change(signed_in, alice, app,
                                                                    factory):
    squatter_id = _squat(app, factory)
    verify_link = outbox.last_link(NEW, "verify_email", "/verify-email")
    _request(signed_in)
    link = outbox.last_link(NEW, "email_change_verify", CONFIRM)
    assert _confirm(signed_in, link).status_code == 200
    assert _email_of(alice.id) == NEW
    db.session.expire_all()
    assert db.session.get(User, squatter_id) is None, "the unconfirmed registration is gone"
    assert signed_in.get(verify_link).status_code == 400


def test_a_registration_during_the_change_does_not_block_it(signed_in, alice, app, factory):
    _request(signed_in)
    link = outbox.last_link(NEW, "email_change_verify", CONFIRM)
    _squat(app, factory)
    assert _confirm(signed_in, link).status_code == 200
    assert _email_of(alice.id) == NEW
