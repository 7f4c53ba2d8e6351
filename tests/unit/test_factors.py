"""The factor contract: every registered factor honours the one interface (factors/base.py).

A new factor adds its way of answering to ``ANSWERS``; the test fails until it does.
"""

from __future__ import annotations

import json

import pytest

from idp.extensions import db
from idp.factors import assurance, totp
from idp.factors.base import (
    Accepted,
    Attempt,
    Factor,
    FactorUnavailable,
    NotEnrollable,
    NotMine,
    Rejected,
    enrolled_ids,
)
from idp.factors.registry import FACTORS, get_factor
from tests.support import PASSWORD, login_code
from tests.webauthn_soft import for_app

# RFC 8176's registry (the values a factor may contribute).
AMR_VALUES = {"face", "fpt", "geo", "hwk", "iris", "kba", "mca", "mfa", "otp", "pin", "pop",
              "pwd", "rba", "retina", "sc", "sms", "swk", "tel", "user", "vbm", "wia"}


def _passkey(user):
    """The person's software passkey, registered through the factor's own enrolment."""
    from flask import current_app

    authenticator = for_app(current_app)
    factor, state = get_factor("webauthn"), {}
    options = factor.enrol_start(user, state)["options"]
    result = factor.enrol_confirm(user, {"credential": authenticator.create(options)}, state)
    assert isinstance(result, Accepted), result
    db.session.commit()
    return authenticator


def _passkey_answer(user, page, **wrong):
    return {"credential": _passkey(user).get(page["options"], **wrong)}


def _setup_totp(user) -> dict:
    factor, state = get_factor("totp"), {}
    secret = factor.enrol_start(user, state)["secret"]
    assert isinstance(factor.enrol_confirm(
        user, {"code": totp.code_at(secret, totp.current_step() - 1)}, state), Accepted)
    db.session.commit()
    return {"secret": secret}


def _setup_recovery_codes(user) -> dict:
    from idp.services import recovery_codes

    codes = recovery_codes.issue(user)
    db.session.commit()
    return {"codes": codes}


# What a factor needs set up before begin() (returns what its answers read).
SETUP = {"totp": _setup_totp, "recovery_code": _setup_recovery_codes}

# What each factor takes as (right, wrong) answers, given the person, begin()'s page and
# what SETUP returned.
ANSWERS = {
    "password": (lambda user, page, s: {"email": user.email, "password": PASSWORD},
                 lambda user, page, s: {"email": user.email, "password": PASSWORD + "x"}),
    "email_code": (lambda user, page, s: {"code": login_code(user.email)},
                   lambda user, page, s: {
                       "code": f"{(int(login_code(user.email)) + 1) % 10**6:06d}"}),
    "webauthn": (lambda user, page, s: _passkey_answer(user, page),
                 lambda user, page, s: _passkey_answer(user, page,
                                                       origin="https://evil.example")),
    "totp": (lambda user, page, s: {"code": totp.code_at(s["secret"], totp.current_step())},
             lambda user, page, s: {
                 "code": totp.code_at(s["secret"], totp.current_step() + 5)}),
    "recovery_code": (lambda user, page, s: {"code": s["codes"][0]},
                      lambda user, page, s: {"code": "2345-6789-abcd"}),
}
# How each enrollable factor is set up (confirmed), given the person and enrol_start's page.
ENROLMENTS = {
    "password": lambda user, page, state: {"password": "An0ther-Good-Passphrase"},
    "webauthn": lambda user, page, state: {
        "credential": for_app(__import__("flask").current_app).create(page["options"])},
    "totp": lambda user, page, state: {"code": totp.code_at(page["secret"],
                                                            totp.current_step())},
    "recovery_code": lambda user, page, state: {},
}

# Answers good for the sign-in that asked them only (a challenge or code in its state);
# the others (TOTP, a recovery code) are single use instead.
BOUND_TO_SIGN_IN = {"email_code", "webauthn"}


@pytest.fixture(params=sorted(FACTORS))
def factor(request) -> Factor:
    return get_factor(request.param)


@pytest.fixture
def person(factory):
    return factory.user()


@pytest.fixture
def enrolled(ctx, factor, person) -> dict:
    """The person with ``factor`` set up; what the answers need."""
    return SETUP[factor.id](person) if factor.id in SETUP else {}


def _attempt() -> Attempt:
    return Attempt(ip="192.0.2.1", binding="sign-in-1")


def test_every_factor_is_tested_and_shaped_right(factor):
    assert factor.id in ANSWERS, f"add {factor.id}'s answers to ANSWERS"
    assert factor.id in ENROLMENTS or factor.id == "email_code", f"add {factor.id} to ENROLMENTS"
    assert isinstance(factor, Factor)
    assert FACTORS[factor.id] is factor
    assert factor.amr and set(factor.amr) <= AMR_VALUES and "mfa" not in factor.amr
    assert factor.identifies or factor.second


def test_a_submission_for_another_factor_is_not_mine(ctx, factor, person):
    assert isinstance(factor.verify(person, {"other": "x"}, {}, _attempt()), NotMine)


