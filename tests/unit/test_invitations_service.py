"""services/invitations.py: operator-created accounts completed by the person (seeds 000, 001)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from idp.extensions import db
from idp.models import AccountToken, AuditEvent, BrowserSession, Membership, User
from idp.services import accounts, invitations
from tests.lifecycle import (
    GOOD_PASSWORD,
    OTHER_PASSWORD,
    digest,
    link_in,
    outbox,
    token_of,
)
from tests.support import Clock


@pytest.fixture
def acme(factory):
    return factory.tenant("acme", "Acme Fleet")


def invite(tenant, email="dana@example.com", role="member", **kwargs):
    invitation = invitations.invite_user(tenant, email, role, **kwargs)
    db.session.commit()
    return invitation


def test_invite_creates_an_inactive_account_and_sends_the_bilingual_welcome(app, acme):
    admin = accounts.create_user("boss@example.com", GOOD_PASSWORD, tenant=acme, role="admin")
    invitation = invite(acme, " Dana@Example.com ", "admin", invited_by=admin)

    user = invitation.user
    assert invitation.created is True
    assert user.email == "dana@example.com"
    assert user.active is False and user.email_verified is False and user.password_hash is None
    membership = db.session.scalar(select(Membership).where(Membership.user_id == user.id))
    assert (membership.tenant_id, membership.role) == (acme.id, "admin")

    [welcome] = outbox("welcome", "dana@example.com")
    link = link_in(welcome, "/invitation")
    assert link == invitation.link
    assert link.startswith(app.config["IDP_ISSUER"] + "/invitation?token=")
    assert "Complete Registration" in welcome.text_body
    assert "Compléter l'inscription" in welcome.text_body  # English then French, one message
    assert welcome.text_body.index("Complete Registration") < welcome.text_body.index(
        "Compléter l'inscription")
    assert "spam" in welcome.text_body.lower()

    raw = token_of(link)
    row = db.session.scalar(select(AccountToken).where(AccountToken.user_id == user.id))
    assert row.purpose == "invite" and row.tenant_id == acme.id
    assert row.token_hash == digest(raw) and raw not in row.token_hash
    assert len(raw) >= 43  # 256 bits, url-safe base64
    assert row.expires_at - row.created_at == 72 * 3600
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.event == "user_invited"))
    assert (event.user_id, event.actor_id, event.tenant_id) == (user.id, admin.id, acme.id)


def test_invite_ttl_is_configurable(app, acme, monkeypatch):
    monkeypatch.setitem(app.config, "IDP_INVITE_TTL", 5 * 3600)
    user = invite(acme).user
    row = db.session.scalar(select(AccountToken).where(AccountToken.user_id == user.id))
    assert row.expires_at - row.created_at == 5 * 3600
    assert "5 hours" in outbox("welcome")[0].text_body


def test_links_come_from_the_issuer_inside_and_outside_a_request(app, acme):
    outside = invite(acme, "one@example.com").link
    with app.test_request_context("/", base_url="http://evil.example"):
        inside = invite(acme, "two@example.com").link
    for link in (outside, inside):
        assert link.startswith(app.config["IDP_ISSUER"] + "/invitation?token=")
        assert "evil" not in link


@pytest.mark.parametrize("email, role", [("not-an-email", "member"), ("a@b.test", "owner"),
                                         ("x" * 250 + "@example.com", "member")])
def test_invite_refuses_bad_input(acme, email, role):
    with pytest.raises(accounts.AccountError):
        invitations.invite_user(acme, email, role)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(User)) == 0
    assert outbox() == []


def test_an_existing_account_gets_the_membership_and_a_notice_never_a_second_account(
        factory, acme):
    globex = factory.tenant("globex", "Globex")
    existing = factory.user("erin@example.com", tenant=globex)
    before = existing.password_hash

    invitation = invite(acme, "ERIN@example.com", "admin")

    assert invitation.created is False and invitation.link is None
    assert invitation.user.id == existing.id
    assert db.session.scalar(select(func.count()).select_from(User)) == 1
    roles = {m.tenant_id: m.role for m in db.session.scalars(
        select(Membership).where(Membership.user_id == existing.id))}
    assert roles == {globex.id: "member", acme.id: "admin"}
    assert existing.password_hash == before and existing.active
    notices = outbox(to="erin@example.com")
    assert [m.template for m in notices] == ["added_to_tenant"]
    assert "Acme" in notices[0].subject and "password has not changed" in notices[0].text_body
    assert db.session.scalar(select(func.count()).select_from(AccountToken)) == 0

    invite(acme, "erin@example.com", "member")  # again: no duplicate membership
    assert db.session.scalar(select(func.count()).select_from(Membership).where(
        Membership.user_id == existing.id)) == 2


def test_a_pending_invitee_invited_elsewhere_gets_a_fresh_link(factory, acme):
    globex = factory.tenant("globex", "Globex")
    first = invite(acme)
    second = invite(globex)
    assert second.created is False and second.user.id == first.user.id
    assert second.link and second.link != first.link
    with pytest.raises(invitations.InvitationError):
        invitations.check_link(token_of(first.link))  # the newest link wins
    user, tenant = invitations.check_link(token_of(second.link))
    assert (user.id, tenant.id) == (first.user.id, globex.id)


def test_resend_issues_a_new_link_and_kills_the_old_one(acme):
    invitation = invite(acme)
    new_link = invitations.resend_invitation(invitation.user)
    db.session.commit()
    assert new_link != invitation.link
    assert [link_in(m, "/invitation") for m in outbox("welcome")] == [invitation.link, new_link]
    with pytest.raises(invitations.InvitationError):
        invitations.check_link(token_of(invitation.link))
    invitations.complete_invitation(token_of(new_link), GOOD_PASSWORD)
    with pytest.raises(invitations.InvitationError):
        invitations.resend_invitation(invitation.user)  # completed: nothing to resend


def test_complete_sets_the_password_activates_and_verifies_without_signing_in(acme):
    invitation = invite(acme)
    raw = token_of(invitation.link)

    user = invitations.complete_invitation(raw, GOOD_PASSWORD, ip="192.0.2.1")

    db.session.expire_all()
    assert user.active and user.email_verified and user.locked_at is None
    assert user.password_hash.startswith("$argon2id$")
    assert accounts.authenticate("dana@example.com", GOOD_PASSWORD).id == user.id
    assert db.session.scalar(select(AccountToken.used_at).where(
        AccountToken.token_hash == digest(raw))) is not None
    assert [m.template for m in outbox(to="dana@example.com")] == ["welcome", "password_changed"]
    assert db.session.scalar(select(func.count()).select_from(BrowserSession)) == 0
    assert db.session.scalar(select(AuditEvent).where(
        AuditEvent.event == "invitation_completed")).ip == "192.0.2.1"
    with pytest.raises(invitations.InvitationError):
        invitations.complete_invitation(raw, OTHER_PASSWORD)  # single use
    assert accounts.authenticate("dana@example.com", GOOD_PASSWORD).id == user.id


def test_a_weak_password_changes_nothing_and_keeps_the_link(acme):
    invitation = invite(acme)
    raw = token_of(invitation.link)
    with pytest.raises(accounts.WeakPassword) as caught:
        invitations.complete_invitation(raw, "weak")
    assert caught.value.problems == ["min_length", "upper", "digit", "symbol"]
    db.session.rollback()
    assert invitation.user.active is False and invitation.user.password_hash is None
    assert invitations.check_link(raw)[0].id == invitation.user.id
    assert [m.template for m in outbox()] == ["welcome"]


def test_the_tenant_policy_applies(acme):
    acme.settings = {"password_policy": {"min_length": 16, "require_symbol": False}}
    db.session.commit()
    invitation = invite(acme)
    user, tenant = invitations.check_link(token_of(invitation.link))
    policy = invitations.policy_for_link(user, tenant)
    assert policy.min_length == 16 and policy.require_symbol is False
    with pytest.raises(accounts.WeakPassword) as caught:
        invitations.complete_invitation(token_of(invitation.link), GOOD_PASSWORD)  # 15 chars
    assert caught.value.problems == ["min_length"]
    db.session.rollback()
    invitations.complete_invitation(token_of(invitation.link), "Longer-Tulip-Orbit47")


def test_an_expired_link_is_refused(acme, monkeypatch):
    clock = Clock(monkeypatch)
    invitation = invite(acme)
    clock.advance(72 * 3600 + 1)
    with pytest.raises(invitations.InvitationError) as caught:
        invitations.complete_invitation(token_of(invitation.link), GOOD_PASSWORD)
    assert caught.value.expired is True
    db.session.rollback()
    assert invitation.user.password_hash is None


@pytest.mark.parametrize("mangle", [
    lambda raw: raw[:-1],  # truncated
    lambda raw: raw[:-1] + ("A" if raw[-1] != "A" else "B"),  # tampered
    lambda raw: "",
    lambda raw: None,
    lambda raw: raw + "x" * 200,  # oversized
])
def test_mangled_links_are_refused(acme, mangle):
    invitation = invite(acme)
    with pytest.raises(invitations.InvitationError) as caught:
        invitations.complete_invitation(mangle(token_of(invitation.link)), GOOD_PASSWORD)
    assert caught.value.expired is False
    db.session.rollback()
    assert invitation.user.password_hash is None


def test_cli_user_create_invite(app, ctx, acme):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["idp", "user", "create", "--tenant", "acme", "--email",
                                 "Fred@Example.com", "--role", "admin", "--invite"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output.strip().splitlines()[-1])
    assert printed["email"] == "fred@example.com" and printed["invited"] is True
    user = accounts.get_by_email("fred@example.com")
    assert user.password_hash is None and not user.active
    link = link_in(outbox("welcome", "fred@example.com")[0], "/invitation")
    assert link.startswith(app.config["IDP_ISSUER"] + "/invitation?token=")

    again = runner.invoke(args=["idp", "user", "create", "--tenant", "acme", "--email",
                                "fred@example.com", "--invite"])
    assert again.exit_code == 0, again.output
    assert db.session.scalar(select(func.count()).select_from(User)) == 1

    both = runner.invoke(args=["idp", "user", "create", "--tenant", "acme", "--email",
                               "g@example.com", "--invite", "--password", GOOD_PASSWORD])
    assert both.exit_code == 2 and "exclude" in both.output


def test_cli_user_create_with_a_password_checks_the_policy(app, ctx, acme):
    runner = app.test_cli_runner()
    weak = runner.invoke(args=["idp", "user", "create", "--tenant", "acme", "--email",
                               "h@example.com", "--password", "password"])
    assert weak.exit_code == 2 and "policy" in weak.output
    assert accounts.get_by_email("h@example.com") is None
    ok = runner.invoke(args=["idp", "user", "create", "--tenant", "acme", "--email",
                             "h@example.com", "--password", GOOD_PASSWORD])
    assert ok.exit_code == 0, ok.output
    assert accounts.authenticate("h@example.com", GOOD_PASSWORD).email == "h@example.com"
