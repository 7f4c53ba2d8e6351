"""Self-registration at a tenant (seed 002), over HTTP: every bad input, races, links."""

from __future__ import annotations

import re
import threading

import pytest
import requests
from sqlalchemy import func, select

from idp.extensions import db
from idp.models import AccountToken, Membership, User
from tests import outbox
from tests.support import csrf_of

GOOD = "Tr0ub4dor&3-horse"
OTHER = "Another-Str0ng-pass"
VERIFY_PATH = "/verify-email"


@pytest.fixture
def tenant(factory):
    return factory.tenant("acme", "Acme Fleet")


def _register(client, email, password=GOOD, confirm=None, slug="acme", csrf=True, **extra):
    page = client.get(f"/t/{slug}/register")
    data = {"email": email, "new_password": password,
            "confirm_password": password if confirm is None else confirm, **extra}
    if csrf:
        data["csrf_token"] = csrf_of(page.text)
    return client.post(f"/t/{slug}/register", data=data)


def _users() -> list[User]:
    db.session.expire_all()
    return list(db.session.scalars(select(User).order_by(User.id)))


def _user(email: str) -> User | None:
    db.session.expire_all()
    return db.session.scalar(select(User).where(User.email == email))


def _link_post(client, link, data):
    """Open the emailed link, then send one of its page's two forms."""
    page = client.get(link)
    assert page.status_code == 200, page.text
    return client.post(VERIFY_PATH, data={"token": outbox.token_of(link),
                                          "csrf_token": csrf_of(page.text), **data})


def _verify(client, link, password=GOOD):
    """Finish with the password chosen at registration."""
    return _link_post(client, link, {"choice": "password", "password": password})


def _choose(client, link, password, confirm=None):
    """Finish by choosing a new password on the link's page."""
    return _link_post(client, link, {
        "choice": "new_password", "new_password": password,
        "confirm_password": password if confirm is None else confirm})


def _login(client, email, password, slug="acme"):
    page = client.get(f"/t/{slug}/login")
    return client.post(f"/t/{slug}/login", data={"email": email, "password": password,
                                                  "csrf_token": csrf_of(page.text)})


def _sent_text(response, client) -> str:
    """The "check your email" page, without what differs per request (token, flow id)."""
    assert response.status_code == 303, response.text[:500]
    assert re.fullmatch(r"/t/acme/register/sent\?flow=[\w-]+", response.headers["Location"])
    page = client.get(response.headers["Location"])
    assert page.status_code == 200
    text = re.sub(r'value="[^"]*"', 'value=""', page.text)
    return text


@pytest.fixture
def client(app):
    """Requests in their own app context (see tests/outbox.py), like separate browsers."""
    return outbox.isolated_client(app)


# ----------------------------------------------------------------------------- happy path


def _memberships(email: str) -> list[tuple[int, str]]:
    user = _user(email)
    return [(m.tenant_id, m.role) for m in db.session.scalars(
        select(Membership).where(Membership.user_id == user.id).order_by(Membership.id))]


def test_registration_creates_an_inactive_account_and_mails_a_link(client, tenant):
    response = _register(client, "Bob@Example.com")
    text = _sent_text(response, client)
    assert "bob@example.com" in text
    assert "spam" in text  # the spam-folder hint
    user = _user("bob@example.com")
    assert user is not None and not user.active and not user.email_verified
    # The membership comes with the followed link, not with an unconfirmed registration.
    assert _memberships("bob@example.com") == []
    assert outbox.kinds() == [("verify_email", "bob@example.com")]
    # Inactive until confirmed: the login answers like for a wrong password.
    assert _login(client, "bob@example.com", GOOD).status_code == 400
    _verify(client, outbox.last_link("bob@example.com", "verify_email", VERIFY_PATH))
    assert _memberships("bob@example.com") == [(tenant.id, "member")]


