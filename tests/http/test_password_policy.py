"""The password policy on the pages that set a password (seeds 000/001/004; SECURITY.md)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from idp.extensions import db
from idp.models import Membership, User
from idp.services import accounts, invitations, recovery
from idp.services.password_policy import PasswordPolicy, violations
from tests.lifecycle import (
    link_in,
    local,
    new_password_form,
    outbox,
    password_errors,
    submit,
)
from tests.support import PASSWORD

EMAIL = "alice@example.com"
SEED_RULES = ["At least 8 characters", "At least 1 uppercase letter",
              "At least 1 lowercase letter", "At least 1 number",
              "At least 1 symbol, such as ! ? # or -"]


def reset_page_url(user) -> str:
    recovery.send_reset_email(user)
    db.session.commit()
    return local(link_in(outbox("password_reset", user.email)[-1], "/password/reset"))


def rules_listed(html: str) -> list[str]:
    import re

    return [label.strip() for label in re.findall(r'<span class="rule-text">([^<]+)</span>', html)]


def test_the_default_policy_is_the_seeds(client, alice):
    page = client.get(reset_page_url(alice))
    assert rules_listed(page.text) == [*SEED_RULES, "Not a commonly used password",
                                       "Does not contain your email address"]


def test_a_tenant_policy_is_shown_and_enforced(client, factory):
    tenant = factory.tenant("lenient", "Lenient")
    tenant.settings = {"password_policy": {"min_length": 12, "require_upper": False,
                                           "require_symbol": False}}
    db.session.commit()
    user = factory.user("bob@example.com", tenant=tenant)
    url = reset_page_url(user)
    assert rules_listed(client.get(url).text)[:3] == [
        "At least 12 characters", "At least 1 lowercase letter", "At least 1 number"]
    response = submit(client, url, new_password_form("tulip orbit 4"))  # 13, no upper/symbol
    assert response.status_code == 303
    assert accounts.authenticate("bob@example.com", "tulip orbit 4")


def test_the_strictest_of_several_tenants_applies(client, factory, alice):
    strict = factory.tenant("strict", "Strict")
    strict.settings = {"password_policy": {"min_length": 20}}
    db.session.add(Membership(user_id=alice.id, tenant_id=strict.id))
    db.session.commit()
    db.session.refresh(alice)
    url = reset_page_url(alice)
    assert rules_listed(client.get(url).text)[0] == "At least 20 characters"
    response = submit(client, url, new_password_form("Tulip-Orbit-47!"))
    assert password_errors(response.text) == ["At least 20 characters"]


@pytest.mark.parametrize("settings", [{"min_length": 4}, {"min_length": "twelve"},
                                      {"require_upper": "no"}, {"unknown_rule": True},
                                      "not a dict"])
def test_a_broken_tenant_policy_falls_back_to_the_default(client, factory, settings):
    tenant = factory.tenant("odd", "Odd")
    tenant.settings = {"password_policy": settings}
    db.session.commit()
    user = factory.user("bob@example.com", tenant=tenant)
    assert rules_listed(client.get(reset_page_url(user)).text)[:5] == SEED_RULES


@pytest.mark.parametrize("password", ["Password123!", "Qwerty123!", "Welcome1!",
                                      "Iloveyou1!", "Dragon2024!", "Football#1"])
def test_common_passwords_are_refused(client, alice, password):
    assert violations(password, PasswordPolicy()) == ["common"]  # passes every other rule
    response = submit(client, reset_page_url(alice), new_password_form(password))
    assert response.status_code == 400
    assert password_errors(response.text) == ["Not a commonly used password"]


@pytest.mark.parametrize("password", ["ALICE-rocks-99", "xx-Alice-99!", "My.alice.Pass1"])
def test_the_email_local_part_is_refused_in_any_case(client, alice, password):
    response = submit(client, reset_page_url(alice), new_password_form(password))
    assert password_errors(response.text) == ["Does not contain your email address"]


@pytest.mark.parametrize("length", [64, 100, 128, 1024])
def test_long_passwords_are_accepted_without_truncation(client, alice, length):
    password = ("Tulip-Orbit-47!" * 70)[:length]
    assert submit(client, reset_page_url(alice), new_password_form(password)).status_code == 303
    stored = db.session.scalar(select(User.password_hash).where(User.id == alice.id))
    assert stored.startswith("$argon2id$")
    assert accounts.authenticate(EMAIL, password)
    with pytest.raises(accounts.InvalidCredentials):
        accounts.authenticate(EMAIL, password[:-1] + "#")


def test_1025_characters_are_refused(client, alice):
    password = ("Tulip-Orbit-47!" * 70)[:1025]
    response = submit(client, reset_page_url(alice), new_password_form(password))
    assert response.status_code == 400
    assert password_errors(response.text) == ["At most 1024 characters"]
    assert accounts.authenticate(EMAIL, PASSWORD)


def test_the_invitation_page_uses_the_inviting_tenants_policy(client, factory):
    tenant = factory.tenant("strict", "Strict")
    tenant.settings = {"password_policy": {"min_length": 18}}
    db.session.commit()
    invitation = invitations.invite_user(tenant, "dana@example.com")
    db.session.commit()
    url = local(invitation.link)
    assert rules_listed(client.get(url).text)[0] == "At least 18 characters"
    short = submit(client, url, new_password_form("Tulip-Orbit-47!"))
    assert password_errors(short.text) == ["At least 18 characters"]
    assert submit(client, url, new_password_form("Tulip-Orbit-Harbor-47!")).status_code == 303
