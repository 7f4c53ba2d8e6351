"""Company sign-up (seed 004), over HTTP: three steps, bad input, links, tabs and races."""

from __future__ import annotations

import re
import threading

import pytest
from sqlalchemy import func, select

from idp.extensions import db
from idp.models import AccountToken, Membership, Tenant, User
from tests import outbox
from tests.support import csrf_of

EMAIL = "founder@example.com"
GOOD = "Tr0ub4dor&3-horse"
CONTINUE = "/signup/continue"
COMPANY = {"company_name": "Acme Corp", "identification_type": "siren",
           "identification_number": "732 829 320", "contact_phone": "+33 6 12 34 56 78"}
pytestmark = pytest.mark.usefixtures("ctx")

PERSON = {"given_name": "Ada", "family_name": "Lovelace", "new_password": GOOD,
          "confirm_password": GOOD, "locale": "en"}


def _csrf(client) -> str:
    return csrf_of(client.get("/signup").text)


def _step1(client, email=EMAIL, confirm=None, csrf=True):
    data = {"email": email, "confirm_email": email if confirm is None else confirm}
    if csrf:
        data["csrf_token"] = _csrf(client)
    return client.post("/signup", data=data)


def _link(email=EMAIL) -> str:
    return outbox.last_link(email, "verify_email", CONTINUE)


def _open(client, link) -> str:
    """Follow the emailed link; returns the flow id."""
    response = client.get(link)
    assert response.status_code == 303, response.text[:300]
    match = re.fullmatch(r"/signup/(company|account)\?flow=([\w-]+)", response.headers["Location"])
    assert match, response.headers["Location"]
    return match.group(2)


def _step2(client, flow, **overrides):
    data = {**COMPANY, **overrides, "csrf_token": _csrf(client)}
    return client.post(f"/signup/company?flow={flow}", data=data)


def _step3(client, flow, **overrides):
    data = {**PERSON, **overrides, "csrf_token": _csrf(client)}
    return client.post(f"/signup/account?flow={flow}", data=data)


def _flow_at_step3(client, email=EMAIL) -> str:
    _step1(client, email)
    flow = _open(client, _link(email))
    assert _step2(client, flow).status_code == 303
    return flow


def _count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def client(app):
    """Requests in their own app context (see tests/outbox.py), like separate browsers."""
    return outbox.isolated_client(app)


# ----------------------------------------------------------------------------- journey


def test_the_whole_journey_lands_signed_in_in_the_new_company(client):
    response = _step1(client, "Founder@Example.com")
    assert response.status_code == 303
    assert re.fullmatch(r"/signup/sent\?flow=[\w-]+", response.headers["Location"])
    sent = client.get(response.headers["Location"])
    assert EMAIL in sent.text and "spam" in sent.text
    assert outbox.kinds() == [("verify_email", EMAIL)]
    flow = _open(client, _link())
    step2 = client.get(f"/signup/company?flow={flow}")
    assert step2.status_code == 200 and EMAIL in step2.text
    assert _step2(client, flow).headers["Location"] == f"/signup/account?flow={flow}"
    step3 = client.get(f"/signup/account?flow={flow}")
    assert step3.status_code == 200 and "Acme Corp" in step3.text and EMAIL in step3.text
    assert 'id="new_password"' in step3.text and "Generate password" in step3.text
    done = _step3(client, flow)
    assert done.status_code == 303 and done.headers["Location"] == "/signup/welcome?company=acme-corp"
    welcome = client.get(done.headers["Location"])
    assert welcome.status_code == 200
    assert "Welcome to Acme Corp" in welcome.text and "Super-administrator" in welcome.text

    db.session.expire_all()
    tenant = db.session.scalar(select(Tenant).where(Tenant.slug == "acme-corp"))
    assert tenant.name == "Acme Corp" and not tenant.self_registration
    assert tenant.settings["company_name"] == "Acme Corp"
    assert tenant.settings["identification_type"] == "siren"
    assert tenant.settings["identification_number"] == "732829320"
    assert tenant.settings["contact_phone"] == "+33612345678"
    user = db.session.scalar(select(User).where(User.email == EMAIL))
    assert user.active and user.email_verified and user.locale == "en"
    assert (user.given_name, user.family_name) == ("Ada", "Lovelace")
    assert [(m.tenant_id, m.role) for m in user.memberships] == [(tenant.id, "super_admin")]
    assert db.session.scalar(select(AccountToken)).used_at is not None
    # Signed in: the account page answers, and the session id rotated.
    assert client.get("/account").status_code == 200