def test_begin_then_the_right_answer_is_accepted(ctx, factor, person, enrolled):
    state: dict = {}
    page = factor.begin(person, state, _attempt())
    db.session.commit()
    assert isinstance(page, dict)
    json.dumps(state)  # the flow keeps it as JSON
    json.dumps(page)
    right, _wrong = ANSWERS[factor.id]
    user = None if factor.identifies else person
    result = factor.verify(user, right(person, page, enrolled), state, _attempt())
    assert isinstance(result, Accepted) and result.user_id == person.id
    assert factor.amr[0] in result.amr or factor.id == "webauthn" and "swk" in result.amr
    assert set(result.amr) <= AMR_VALUES and "mfa" not in result.amr
    json.dumps(state)


def test_a_wrong_answer_is_rejected_with_a_reason(ctx, factor, person, enrolled):
    state: dict = {}
    page = factor.begin(person, state, _attempt())
    db.session.commit()
    _right, wrong = ANSWERS[factor.id]
    result = factor.verify(None if factor.identifies else person, wrong(person, page, enrolled), state,
                           _attempt())
    assert isinstance(result, Rejected) and result.reason and result.user_id == person.id


def test_an_answer_is_good_for_its_own_sign_in_only(ctx, factor, person, enrolled):
    """State from one sign-in (binding) does not accept an answer in another; a factor
    with no binding (TOTP, a recovery code) accepts an answer once, in one sign-in."""
    state: dict = {}
    page = factor.begin(person, state, _attempt())
    db.session.commit()
    right, _wrong = ANSWERS[factor.id]
    other = Attempt(ip="192.0.2.1", binding="sign-in-2")
    user = None if factor.identifies else person
    answer = right(person, page, enrolled)
    if factor.id in BOUND_TO_SIGN_IN:
        assert isinstance(factor.verify(user, answer, state, other), Rejected)
    elif factor.id not in SETUP:  # nothing to bind: the password is the password
        assert isinstance(factor.verify(user, answer, state, other), Accepted)
    else:
        assert isinstance(factor.verify(user, answer, state, _attempt()), Accepted)
        db.session.commit()
        assert isinstance(factor.verify(user, answer, {}, other), Rejected)


def test_an_answer_is_good_once(ctx, factor, person, enrolled):
    """A challenge or code that was accepted is spent: the same answer again is refused."""
    state: dict = {}
    page = factor.begin(person, state, _attempt())
    db.session.commit()
    if not state and factor.id not in SETUP:
        return  # nothing is kept between two requests (the password)
    right, _wrong = ANSWERS[factor.id]
    user = None if factor.identifies else person
    answer = right(person, page, enrolled)
    assert isinstance(factor.verify(user, answer, state, _attempt()), Accepted)
    db.session.commit()
    assert isinstance(factor.verify(user, answer, state, _attempt()), Rejected)


def test_enrolment_and_removal_follow_the_interface(ctx, factor, person):
    assert isinstance(factor.is_enrolled(person), bool)
    assert isinstance(factor.is_available(None), bool)
    try:
        page = factor.enrol_start(person, {})
    except NotEnrollable:
        with pytest.raises(NotEnrollable):
            factor.enrol_confirm(person, {}, {})
        with pytest.raises(NotEnrollable):
            factor.remove(person)
        assert factor.is_enrolled(person) is False
        return
    assert isinstance(page, dict)
    state: dict = {}
    page = factor.enrol_start(person, state)
    json.dumps(state)
    result = factor.enrol_confirm(person, ENROLMENTS[factor.id](person, page, state), state)
    db.session.commit()
    assert isinstance(result, Accepted) and factor.is_enrolled(person)
    factor.remove(person)
    assert factor.is_enrolled(person) is False


def test_begin_without_a_person_is_unavailable_or_nothing_to_do(ctx, factor):
    try:
        assert isinstance(factor.begin(None, {}, _attempt()), dict)
    except FactorUnavailable as unavailable:
        assert unavailable.reason


def test_amr_and_acr_are_computed_from_the_results():
    pwd = assurance.completed("password", Accepted(1, ("pwd",)), now=1)
    otp = assurance.completed("email_code", Accepted(1, ("otp",)), now=2)
    assert assurance.amr_of([]) == [] and assurance.acr_of([]) is None
    assert assurance.amr_of([pwd]) == ["pwd"] and assurance.acr_of([pwd]) == "urn:idp:loa:1"
    assert assurance.amr_of([pwd, otp]) == ["pwd", "otp", "mfa"]
    assert assurance.acr_of([pwd, otp]) == "urn:idp:loa:2"
    assert assurance.acr_of([pwd, pwd]) == "urn:idp:loa:1"  # the same factor twice is one


def test_the_strictest_policy_wins():
    class T:
        def __init__(self, policy):
            self.settings = {"mfa_policy": policy} if policy else {}

    assert assurance.strictest_policy([]) == "optional"
    assert assurance.strictest_policy([T(None), T("required")]) == "required"
    assert assurance.strictest_policy([T("phishing-resistant"), T("required")]) \
        == "phishing-resistant"
    assert assurance.mfa_policy(T("bogus")) == "optional"