def test_following_the_link_activates_without_signing_in(client, tenant):
    _register(client, "bob@example.com")
    link = outbox.last_link("bob@example.com", "verify_email", VERIFY_PATH)
    page = client.get(link)
    assert page.status_code == 200 and "Activate my account" in page.text
    assert "Enter the password you chose to finish" in page.text
    assert 'name="password"' in page.text and 'autocomplete="current-password"' in page.text
    assert 'name="new_password"' in page.text  # or choose another one here
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert not _user("bob@example.com").active, "a GET never changes state"
    done = _verify(client, link)
    assert done.status_code == 200
    assert "You can now sign in" in done.text and 'href="/t/acme/login"' in done.text
    user = _user("bob@example.com")
    assert user.active and user.email_verified
    assert "Signed in as" not in client.get("/").text  # no automatic login
    assert _login(client, "bob@example.com", GOOD).status_code == 303


def test_the_link_is_hashed_at_rest_and_long(client, tenant):
    _register(client, "bob@example.com")
    token = outbox.token_of(outbox.last_link("bob@example.com", "verify_email", VERIFY_PATH))
    assert len(token) >= 43  # 256 bits, base64url
    rows = db.session.scalars(select(AccountToken)).all()
    assert len(rows) == 1 and rows[0].purpose == "verify_email"
    assert token not in rows[0].token_hash and rows[0].expires_at - rows[0].created_at == 24 * 3600


# ----------------------------------------------------------------------------- links


def test_a_used_link_is_refused(client, tenant):
    _register(client, "bob@example.com")
    link = outbox.last_link("bob@example.com", "verify_email", VERIFY_PATH)
    assert _verify(client, link).status_code == 200
    again = client.get(link)
    assert again.status_code == 400 and "already used" in again.text
    replay = client.post(VERIFY_PATH, data={"token": outbox.token_of(link), "csrf_token": csrf_of(
        client.get("/t/acme/register").text)})
    assert replay.status_code == 400


def test_an_expired_link_is_refused(client, tenant, clock):
    _register(client, "bob@example.com")
    link = outbox.last_link("bob@example.com", "verify_email", VERIFY_PATH)
    page = client.get(link)
    clock.advance(24 * 3600 + 1)
    assert "has expired" in client.get(link).text
    late = client.post(VERIFY_PATH, data={"token": outbox.token_of(link),
                                          "csrf_token": csrf_of(page.text)})
    assert late.status_code == 400 and "has expired" in late.text
    assert not _user("bob@example.com").active


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # tampered
    lambda t: t[: len(t) // 2],  # truncated (a mail client cut the line)
    lambda t: "",  # missing
    lambda t: t + "x" * 10_000,  # 10 kB
    lambda t: t.upper(),
], ids=["tampered", "truncated", "empty", "huge", "case"])
def test_bad_links_are_refused(client, tenant, mangle):
    _register(client, "bob@example.com")
    token = outbox.token_of(outbox.last_link("bob@example.com", "verify_email", VERIFY_PATH))
    bad = mangle(token)
    page = client.get(VERIFY_PATH, query_string={"token": bad})
    assert page.status_code == 400 and "not valid" in page.text
    form = client.get("/t/acme/register")
    posted = client.post(VERIFY_PATH, data={"token": bad, "csrf_token": csrf_of(form.text)})
    assert posted.status_code == 400
    assert not _user("bob@example.com").active


def test_resend_sends_a_link_and_the_older_one_still_works(client, tenant):
    response = _register(client, "bob@example.com")
    sent = client.get(response.headers["Location"])
    first = outbox.last_link("bob@example.com", "verify_email", VERIFY_PATH)
    flow = re.search(r'name="flow" value="([^"]+)"', sent.text).group(1)
    again = client.post("/t/acme/register/resend", data={"flow": flow,
                                                         "csrf_token": csrf_of(sent.text)})
    assert again.status_code == 303
    assert "A new link is on its way" in client.get(again.headers["Location"]).text
    second = outbox.last_link("bob@example.com", "verify_email", VERIFY_PATH)
    assert first != second and len(outbox.messages("bob@example.com", "verify_email")) == 2
    assert client.get(first).status_code == 200, "a new link never kills the older ones"
    assert _verify(client, second).status_code == 200
    assert client.get(first).status_code == 400, "once one is used, they all die"