def test_the_person_signs_in_afterwards_with_the_password(client, app):
    flow = _flow_at_step3(client)
    _step3(client, flow)
    other = outbox.isolated_client(app)
    page = other.get("/login")
    response = other.post("/login", data={"email": EMAIL, "password": GOOD,
                                          "csrf_token": csrf_of(page.text)})
    assert response.status_code == 303


def test_french_language_choice(client):
    flow = _flow_at_step3(client)
    _step3(client, flow, locale="fr")
    welcome = client.get("/signup/welcome?company=acme-corp")
    assert "Bienvenue" in welcome.text
    db.session.expire_all()
    assert db.session.scalar(select(User.locale).where(User.email == EMAIL)) == "fr"


def test_step1_page_in_french_mails_in_french(client):
    page = client.get("/signup", headers={"Accept-Language": "fr"})
    assert 'lang="fr"' in page.text and "Valider" in page.text
    client.post("/signup", headers={"Accept-Language": "fr"}, data={
        "email": EMAIL, "confirm_email": EMAIL, "csrf_token": csrf_of(page.text)})
    assert outbox.messages(EMAIL)[0].locale == "fr"


# ----------------------------------------------------------------------------- step 1


def test_an_existing_address_gets_the_same_answer_and_a_notice(client, factory):
    factory.user("alice@example.com")
    new = _step1(client, EMAIL)
    existing = _step1(client, "alice@example.com")
    assert new.status_code == existing.status_code == 303
    pages = [re.sub(r'value="[^"]*"', "", client.get(r.headers["Location"]).text)
             for r in (new, existing)]
    assert pages[0].replace(EMAIL, "X") == pages[1].replace("alice@example.com", "X")
    assert outbox.kinds() == [("verify_email", EMAIL),
                              ("account_exists_notice", "alice@example.com")]
    assert _count(AccountToken) == 1 and _count(Tenant) == 1


@pytest.mark.parametrize(("email", "confirm", "message"), [
    (EMAIL, "other@example.com", "The two email addresses do not match."),
    (EMAIL, "", "The two email addresses do not match."),
    ("", "", "Enter a valid email address"),
    ("not-an-address", "not-an-address", "Enter a valid email address"),
    ("josé@exämple.fr", "josé@exämple.fr", "without accents"),
    ("x" * 10_240 + "@example.com", "x", "too long"),
])
def test_step1_bad_input(client, email, confirm, message):
    response = _step1(client, email, confirm)
    assert response.status_code == 400
    assert message in response.text
    assert len(response.text) < 20_000
    assert outbox.kinds() == [] and _count(AccountToken) == 0


def test_confirmation_compares_normalised_addresses(client):
    assert _step1(client, "Founder@Example.com", "founder@example.COM").status_code == 303


def test_step1_without_csrf_sends_nothing(client):
    assert _step1(client, csrf=False).status_code == 400
    assert outbox.kinds() == [] and _count(AccountToken) == 0


def test_resend_sends_a_link_and_the_older_one_still_works(client):
    response = _step1(client)
    sent = client.get(response.headers["Location"])
    first = _link()
    flow = re.search(r'name="flow" value="([^"]+)"', sent.text).group(1)
    again = client.post("/signup/resend", data={"flow": flow, "csrf_token": csrf_of(sent.text)})
    assert again.status_code == 303
    second = _link()
    assert first != second
    assert client.get(first).status_code == 303
    assert client.get(second).status_code == 303


