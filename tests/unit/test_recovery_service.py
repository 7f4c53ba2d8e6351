"""services/recovery.py: reset links and what a reset does (seeds 002, 004; SECURITY.md Accounts)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from idp.extensions import db
from idp.models import AccountToken, AuditEvent, BrowserSession
from idp.services import accounts, invitations, recovery
from idp.services.throttle import counter_for
from tests.lifecycle import (
    GOOD_PASSWORD,
    OTHER_PASSWORD,
    digest,
    link_in,
    outbox,
    token_of,
)
from tests.support import PASSWORD, Clock


@pytest.fixture
def alice(factory):
    return factory.user("alice@example.com")


def reset_link(email="alice@example.com") -> str:
    return link_in(outbox("password_reset", email)[-1], "/password/reset")


def test_a_known_address_gets_a_256_bit_hashed_one_hour_link(app, alice):
    recovery.request_reset("  ALICE@example.com ", ip="192.0.2.7")
    link = reset_link()
    assert link.startswith(app.config["IDP_ISSUER"] + "/password/reset?token=")
    raw = token_of(link)
    assert len(raw) >= 43  # secrets.token_urlsafe(32): 256 bits
    row = db.session.scalar(select(AccountToken).where(AccountToken.user_id == alice.id))
    assert row.purpose == "reset_password" and row.token_hash == digest(raw)
    assert row.expires_at - row.created_at == 3600
    assert db.session.scalar(select(func.count()).select_from(AccountToken).where(
        AccountToken.token_hash == raw)) == 0  # never stored in clear
    assert "expires in 60 minutes" in outbox("password_reset")[0].text_body
    assert db.session.scalar(select(AuditEvent.ip).where(
        AuditEvent.event == "password_reset_requested")) == "192.0.2.7"


@pytest.mark.parametrize("state", ["unknown", "disabled", "malformed"])
def test_nothing_is_sent_when_there_is_nothing_to_reset(factory, state):
    if state == "disabled":
        factory.user("alice@example.com", active=False)
    email = "not an address" if state == "malformed" else "alice@example.com"
    assert recovery.request_reset(email) is None
    assert outbox() == []
    assert db.session.scalar(select(func.count()).select_from(AccountToken)) == 0


def test_a_locked_account_gets_a_link(factory):
    user = factory.user("alice@example.com")
    user.locked_at, user.locked_until = int(time.time()), int(time.time()) + 900
    db.session.commit()
    recovery.request_reset("alice@example.com")
    assert len(outbox("password_reset", "alice@example.com")) == 1


def test_a_pending_invitation_gets_its_welcome_email_again(factory):
    invitation = invitations.invite_user(factory.tenant(), "dana@example.com")
    db.session.commit()
    row = db.session.scalar(select(AccountToken))
    row.created_at -= recovery.RESEND_INTERVAL + 1  # the first welcome went out a while ago
    db.session.commit()
    recovery.request_reset("dana@example.com")
    welcomes = outbox("welcome", "dana@example.com")
    assert len(welcomes) == 2 and outbox("password_reset") == []
    with pytest.raises(invitations.InvitationError):
        invitations.check_link(token_of(invitation.link))
    invitations.check_link(token_of(link_in(welcomes[-1], "/invitation")))


def test_a_double_click_sends_one_email_and_a_later_request_a_new_link(alice, monkeypatch):
    clock = Clock(monkeypatch)
    recovery.request_reset("alice@example.com")
    recovery.request_reset("alice@example.com")
    assert len(outbox("password_reset")) == 1
    first = reset_link()
    clock.advance(recovery.RESEND_INTERVAL + 1)
    recovery.request_reset("alice@example.com")
    second = reset_link()
    assert second != first
    with pytest.raises(recovery.ResetError):
        recovery.check_link(token_of(first))  # the newer link kills the older one
    assert recovery.check_link(token_of(second)).id == alice.id


def test_emails_per_address_are_capped(app, alice, monkeypatch):
    monkeypatch.setattr(recovery, "RESEND_INTERVAL", 0)
    limit = app.config["IDP_FORGOT_EMAIL_LIMIT"]
    for _ in range(limit + 3):
        recovery.request_reset("alice@example.com")
    assert len(outbox("password_reset")) == limit


def test_reset_sets_the_password_unlocks_and_revokes_everything(app, alice, monkeypatch):
    revoked = []
    monkeypatch.setattr("idp.services.tokens.revoke_user_tokens", revoked.append)
    db.session.add(BrowserSession(id_hash="s" * 64, sid="sid-1", user_id=alice.id, data={},
                                  created_at=int(time.time()), expires_at=int(time.time()) + 60))
    alice.locked_at, alice.locked_until, alice.lockouts = int(time.time()), int(time.time()) + 900, 1
    db.session.commit()
    counter = counter_for(app)
    for _ in range(5):
        counter.hit(accounts.failure_key(alice.id), 6, app.config["IDP_LOCKOUT_WINDOW"])
    recovery.request_reset("alice@example.com")

    user = recovery.reset_password(token_of(reset_link()), GOOD_PASSWORD, ip="192.0.2.9")

    db.session.expire_all()
    assert (user.locked_at, user.locked_until, user.lockouts) == (None, None, 0)
    assert accounts.authenticate("alice@example.com", GOOD_PASSWORD).id == alice.id
    with pytest.raises(accounts.InvalidCredentials):
        accounts.authenticate("alice@example.com", PASSWORD)
    assert db.session.scalar(select(func.count()).select_from(BrowserSession)) == 0
    assert revoked == [alice.id]  # every grant and token (tests/http/test_recovery.py: for real)
    assert db.session.scalar(select(AuditEvent.ip).where(
        AuditEvent.event == "password_reset")) == "192.0.2.9"
    [notice] = outbox("password_changed", "alice@example.com")
    assert link_in(notice, "/password/forgot").startswith(app.config["IDP_ISSUER"])
    # The failure count starts again from zero: one more wrong password does not re-lock.
    with pytest.raises(accounts.InvalidCredentials):
        accounts.authenticate("alice@example.com", "wrong")
    assert db.session.get(type(alice), alice.id).locked_at is None


def test_a_link_works_once(alice):
    recovery.request_reset("alice@example.com")
    raw = token_of(reset_link())
    recovery.reset_password(raw, GOOD_PASSWORD)
    with pytest.raises(recovery.ResetError):
        recovery.reset_password(raw, OTHER_PASSWORD)
    db.session.rollback()
    assert accounts.authenticate("alice@example.com", GOOD_PASSWORD)


def test_a_link_expires_after_an_hour(alice, monkeypatch):
    clock = Clock(monkeypatch)
    recovery.request_reset("alice@example.com")
    raw = token_of(reset_link())
    clock.advance(3599)
    assert recovery.check_link(raw).id == alice.id
    clock.advance(2)
    with pytest.raises(recovery.ResetError) as caught:
        recovery.reset_password(raw, GOOD_PASSWORD)
    assert caught.value.expired is True


def test_a_weak_password_changes_nothing(alice):
    recovery.request_reset("alice@example.com")
    raw = token_of(reset_link())
    with pytest.raises(accounts.WeakPassword) as caught:
        recovery.reset_password(raw, "alice-Password-1")
    assert caught.value.problems == ["contains_email"]
    db.session.rollback()
    assert accounts.authenticate("alice@example.com", PASSWORD)
    assert recovery.check_link(raw).id == alice.id
    assert outbox("password_changed") == []


def test_a_link_dies_with_its_account(factory, alice):
    recovery.request_reset("alice@example.com")
    alice.active = False  # disabled after the email went out
    db.session.commit()
    with pytest.raises(recovery.ResetError):
        recovery.reset_password(token_of(reset_link()), GOOD_PASSWORD)


def test_an_invitation_link_is_not_a_reset_link(factory):
    invitation = invitations.invite_user(factory.tenant(), "dana@example.com")
    db.session.commit()
    with pytest.raises(recovery.ResetError):
        recovery.check_link(token_of(invitation.link))


def test_an_email_that_cannot_be_built_gives_the_same_silence(alice, monkeypatch):
    from idp import mail

    def refuse(*args, **kwargs):
        raise mail.MailError("cannot build")

    monkeypatch.setattr(mail, "enqueue_message", refuse)
    assert recovery.request_reset("alice@example.com") is None  # no error page: no oracle
    assert outbox() == []
    assert db.session.scalar(select(func.count()).select_from(AccountToken)) == 0