def test_resend_without_a_flow_goes_back_to_the_form(client, tenant):
    page = client.get("/t/acme/register")
    response = client.post("/t/acme/register/resend", data={"flow": "nope",
                                                            "csrf_token": csrf_of(page.text)})
    assert response.status_code == 303 and response.headers["Location"] == "/t/acme/register"
    assert outbox.kinds() == []


# ----------------------------------------------------------------------------- existing address


def test_an_existing_address_gets_the_same_answer_and_a_notice(client, tenant, factory):
    owner = factory.user("alice@example.com")
    hash_before = owner.password_hash
    new = _sent_text(_register(client, "new@example.com"), client)
    existing = _sent_text(_register(client, "ALICE@example.com", OTHER), client)
    assert existing.replace("alice@example.com", "X") == new.replace("new@example.com", "X")
    assert outbox.kinds() == [("verify_email", "new@example.com"),
                              ("account_exists_notice", "alice@example.com")]
    notice = outbox.messages("alice@example.com")[0]
    assert "/t/acme/login" in notice.text_body
    alice = _user("alice@example.com")
    assert alice.password_hash == hash_before and alice.active
    assert len(_users()) == 2


def test_existing_account_in_another_tenant_gets_no_membership(client, tenant, factory):
    other = factory.tenant("globex", "Globex")
    factory.user("alice@example.com", tenant=other)
    _register(client, "alice@example.com")
    alice = _user("alice@example.com")
    assert [m.tenant_id for m in alice.memberships] == [other.id]


def test_registering_again_while_pending_keeps_one_account_and_its_password(client, tenant):
    _register(client, "bob@example.com", GOOD)
    hash_before = _user("bob@example.com").password_hash
    first = outbox.last_link("bob@example.com", "verify_email", VERIFY_PATH)
    _register(client, "bob@example.com", OTHER)
    second = outbox.last_link("bob@example.com", "verify_email", VERIFY_PATH)
    assert len(_users()) == 1 and first != second
    assert _user("bob@example.com").password_hash == hash_before
    assert client.get(first).status_code == 200
    assert _verify(client, second, OTHER).status_code == 400
    assert _verify(client, second, GOOD).status_code == 200
    assert _login(client, "bob@example.com", OTHER).status_code == 400
    assert _login(client, "bob@example.com", GOOD).status_code == 303


def test_mails_per_address_are_capped(client, tenant):
    for _ in range(7):
        assert _register(client, "bob@example.com").status_code == 303
    assert len(outbox.messages("bob@example.com")) == 5
    assert len(_users()) == 1


# ----------------------------------------------------------------------------- pre-account takeover
# Whoever registers an address, only the holder of its mailbox activates it, with a
# password they know; the owner is never locked out of their own registration.

VICTIM = "victim@example.com"
SQUATTER = "Squatter-Pa55-word!"


def _mailbox(email: str = VICTIM) -> list[str]:
    """The verify links the address received, oldest first."""
    return [outbox.links_in(m, VERIFY_PATH)[0] for m in outbox.messages(email, "verify_email")]


def test_attacker_first_the_victim_following_the_link_does_not_activate_it(client, tenant, app):
    """(a) The attacker registers the victim's address; the puzzled victim clicks."""
    attacker = outbox.isolated_client(app)
    _register(attacker, VICTIM, SQUATTER)
    [link] = _mailbox()
    page = client.get(link)
    assert page.status_code == 200 and "Enter the password you chose to finish" in page.text
    # The seed's one-button page activated here: a bare POST is now refused.
    bare = client.post(VERIFY_PATH, data={"token": outbox.token_of(link),
                                          "csrf_token": csrf_of(page.text)})
    assert bare.status_code == 400 and not _user(VICTIM).active
    guess = _verify(client, link, GOOD)
    assert guess.status_code == 400 and "choose a new password" in guess.text
    assert not _user(VICTIM).active
    # The victim holds the mailbox: choosing a password here makes the account theirs.
    done = _choose(client, link, GOOD)
    assert done.status_code == 200 and "You can now sign in" in done.text
    assert _login(attacker, VICTIM, SQUATTER).status_code == 400
    assert _login(client, VICTIM, GOOD).status_code == 303