# ----------------------------------------------------------------------------- links


def test_the_link_is_single_use(client, app):
    flow = _flow_at_step3(client)
    link = _link()
    assert _step3(client, flow).status_code == 303
    again = client.get(link)
    assert again.status_code == 400 and "already used" in again.text
    other = outbox.isolated_client(app)
    assert other.get(link).status_code == 400
    assert _count(Tenant) == 1


def test_an_expired_link(client, clock):
    _step1(client)
    clock.advance(24 * 3600 + 1)
    page = client.get(_link())
    assert page.status_code == 400 and "has expired" in page.text


def test_a_flow_whose_link_expires_on_the_way(client, clock):
    flow = _flow_at_step3(client)
    clock.advance(24 * 3600 + 1)
    response = _step3(client, flow)
    assert response.status_code == 400
    assert _count(Tenant) == 0 and _count(User) == 0


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
    lambda t: t[: len(t) // 2],
    lambda t: "",
    lambda t: t + "x" * 10_000,
], ids=["tampered", "truncated", "empty", "huge"])
def test_bad_links(client, mangle):
    _step1(client)
    token = outbox.token_of(_link())
    response = client.get(CONTINUE, query_string={"token": mangle(token)})
    assert response.status_code == 400 and "not valid" in response.text


def test_a_second_tab_continues_the_same_flow(client):
    _step1(client)
    link = _link()
    flow = _open(client, link)
    _step2(client, flow)
    # The same link opened again (another tab): back where the person was, at step 3.
    response = client.get(link)
    assert response.headers["Location"] == f"/signup/account?flow={flow}"


def test_another_browser_may_start_but_only_one_finishes(client, app):
    _step1(client)
    link = _link()
    flow_a = _open(client, link)
    other = outbox.isolated_client(app)
    flow_b = _open(other, link)
    _step2(client, flow_a)
    _step2(other, flow_b)
    assert _step3(client, flow_a).status_code == 303
    late = _step3(other, flow_b)
    assert late.status_code == 400 and "already used" in late.text
    assert _count(Tenant) == 1 and _count(User) == 1


def test_concurrent_finishes_create_one_company(client, app):
    _step1(client)
    link = _link()
    browsers = [outbox.isolated_client(app) for _ in range(4)]
    flows = []
    for browser in browsers:
        flow = _open(browser, link)
        assert _step2(browser, flow).status_code == 303
        flows.append((browser, flow, csrf_of(browser.get("/signup").text)))
    barrier = threading.Barrier(len(flows))
    codes: list[int] = []

    def finish(browser, flow, token):
        barrier.wait(timeout=30)
        response = browser.post(f"/signup/account?flow={flow}", data={**PERSON, "csrf_token": token})
        codes.append(response.status_code)

    threads = [threading.Thread(target=finish, args=item) for item in flows]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # One winner; each loser sees either the used link (400) or, when it raced past the
    # link check, the address that now has an account (409). Never a 500.
    assert sorted(codes)[0] == 303 and codes.count(303) == 1, codes
    assert all(code in (400, 409) for code in codes if code != 303), codes
    assert _count(Tenant) == 1 and _count(User) == 1 and _count(Membership) == 1


def test_the_address_got_an_account_meanwhile(client, factory):
    flow = _flow_at_step3(client)
    factory.user(EMAIL)
    response = _step3(client, flow)
    assert response.status_code == 409 and "already has an account" in response.text
    assert _count(Tenant) == 1  # only the factory's tenant


# ----------------------------------------------------------------------------- pre-account takeover
# The link proves the mailbox and the password is chosen after it; a pending
# self-registration (perhaps an attacker's) never blocks the owner nor lends its password.

SQUATTER = "Squatter-Pa55-word!"