def test_an_enrolled_second_factor_is_always_asked(ctx, person, monkeypatch):
    """Under the `optional` policy a factor the person set up is still asked."""
    from idp.flows import signin

    class Enrolled:
        id, amr, identifies, second = "fake_totp", ("otp",), False, True

        def is_enrolled(self, user):
            return True

        def is_available(self, tenant):
            return True

    pwd = assurance.completed("password", Accepted(person.id, ("pwd",)))
    assert signin._next_factor(person, [pwd], 1, []) is None
    monkeypatch.setitem(FACTORS, "fake_totp", Enrolled())
    assert signin._next_factor(person, [pwd], 1, []).id == "fake_totp"
    assert signin._next_factor(person, [pwd], 2, []).id == "fake_totp"
    # Phishing-resistant: the enrolled factor, then (no passkey yet) registering one.
    assert signin._next_factor(person, [pwd], 3, []).id == "fake_totp"
    totp = assurance.completed("fake_totp", Accepted(person.id, ("otp",)))
    with pytest.raises(signin.EnrolmentNeeded) as enrol:
        signin._next_factor(person, [pwd, totp], 3, [])
    assert enrol.value.factor_id == "webauthn"


def test_a_verified_passkey_counts_as_two_and_is_phishing_resistant():
    pwd = assurance.completed("password", Accepted(1, ("pwd",)), now=1)
    otp = assurance.completed("email_code", Accepted(1, ("otp",)), now=2)
    verified = assurance.completed("webauthn", Accepted(1, ("hwk", "user")), now=3)
    present = assurance.completed("webauthn", Accepted(1, ("swk",)), now=3)
    assert assurance.passkey_amr(True, False) == ("hwk", "user")
    assert assurance.passkey_amr(False, True) == ("swk",)
    assert assurance.amr_of([verified]) == ["hwk", "user", "mfa"]
    assert assurance.acr_of([verified]) == "urn:idp:loa:3"
    assert assurance.amr_of([present]) == ["swk"]  # presence only: one factor
    assert assurance.acr_of([present]) == "urn:idp:loa:1"
    assert assurance.amr_of([pwd, present]) == ["pwd", "swk", "mfa"]
    assert assurance.acr_of([pwd, present]) == "urn:idp:loa:3"
    assert assurance.acr_of([pwd, otp]) == "urn:idp:loa:2"  # phishable: not level 3
    assert "urn:idp:loa:3" in assurance.ACR_VALUES


def test_the_trust_browser_option_is_set_by_the_cli(app, ctx, factory):
    from idp.services.tenants import get_by_slug
    from idp.services.trusted_browsers import trust_days

    factory.tenant()
    runner = app.test_cli_runner()
    assert runner.invoke(args=["idp", "tenant", "update", "acme",
                               "--trust-browser-days", "30"]).exit_code == 0
    db.session.expire_all()
    assert trust_days([get_by_slug("acme")]) == 30
    refused = runner.invoke(args=["idp", "tenant", "update", "acme",
                                  "--trust-browser-days", "400"])
    assert refused.exit_code != 0
    assert runner.invoke(args=["idp", "tenant", "update", "acme",
                               "--trust-browser-days", "0"]).exit_code == 0
    db.session.expire_all()
    assert trust_days([get_by_slug("acme")]) == 0
    assert trust_days([]) == 0  # no tenant in play: off


def test_at_phishing_resistant_an_enrolled_passkey_is_asked_after_another_second_factor(
        ctx, person):
    """A code done first (remembered by a trusted browser, say) does not meet the policy:
    the person's passkey is asked next, not a second registration."""
    from idp.flows import signin

    pwd = assurance.completed("password", Accepted(person.id, ("pwd",)))
    otp = assurance.completed("email_code", Accepted(person.id, ("otp",)))
    with pytest.raises(signin.EnrolmentNeeded):
        signin._next_factor(person, [pwd, otp], 3, [])
    _passkey(person)
    assert signin._next_factor(person, [pwd, otp], 3, []).id == "webauthn"


def test_enrolled_ids_answers_what_is_enrolled_answers(ctx, factor, person):
    """The sign-in asks every second factor's enrolment in one SELECT (``enrolled_ids``):
    the same answers as each factor's ``is_enrolled``, before and after it is set up."""
    every = list(FACTORS.values())
    assert enrolled_ids(person, every) == {f.id for f in every if f.is_enrolled(person)}
    if factor.id in SETUP:
        SETUP[factor.id](person)
    elif factor.id == "webauthn":
        _passkey(person)
    assert enrolled_ids(person, [factor]) == ({factor.id} if factor.is_enrolled(person)
                                              else set())
    assert enrolled_ids(person, every) == {f.id for f in every if f.is_enrolled(person)}
    assert enrolled_ids(None, every) == set()


def test_enrolled_ids_is_one_statement_for_the_factors_that_keep_rows(ctx, person):
    from sqlalchemy import event

    _setup_totp(person)
    assert person.password_hash  # loaded again after the commit, before counting
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        found = enrolled_ids(person, list(FACTORS.values()))
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert found == {"password", "totp"}
    assert len(statements) == 1, statements
