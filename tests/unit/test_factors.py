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
)
from idp.factors.registry import FACTORS, get_factor
from tests.support import PASSWORD, login_code

# RFC 8176's registry (the values a factor may contribute).
AMR_VALUES = {"face", "fpt", "geo", "hwk", "iris", "kba", "mca", "mfa", "otp", "pin", "pop",
              "pwd", "rba", "retina", "sc", "sms", "swk", "tel", "user", "vbm", "wia"}


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


# What a factor needs set up before it can be asked (returns what the answers read).
SETUP = {"totp": _setup_totp, "recovery_code": _setup_recovery_codes}

# (right, wrong) answers, from the person and what SETUP returned.
ANSWERS = {
    "password": (lambda user, _s: {"email": user.email, "password": PASSWORD},
                 lambda user, _s: {"email": user.email, "password": PASSWORD + "x"}),
    "email_code": (lambda user, _s: {"code": login_code(user.email)},
                   lambda user, _s: {"code": f"{(int(login_code(user.email)) + 1) % 10**6:06d}"}),
    "totp": (lambda _u, s: {"code": totp.code_at(s["secret"], totp.current_step())},
             lambda _u, s: {"code": totp.code_at(s["secret"], totp.current_step() + 5)}),
    "recovery_code": (lambda _u, s: {"code": s["codes"][0]},
                      lambda _u, s: {"code": "2345-6789-abcd"}),
}

# The second half of enrolment, from the first half's page.
ENROL = {
    "password": lambda page: {"password": "An0ther-Good-Passphrase"},
    "totp": lambda page: {"code": totp.code_at(page["secret"], totp.current_step())},
    "recovery_code": lambda page: {},
}

# Answers good for the sign-in that asked them only (the others are single use instead).
BOUND_TO_SIGN_IN = {"email_code"}


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
    assert factor.id in ENROL or factor.id == "email_code", f"add {factor.id} to ENROL"
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
    right, _wrong = ANSWERS[factor.id]
    user = None if factor.identifies else person
    result = factor.verify(user, right(person, enrolled), state, _attempt())
    assert result == Accepted(person.id, factor.amr)
    json.dumps(state)


def test_a_wrong_answer_is_rejected_with_a_reason(ctx, factor, person, enrolled):
    state: dict = {}
    factor.begin(person, state, _attempt())
    db.session.commit()
    _right, wrong = ANSWERS[factor.id]
    result = factor.verify(None if factor.identifies else person, wrong(person, enrolled),
                           state, _attempt())
    assert isinstance(result, Rejected) and result.reason and result.user_id == person.id


def test_an_answer_is_good_for_its_own_sign_in_only(ctx, factor, person, enrolled):
    """State from one sign-in (binding) does not accept an answer in another; a factor
    with no binding (TOTP, a recovery code) accepts an answer once, in one sign-in."""
    state: dict = {}
    factor.begin(person, state, _attempt())
    db.session.commit()
    right, _wrong = ANSWERS[factor.id]
    other = Attempt(ip="192.0.2.1", binding="sign-in-2")
    user = None if factor.identifies else person
    if factor.identifies:  # nothing to bind: the password is the password
        assert isinstance(factor.verify(user, right(person, enrolled), state, other), Accepted)
    elif factor.id in BOUND_TO_SIGN_IN:
        assert isinstance(factor.verify(user, right(person, enrolled), state, other), Rejected)
    else:
        answer = right(person, enrolled)
        assert isinstance(factor.verify(user, answer, state, _attempt()), Accepted)
        db.session.commit()
        assert isinstance(factor.verify(user, answer, {}, other), Rejected)


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
    result = factor.enrol_confirm(person, ENROL[factor.id](page), state)
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
    with pytest.raises(signin.PolicyUnmet):
        signin._next_factor(person, [pwd], 3, [])


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