def _self_register(browser, email=EMAIL, password=SQUATTER, slug="squat"):
    page = browser.get(f"/t/{slug}/register")
    return browser.post(f"/t/{slug}/register", data={
        "email": email, "new_password": password, "confirm_password": password,
        "csrf_token": csrf_of(page.text)})


def _login_status(browser, email, password) -> int:
    page = browser.get("/login")
    return browser.post("/login", data={"email": email, "password": password,
                                        "csrf_token": csrf_of(page.text)}).status_code


def _verify_links(email=EMAIL) -> list[str]:
    return [outbox.links_in(m, "/verify-email")[0] for m in outbox.messages(email, "verify_email")
            if outbox.links_in(m, "/verify-email")]


@pytest.fixture
def squat(factory):
    """A tenant with self-registration open, where the attacker pre-registers the address."""
    return factory.tenant("squat", "Squatter Inc")


def test_a_pre_registered_address_can_still_sign_up_its_company(client, app, squat):
    attacker = outbox.isolated_client(app)
    assert _self_register(attacker).status_code == 303
    [verify_link] = _verify_links()
    # The owner asks for company sign-up: the link comes (not an "account exists" notice).
    assert _step1(client).status_code == 303
    assert [kind for kind, to in outbox.kinds() if to == EMAIL] == ["verify_email"] * 2
    flow = _open(client, _link())
    assert _step2(client, flow).status_code == 303
    done = _step3(client, flow)
    assert done.status_code == 303 and done.headers["Location"] == "/signup/welcome?company=acme-corp"
    db.session.expire_all()
    users = db.session.scalars(select(User).where(User.email == EMAIL)).all()
    assert len(users) == 1 and users[0].active and users[0].email_verified
    tenant = db.session.scalar(select(Tenant).where(Tenant.slug == "acme-corp"))
    assert [(m.tenant_id, m.role) for m in users[0].memberships] == [(tenant.id, "super_admin")]
    # The squatter's password is gone, and so is their registration link.
    assert _login_status(attacker, EMAIL, SQUATTER) == 400
    assert _login_status(outbox.isolated_client(app), EMAIL, GOOD) == 303
    assert client.get(verify_link).status_code == 400


def test_a_registration_during_company_signup_does_not_block_it(client, app, squat):
    flow = _flow_at_step3(client)
    attacker = outbox.isolated_client(app)
    assert _self_register(attacker).status_code == 303
    done = _step3(client, flow)
    assert done.status_code == 303, done.text[:300]
    assert _login_status(attacker, EMAIL, SQUATTER) == 400
    assert _login_status(outbox.isolated_client(app), EMAIL, GOOD) == 303
    assert _count(User) == 1


def test_the_attacker_starting_a_signup_does_not_break_the_owners(client, app):
    flow = _flow_at_step3(client)
    attacker = outbox.isolated_client(app)
    started = _step1(attacker)
    assert started.status_code == 303
    # The attacker's browser only has the "check your email" page: the link went to the owner.
    assert attacker.get(started.headers["Location"]).status_code == 200
    assert attacker.get("/signup/company").status_code == 400
    done = _step3(client, flow)
    assert done.status_code == 303, "the owner's link still works"
    newest = _link()
    late = attacker.get(newest)
    assert late.status_code == 400 and "already used" in late.text
    assert _count(User) == 1


def test_two_signups_for_one_address_both_links_work_until_one_is_used(client, app):
    _step1(client)
    first = _link()
    _step1(outbox.isolated_client(app))
    second = _link()
    assert first != second
    flow = _open(client, first)
    other = outbox.isolated_client(app)
    other_flow = _open(other, second)
    assert _step2(client, flow).status_code == 303
    assert _step2(other, other_flow).status_code == 303
    assert _step3(client, flow).status_code == 303
    late = _step3(other, other_flow)
    assert late.status_code == 400 and "already used" in late.text
    assert client.get(second).status_code == 400
    assert _count(Tenant) == 1 and _count(User) == 1


