"""Password policy wherever a password is set; the shared form helper; per-IP keys."""

from __future__ import annotations

import pytest
from werkzeug.datastructures import MultiDict

from idp.extensions import db
from idp.factors.password_hash import verify_password
from idp.flows import password_form
from idp.flows.throttling import client_key
from idp.models import Membership
from idp.services import accounts
from idp.services.password_policy import PasswordPolicy


def test_the_strictest_policy_of_the_users_tenants_applies(factory):
    a = factory.tenant("a", "A")
    a.settings = {"password_policy": {"min_length": 14, "require_symbol": False}}
    b = factory.tenant("b", "B")
    b.settings = {"password_policy": {"min_length": 10, "require_upper": False,
                                      "require_symbol": True}}
    db.session.commit()
    user = factory.user("ivy@example.com", tenant=a)
    assert accounts.password_policy_for(user) == PasswordPolicy(min_length=14,
                                                                require_symbol=False)
    db.session.add(Membership(user_id=user.id, tenant_id=b.id))
    db.session.commit()
    db.session.refresh(user)
    assert accounts.password_policy_for(user) == PasswordPolicy(min_length=14)
    assert accounts.password_policy_for(None) == PasswordPolicy()  # the seeds' default


@pytest.mark.parametrize("password, problems", [
    ("Sh0rt!a", ["min_length"]),
    ("lowercase-only-9!", ["upper"]),
    ("UPPERCASE-ONLY-9!", ["lower"]),
    ("No-Digits-Here!", ["digit"]),
    ("NoSymbols12345", ["symbol"]),
    ("Password1!", ["common"]),
    ("Dragon2024!", ["common"]),  # a common word decorated to pass the composition rules
    ("Ivy-Rocks-2024!", ["contains_email"]),
    ("x" * 1025, ["max_length", "upper", "digit", "symbol"]),
])
def test_set_password_refuses_each_rule(factory, password, problems):
    user = factory.user("ivy@example.com")
    before = user.password_hash
    with pytest.raises(accounts.WeakPassword) as caught:
        accounts.set_password(user, password)
    assert caught.value.problems == problems
    assert user.password_hash == before


@pytest.mark.parametrize("length", [64, 72, 128, 1024])
def test_long_passwords_are_accepted_and_never_truncated(factory, length):
    user = factory.user("ivy@example.com")
    password = ("Aa1!" + "bcdefghk" * 200)[:length]
    accounts.set_password(user, password)
    assert user.password_hash.startswith("$argon2id$")
    assert verify_password(user.password_hash, password)
    assert not verify_password(user.password_hash, password[:-1] + "Z")  # the last byte counts
    if length > 72:
        assert not verify_password(user.password_hash, password[:72])  # no bcrypt-style cut


@pytest.mark.parametrize("form, problems", [
    ({}, ["missing"]),
    ({"new_password": "Tulip-Orbit-47!"}, ["missing"]),
    ({"new_password": "Tulip-Orbit-47!", "confirm_password": "Tulip-Orbit-47?"}, ["mismatch"]),
    ({"new_password": "x" * 10_000, "confirm_password": "x" * 10_000}, ["max_length"]),
    ({"new_password": "Tulip-Orbit-47!", "confirm_password": "Tulip-Orbit-47!"}, []),
])
def test_the_form_reader(form, problems):
    assert password_form.read(MultiDict(form)).problems == problems


def test_the_page_lists_the_rules_of_the_policy(app):
    with app.test_request_context():
        ctx = password_form.context(PasswordPolicy(min_length=12, require_symbol=False),
                                    "ivy.green@example.com", ["min_length", "common"])
    assert [rule["code"] for rule in ctx["rules"]] == [
        "min_length", "upper", "lower", "digit", "common", "contains_email"]
    assert [rule["code"] for rule in ctx["rules"] if rule["failed"]] == ["min_length", "common"]
    assert ctx["rules"][0]["label"] == "At least 12 characters"
    assert ctx["errors"] == ["At least 12 characters", "Not a commonly used password"]
    assert ctx["email_local"] == "ivy.green"
    with app.test_request_context():
        short = password_form.context(PasswordPolicy(), "ab@example.com")
    assert "contains_email" not in [rule["code"] for rule in short["rules"]]  # like the server


@pytest.mark.parametrize("address, key", [
    ("192.0.2.7", "192.0.2.7"),
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),  # same /64: same counter
    ("::ffff:192.0.2.7", "192.0.2.7"),
    (None, "unknown"),
    ("garbage", "unknown"),
])
def test_per_ip_keys(address, key):
    assert client_key(address) == key