def test_attacker_first_then_the_victim_registers_too(client, tenant, app):
    """The victim registers after the attacker: their password is not the pending one."""
    attacker = outbox.isolated_client(app)
    _register(attacker, VICTIM, SQUATTER)
    _register(client, VICTIM, GOOD)
    first, newest = _mailbox()
    assert _verify(client, newest, GOOD).status_code == 400
    assert _choose(client, newest, GOOD).status_code == 200
    assert client.get(first).status_code == 400
    assert _login(attacker, VICTIM, SQUATTER).status_code == 400
    assert _login(client, VICTIM, GOOD).status_code == 303


def test_victim_first_a_second_registration_replaces_nothing(client, tenant, app):
    """(b) The victim registers; the attacker registers the same address before the click."""
    victim_sent = _sent_text(_register(client, VICTIM, GOOD), client)
    hash_before = _user(VICTIM).password_hash
    attacker = outbox.isolated_client(app)
    attacker_sent = _sent_text(_register(attacker, VICTIM, SQUATTER), attacker)
    assert attacker_sent == victim_sent, "the same answer as a new registration"
    assert _user(VICTIM).password_hash == hash_before
    first, newest = _mailbox()
    assert client.get(first).status_code == 200, "the victim's first link still works"
    # The newest link in the victim's mailbox does not activate the attacker's password.
    assert _verify(client, newest, SQUATTER).status_code == 400
    assert _verify(client, newest, GOOD).status_code == 200
    assert _login(attacker, VICTIM, SQUATTER).status_code == 400
    assert _login(client, VICTIM, GOOD).status_code == 303


def test_victim_first_then_attacker_the_first_link_finishes(client, tenant, app):
    _register(client, VICTIM, GOOD)
    _register(outbox.isolated_client(app), VICTIM, SQUATTER)
    first, newest = _mailbox()
    assert _verify(client, first, GOOD).status_code == 200
    assert client.get(newest).status_code == 400, "once one link is used, every one dies"
    assert _login(client, VICTIM, GOOD).status_code == 303


def test_every_link_works_until_one_is_used(client, tenant, app):
    for _ in range(3):
        _register(client, VICTIM, GOOD)
    links = _mailbox()
    assert len(links) == 3
    other = outbox.isolated_client(app)  # another browser
    assert all(other.get(link).status_code == 200 for link in links)
    assert _verify(other, links[1], GOOD).status_code == 200
    for link in links:
        assert client.get(link).status_code == 400
        replay = client.post(VERIFY_PATH, data={
            "token": outbox.token_of(link), "choice": "new_password", "new_password": OTHER,
            "confirm_password": OTHER, "csrf_token": csrf_of(client.get("/t/acme/register").text)})
        assert replay.status_code == 400
    assert _login(client, VICTIM, GOOD).status_code == 303