def test_an_invited_address_is_not_taken_over_by_signup(client, factory):
    """An invitation is not a self-registration: the invitee gets the notice, as before."""
    from idp.services import invitations

    invitations.invite_user(factory.tenant("globex", "Globex"), EMAIL)
    db.session.commit()
    assert _step1(client).status_code == 303
    assert [kind for kind, to in outbox.kinds() if to == EMAIL] == [
        "welcome", "account_exists_notice"]


# ----------------------------------------------------------------------------- back, forward, replays


def test_back_to_step2_and_forward_again(client):
    flow = _flow_at_step3(client)
    back = client.get(f"/signup/company?flow={flow}")
    assert back.status_code == 200 and 'value="Acme Corp"' in back.text
    assert _step2(client, flow, company_name="Acme Holdings").status_code == 303
    forward = client.get(f"/signup/account?flow={flow}")
    assert "Acme Holdings" in forward.text
    _step3(client, flow)
    db.session.expire_all()
    assert db.session.scalar(select(Tenant.slug).where(Tenant.name == "Acme Holdings")) \
        == "acme-holdings"


def test_step3_before_step2_goes_to_step2(client):
    _step1(client)
    flow = _open(client, _link())
    response = client.get(f"/signup/account?flow={flow}")
    assert response.status_code == 303 and response.headers["Location"] == f"/signup/company?flow={flow}"
    posted = _step3(client, flow)
    assert posted.status_code == 303 and "/signup/company" in posted.headers["Location"]
    assert _count(User) == 0


def test_after_the_end_the_steps_say_so(client):
    flow = _flow_at_step3(client)
    _step3(client, flow)
    for path in (f"/signup/account?flow={flow}", f"/signup/company?flow={flow}"):
        page = client.get(path)
        assert page.status_code == 400 and "no longer in progress" in page.text


def test_double_submission_of_step3_makes_one_company(client):
    flow = _flow_at_step3(client)
    token = _csrf(client)
    first = client.post(f"/signup/account?flow={flow}", data={**PERSON, "csrf_token": token})
    second = client.post(f"/signup/account?flow={flow}", data={**PERSON, "csrf_token": token})
    assert first.status_code == 303 and second.status_code == 400
    assert _count(Tenant) == 1 and _count(User) == 1


def test_an_unknown_flow(client):
    assert client.get("/signup/company?flow=nope").status_code == 400
    assert client.get("/signup/company").status_code == 400


def test_step3_without_csrf_creates_nothing(client):
    flow = _flow_at_step3(client)
    response = client.post(f"/signup/account?flow={flow}", data=PERSON)
    assert response.status_code == 400 and _count(User) == 0


def test_same_company_name_gets_another_slug(client, app):
    _step3(client, _flow_at_step3(client))
    other = outbox.isolated_client(app)
    _step3(other, _flow_at_step3(other, "second@example.com"))
    db.session.expire_all()
    assert sorted(db.session.scalars(select(Tenant.slug))) == ["acme-corp", "acme-corp-2"]


# ----------------------------------------------------------------------------- step 2 input


@pytest.mark.parametrize(("overrides", "message"), [
    ({"company_name": ""}, "Enter the name of the company."),
    ({"company_name": "x" * 10_240}, "at most 200 characters"),
    ({"company_name": "Acme\x00Corp"}, "at most 200 characters"),
    ({"identification_type": ""}, "Choose an identification type."),
    ({"identification_type": "passport"}, "Choose an identification type."),
    ({"identification_number": ""}, "Enter the identification number."),
    ({"identification_number": "73282932"}, "A SIREN number has 9 digits"),
    ({"identification_number": "732829321"}, "check it for a typing mistake"),
    ({"identification_number": "x" * 10_240}, "A SIREN number has 9 digits"),
    ({"identification_type": "siret", "identification_number": "732 829 320 00075"},
     "check it for a typing mistake"),
    ({"identification_type": "siret", "identification_number": "732829320"},
     "A SIRET number has 14 digits"),
    ({"identification_type": "vat", "identification_number": "732829320"},
     "with its country prefix"),
    ({"identification_type": "vat", "identification_number": "FR45732829320"},
     "check it for a typing mistake"),
    ({"identification_type": "duns", "identification_number": "15-048-3782X"},
     "A D-U-N-S number has 9 digits"),
    ({"identification_type": "other", "identification_number": "<script>"},
     "Use 2 to 50 letters"),
    ({"contact_phone": ""}, "Enter a contact phone number."),
    ({"contact_phone": "06 12 34 56 78"}, "with the country code"),
    ({"contact_phone": "+33 6 12 34 56 7a"}, "with the country code"),
    ({"contact_phone": "+0 123 456 789"}, "with the country code"),
    ({"contact_phone": "+" + "1" * 10_240}, "with the country code"),
])
def test_step2_bad_input(client, overrides, message):
    _step1(client)
    flow = _open(client, _link())
    response = _step2(client, flow, **overrides)
    assert response.status_code == 400, response.headers.get("Location")
    assert message in response.text
    assert 'aria-invalid="true"' in response.text
    assert len(response.text) < 25_000
    assert client.get(f"/signup/account?flow={flow}").status_code == 303  # still at step 2


@pytest.mark.parametrize(("id_type", "number", "stored"), [
    ("siren", "732.829.320", "732829320"),
    ("siret", "732 829 320 00074", "73282932000074"),
    ("siret", "356 000 000 49837", "35600000049837"),  # La Poste: digit sum
    ("vat", "fr 44 732829320", "FR44732829320"),
    ("vat", "DE123456789", "DE123456789"),
    ("vat", "GR123456789", "EL123456789"),
    ("duns", "15-048-3782", "150483782"),
    ("other", "HRB 12345 B", "HRB 12345 B"),
])
def test_step2_accepts_and_normalises(client, id_type, number, stored):
    _step1(client)
    flow = _open(client, _link())
    assert _step2(client, flow, identification_type=id_type,
                  identification_number=number,
                  contact_phone="0033 (0)6 12-34-56-78").status_code == 303
    _step3(client, flow)
    db.session.expire_all()
    settings = db.session.scalar(select(Tenant.settings))
    assert settings["identification_number"] == stored
    assert settings["contact_phone"] == "+33612345678"


# ----------------------------------------------------------------------------- step 3 input


@pytest.mark.parametrize(("overrides", "message"), [
    ({"confirm_password": GOOD + "x"}, "The two passwords do not match."),
    ({"new_password": "weakpass", "confirm_password": "weakpass"}, "At least 1 uppercase letter"),
    ({"new_password": "Password1!", "confirm_password": "Password1!"},
     "Not a commonly used password"),
    ({"new_password": "Founder-Pass-1", "confirm_password": "Founder-Pass-1"},
     "Does not contain your email address"),
    ({"new_password": "", "confirm_password": ""}, "Enter your new password in both fields."),
    ({"given_name": ""}, "Enter your first name."),
    ({"family_name": ""}, "Enter your last name."),
    ({"given_name": "x" * 10_240}, "at most 100 characters"),
    ({"family_name": "Love\nlace"}, "at most 100 characters"),
    ({"locale": "de"}, "Choose a language."),
    ({"new_password": "A1!" + "a" * 10_240, "confirm_password": "A1!" + "a" * 10_240},
     "At most 1024 characters"),
])
def test_step3_bad_input(client, overrides, message):
    flow = _flow_at_step3(client)
    response = _step3(client, flow, **overrides)
    assert response.status_code == 400
    assert message in response.text
    assert len(response.text) < 25_000
    assert _count(User) == 0 and _count(Tenant) == 0
    assert _step3(client, flow).status_code == 303, "the flow survives a bad submission"


def test_welcome_needs_a_membership(client, factory):
    assert client.get("/signup/welcome?company=acme").headers["Location"] == "/login"