def test_links_used_at_once_activate_once(client, tenant, app):
    """Several links of one address, each with another new password, at the same moment."""
    for _ in range(4):
        _register(client, VICTIM, GOOD)
    browsers = []
    for index, link in enumerate(_mailbox()):
        browser = outbox.isolated_client(app)
        page = browser.get(link)
        browsers.append((browser, {"token": outbox.token_of(link), "choice": "new_password",
                                   "new_password": f"{OTHER}-{index}",
                                   "confirm_password": f"{OTHER}-{index}",
                                   "csrf_token": csrf_of(page.text)}))
    barrier = threading.Barrier(len(browsers))
    codes: dict[int, int] = {}

    def finish(index, browser, data):
        barrier.wait(timeout=30)
        codes[index] = browser.post(VERIFY_PATH, data=data).status_code

    threads = [threading.Thread(target=finish, args=(i, *item)) for i, item in enumerate(browsers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    winners = [index for index, code in codes.items() if code == 200]
    assert len(winners) == 1 and sorted(codes.values()) == [200, 400, 400, 400], codes
    assert _login(client, VICTIM, f"{OTHER}-{winners[0]}").status_code == 303
    assert _memberships(VICTIM) == [(tenant.id, "member")]


def test_a_wrong_password_on_the_link_page(client, tenant):
    _register(client, "bob@example.com", GOOD)
    link = outbox.last_link("bob@example.com", "verify_email", VERIFY_PATH)
    wrong = _verify(client, link, OTHER)
    assert wrong.status_code == 400
    assert "This is not the password chosen at registration" in wrong.text
    assert 'aria-invalid="true"' in wrong.text
    assert GOOD not in wrong.text and OTHER not in wrong.text
    for empty in ("", "x" * 10_240):
        assert _verify(client, link, empty).status_code == 400
    assert not _user("bob@example.com").active
    assert _verify(client, link, GOOD).status_code == 200


def test_wrong_passwords_on_the_link_page_count_like_failed_logins(client, tenant, app):
    _register(client, "bob@example.com", GOOD)
    link = outbox.last_link("bob@example.com", "verify_email", VERIFY_PATH)
    other = outbox.isolated_client(app)
    for _ in range(3):  # sign-in attempts on the pending account count too
        assert _login(other, "bob@example.com", OTHER).status_code == 400
    for _ in range(3):
        assert _verify(client, link, OTHER).status_code == 400
    # IDP_LOCKOUT_THRESHOLD (6) reached: even the right password is not checked now...
    blocked = _verify(client, link, GOOD)
    assert blocked.status_code == 429 and "Too many wrong passwords" in blocked.text
    assert not _user("bob@example.com").active
    # ...but the mailbox holder is never locked out: a new password finishes.
    assert _choose(client, link, OTHER).status_code == 200
    assert _login(client, "bob@example.com", OTHER).status_code == 303


def test_choosing_a_new_password_on_the_link_page(client, tenant):
    _register(client, "bob@example.com", GOOD)
    link = outbox.last_link("bob@example.com", "verify_email", VERIFY_PATH)
    weak = _choose(client, link, "Password1!")
    assert weak.status_code == 400 and "Not a commonly used password" in weak.text
    mismatch = _choose(client, link, OTHER, OTHER + "x")
    assert mismatch.status_code == 400 and "The two passwords do not match." in mismatch.text
    assert _choose(client, link, "").status_code == 400
    assert not _user("bob@example.com").active
    done = _choose(client, link, OTHER)
    assert done.status_code == 200 and "You can now sign in" in done.text
    assert _memberships("bob@example.com") == [(tenant.id, "member")]
    assert ("password_changed", "bob@example.com") in outbox.kinds()
    assert _login(client, "bob@example.com", GOOD).status_code == 400
    assert _login(client, "bob@example.com", OTHER).status_code == 303


def test_the_link_page_refuses_what_it_does_not_know(client, tenant):
    _register(client, "bob@example.com", GOOD)
    link = outbox.last_link("bob@example.com", "verify_email", VERIFY_PATH)
    assert _link_post(client, link, {"choice": "activate"}).status_code == 400
    no_csrf = client.post(VERIFY_PATH, data={"token": outbox.token_of(link), "choice": "password",
                                             "password": GOOD})
    assert no_csrf.status_code == 400
    assert not _user("bob@example.com").active
    assert client.get(link).status_code == 200, "the link still works"


def test_the_membership_comes_with_the_followed_link_only(client, tenant, app, factory):
    """An attacker's registration elsewhere never makes the victim a member there."""
    theirs = factory.tenant("squat", "Squatter Inc")
    _register(outbox.isolated_client(app), VICTIM, SQUATTER, slug="squat")
    _register(client, VICTIM, GOOD)
    squat_link, acme_link = _mailbox()
    assert _choose(client, acme_link, GOOD).status_code == 200
    assert _memberships(VICTIM) == [(tenant.id, "member")]
    assert theirs.id not in [t for t, _ in _memberships(VICTIM)]
    assert client.get(squat_link).status_code == 400


# ----------------------------------------------------------------------------- bad input


def test_mismatched_passwords(client, tenant):
    response = _register(client, "bob@example.com", GOOD, GOOD + "x")
    assert response.status_code == 400
    assert "The two passwords do not match." in response.text
    assert 'value="bob@example.com"' in response.text  # the address is kept
    assert _users() == [] and outbox.kinds() == []


@pytest.mark.parametrize(("password", "rule"), [
    ("Sh0rt!", "At least 8 characters"),
    ("alllowercase-123", "At least 1 uppercase letter"),
    ("NoDigitsHere!", "At least 1 number"),
    ("NoSymbols1234", "At least 1 symbol"),
    ("Password1!", "Not a commonly used password"),
    ("Xbobby-Secret-42", "Does not contain your email address"),
    ("", "Enter your new password in both fields."),
])
def test_weak_passwords_are_refused(client, tenant, password, rule):
    response = _register(client, "bobby@example.com", password)
    assert response.status_code == 400
    assert rule in response.text
    assert _users() == [] and outbox.kinds() == []


def test_a_long_password_is_accepted(client, tenant):
    long_password = "Aa1!" + "x" * 120
    assert _register(client, "bob@example.com", long_password).status_code == 303
    link = outbox.last_link("bob@example.com", "verify_email", VERIFY_PATH)
    assert _verify(client, link, long_password).status_code == 200
    assert _login(client, "bob@example.com", long_password).status_code == 303


def test_tenant_password_policy_applies(client, factory):
    tenant = factory.tenant("strict", "Strict")
    tenant.settings = {"password_policy": {"min_length": 20}}
    db.session.commit()
    response = _register(client, "bob@example.com", GOOD, slug="strict")
    assert response.status_code == 400 and "At least 20 characters" in response.text


@pytest.mark.parametrize(("email", "message"), [
    ("", "Enter a valid email address"),
    ("bob", "Enter a valid email address"),
    ("bob@", "Enter a valid email address"),
    ("@example.com", "Enter a valid email address"),
    ("bob@example", "Enter a valid email address"),
    ("bob@@example.com", "Enter a valid email address"),
    ("bob..x@example.com", "Enter a valid email address"),
    ("bob x@example.com", "Enter a valid email address"),
    ("bob@exa_mple.com", "Enter a valid email address"),
    ("bob@[127.0.0.1]", "Enter a valid email address"),
    ('"bob"@example.com', "Enter a valid email address"),
    ("bob@example.com\r\nBcc: x@evil.com", "Enter a valid email address"),
    ("josé@exämple.fr", "without accents"),
    ("b" * 65 + "@example.com", "too long"),
])
def test_malformed_addresses_are_refused(client, tenant, email, message):
    response = _register(client, email)
    assert response.status_code == 400
    assert message in response.text
    assert _users() == [] and outbox.kinds() == []


def test_an_internationalised_domain_is_stored_in_ascii(client, tenant):
    response = _register(client, "Jose@Exämple.fr")
    text = _sent_text(response, client)
    assert "jose@exämple.fr" in text  # shown as typed (Unicode domain)
    user = _user("jose@xn--exmple-cua.fr")
    assert user is not None
    assert outbox.kinds() == [("verify_email", "jose@xn--exmple-cua.fr")]


@pytest.mark.parametrize("field", ["email", "new_password", "confirm_password"])
def test_10kb_fields_are_refused(client, tenant, field):
    data = {"email": "bob@example.com", "password": GOOD, "confirm": GOOD}
    huge = "A1!" + "a" * 10_240
    if field == "email":
        data["email"] = "b" * 10_240 + "@example.com"
    elif field == "new_password":
        data["password"] = huge
    else:
        data["confirm"] = huge
    response = _register(client, data["email"], data["password"], data["confirm"])
    assert response.status_code == 400
    assert len(response.text) < 20_000, "the page does not echo 10 kB back"
    assert _users() == [] and outbox.kinds() == []


def test_missing_csrf_token_creates_nothing(client, tenant):
    response = _register(client, "bob@example.com", csrf=False)
    assert response.status_code == 400
    assert _users() == [] and outbox.kinds() == []


def test_a_foreign_csrf_token_creates_nothing(client, tenant, app):
    other = outbox.isolated_client(app)
    token = csrf_of(other.get("/t/acme/register").text)
    client.get("/t/acme/register")
    response = client.post("/t/acme/register", data={
        "email": "bob@example.com", "new_password": GOOD, "confirm_password": GOOD,
        "csrf_token": token})
    assert response.status_code == 400 and _users() == []


def test_double_submission_of_the_same_form_makes_one_account(client, tenant):
    page = client.get("/t/acme/register")
    data = {"email": "bob@example.com", "new_password": GOOD, "confirm_password": GOOD,
            "csrf_token": csrf_of(page.text)}
    first = client.post("/t/acme/register", data=data)
    second = client.post("/t/acme/register", data=data)
    assert first.status_code == second.status_code == 303
    assert len(_users()) == 1
    # Both links work, until one is used; then one membership.
    links = [outbox.links_in(m, VERIFY_PATH)[0] for m in outbox.messages("bob@example.com")]
    assert len(links) == 2
    assert client.get(links[0]).status_code == 200 and client.get(links[1]).status_code == 200
    assert _verify(client, links[1]).status_code == 200
    assert client.get(links[0]).status_code == 400
    assert db.session.scalar(select(func.count()).select_from(Membership)) == 1


def test_concurrent_registrations_of_one_address_make_one_account(live_server, tenant):
    threads_count = 8
    barrier = threading.Barrier(threads_count)
    results: list[int | str] = []

    def worker():
        http = requests.Session()
        try:
            page = http.get(f"{live_server.url}/t/acme/register", timeout=30)
            token = csrf_of(page.text)
            barrier.wait(timeout=30)
            response = http.post(f"{live_server.url}/t/acme/register", timeout=60,
                                 allow_redirects=False,
                                 data={"email": "race@example.com", "new_password": GOOD,
                                       "confirm_password": GOOD, "csrf_token": token})
            results.append(response.status_code)
        except Exception as exc:  # noqa: BLE001 - reported below
            results.append(repr(exc))

    threads = [threading.Thread(target=worker) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert results == [303] * threads_count, results
    users = [u for u in _users() if u.email == "race@example.com"]
    assert len(users) == 1
    assert db.session.scalar(select(func.count()).select_from(Membership)) == 0  # until the link


# ----------------------------------------------------------------------------- tenant settings


def test_disabled_self_registration_is_refused(client, factory):
    factory.tenant("closed", "Closed Co")
    from idp.services.tenants import get_by_slug

    closed = get_by_slug("closed")
    closed.self_registration = False
    db.session.commit()
    login = client.get("/t/closed/login")
    assert login.status_code == 200 and "/t/closed/register" not in login.text
    page = client.get("/t/closed/register")
    assert page.status_code == 403
    assert "contact your service provider" in page.text
    token = csrf_of(login.text)
    posted = client.post("/t/closed/register", data={
        "email": "bob@example.com", "new_password": GOOD, "confirm_password": GOOD,
        "csrf_token": token})
    assert posted.status_code == 403 and _users() == [] and outbox.kinds() == []


def test_disabled_self_registration_in_french(client, factory):
    closed = factory.tenant("closed", "Closed Co")
    closed.self_registration = False
    db.session.commit()
    page = client.get("/t/closed/register", headers={"Accept-Language": "fr"})
    assert page.status_code == 403
    assert "fournisseur de services" in page.text


def test_unknown_tenant_is_a_404(client):
    for path in ("/t/nope/register", "/t/nope/login", "/t/" + "x" * 300 + "/register"):
        response = client.get(path)
        assert response.status_code == 404, path


def test_registration_in_french_mails_in_french(client, tenant):
    page = client.get("/t/acme/register", headers={"Accept-Language": "fr-FR"})
    assert "Créer un compte" in page.text
    client.post("/t/acme/register", headers={"Accept-Language": "fr-FR"}, data={
        "email": "bob@example.com", "new_password": GOOD, "confirm_password": GOOD,
        "csrf_token": csrf_of(page.text)})
    assert _user("bob@example.com").locale == "fr"
    assert outbox.messages("bob@example.com")[0].locale == "fr"


def test_the_link_page_in_french(client, tenant):
    _register(client, "bob@example.com")
    link = outbox.last_link("bob@example.com", "verify_email", VERIFY_PATH)
    page = client.get(link, headers={"Accept-Language": "fr"})
    assert page.status_code == 200
    assert "Saisissez le mot de passe que vous avez choisi" in page.text
    assert "Enregistrer ce mot de passe et activer" in page.text
