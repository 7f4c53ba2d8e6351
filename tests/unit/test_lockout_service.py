"""Lockout in services/accounts.py (seed 004, issue 6): N failures in a sliding window lock the
account for a while, each further lock in a row twice as long; a reset or a success unlocks."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from idp.extensions import db
from idp.models import AuditEvent, Membership, RateLimitCounter, User
from idp.services import accounts, recovery
from tests.lifecycle import GOOD_PASSWORD, link_in, outbox, redis_nodes, token_of
from tests.support import PASSWORD


@pytest.fixture
def alice(factory):
    return factory.user("alice@example.com")


def fail(times: int, email: str = "alice@example.com", password: str = "wrong", **kwargs):
    for _ in range(times):
        with pytest.raises(accounts.InvalidCredentials):
            accounts.authenticate(email, password, **kwargs)


def locked_at(user_id: int):
    db.session.expire_all()
    return db.session.get(User, user_id).locked_at


def test_six_consecutive_failures_lock_and_email_a_reset_link(app, alice):
    fail(5, ip="192.0.2.1")
    assert locked_at(alice.id) is None and outbox() == []
    fail(1, ip="198.51.100.2")  # another IP: the count is per account
    assert locked_at(alice.id) is not None
    [mail] = outbox("account_locked", "alice@example.com")
    assert "It will unlock by itself on" in mail.text_body  # when the lock ends
    link = link_in(mail, "/password/reset")
    assert link.startswith(app.config["IDP_ISSUER"])
    assert recovery.check_link(token_of(link)).id == alice.id
    assert db.session.scalar(select(AuditEvent.ip).where(
        AuditEvent.event == "account_locked")) == "198.51.100.2"

    fail(1, password=PASSWORD)  # the right password no longer works
    fail(3)
    assert len(outbox("account_locked")) == 1  # one email per lock, not per attempt


def test_a_success_resets_the_count(alice):
    fail(5)
    assert accounts.authenticate("alice@example.com", PASSWORD).id == alice.id
    db.session.commit()  # as the login view does
    fail(5)
    assert locked_at(alice.id) is None
    fail(1)
    assert locked_at(alice.id) is not None


def test_the_strictest_tenant_threshold_wins(factory, alice):
    strict = factory.tenant("strict", "Strict")
    strict.settings = {"lockout_threshold": 3}
    lax = factory.tenant("lax", "Lax")
    lax.settings = {"lockout_threshold": 50}
    db.session.add_all([Membership(user_id=alice.id, tenant_id=strict.id),
                        Membership(user_id=alice.id, tenant_id=lax.id)])
    db.session.commit()
    db.session.refresh(alice)
    assert accounts.lockout_threshold(alice) == 3
    fail(2)
    assert locked_at(alice.id) is None
    fail(1)
    assert locked_at(alice.id) is not None


@pytest.mark.parametrize("setting", [0, 1, "2", True, None, 10_000, 2.5])
def test_nonsense_thresholds_fall_back_to_the_default(factory, setting):
    tenant = factory.tenant("odd", "Odd")
    tenant.settings = {"lockout_threshold": setting}
    db.session.commit()
    user = factory.user("bob@example.com", tenant=tenant)
    assert accounts.lockout_threshold(user) == 6


def test_a_reset_unlocks(alice):
    fail(6)
    link = link_in(outbox("account_locked")[0], "/password/reset")
    recovery.reset_password(token_of(link), GOOD_PASSWORD)
    assert locked_at(alice.id) is None
    assert accounts.authenticate("alice@example.com", GOOD_PASSWORD).id == alice.id
    db.session.commit()  # as the login view does


def test_inactive_accounts_are_counted_but_never_locked_or_mailed(factory):
    user = factory.user("carol@example.com", active=False)
    fail(8, email="carol@example.com", password=PASSWORD)
    assert locked_at(user.id) is None and outbox() == []


def test_every_failure_does_one_hash_and_one_counter_hit(app, factory, monkeypatch):
    """Unknown, wrong password, locked, disabled, unverified: the same work (no timing oracle)."""
    from idp.services import accounts as module

    factory.user("wrong@example.com")
    factory.user("disabled@example.com", active=False)
    factory.user("unverified@example.com", email_verified=False)
    locked = factory.user("locked@example.com")
    locked.locked_at, locked.locked_until = int(time.time()), int(time.time()) + 900
    db.session.commit()
    calls = []
    real_verify = module.verify_password
    monkeypatch.setattr(module, "verify_password",
                        lambda h, p: calls.append("hash") or real_verify(h, p))

    class Spy:
        def hit(self, key, limit, window, now=None):
            calls.append("hit")
            from idp.services.throttle import Decision
            return Decision(True, 1, 0)

        def reset(self, key, window):
            calls.append("reset")

    for email, password in [("nobody@example.com", PASSWORD), ("wrong@example.com", "nope"),
                            ("locked@example.com", PASSWORD),
                            ("disabled@example.com", PASSWORD),
                            ("unverified@example.com", PASSWORD)]:
        calls.clear()
        with pytest.raises(accounts.InvalidCredentials):
            accounts.authenticate(email, password, counter=Spy())
        assert calls == ["hash", "hit"], email


def test_unknown_addresses_do_not_share_a_real_account_key(app, alice):
    fail(3, email="ghost@example.com")
    keys = list(db.session.scalars(select(RateLimitCounter.key)))
    assert all(key.startswith("acct:?") for key in keys)
    assert accounts.failure_key(alice.id) not in keys


def test_lockout_counts_across_nodes_with_redis(app, alice, monkeypatch):
    """Two nodes (two Redis connections) see one count: 3 failures on each lock the account."""
    (node_a, node_b), cleanup = redis_nodes(2)
    try:
        for attempt in range(6):
            fail(1, counter=node_a if attempt % 2 else node_b)
            assert (locked_at(alice.id) is None) == (attempt < 5)
        assert len(outbox("account_locked")) == 1
        # A success on either node clears the shared count.
        alice_row = db.session.get(User, alice.id)
        accounts.unlock(alice_row)
        db.session.commit()
        accounts.authenticate("alice@example.com", PASSWORD, counter=node_a)
        fail(5, counter=node_b)
        assert locked_at(alice.id) is None
    finally:
        cleanup()


def test_the_lock_holds_even_if_its_email_cannot_be_built(alice, monkeypatch):
    from idp import mail

    def refuse(*args, **kwargs):
        raise mail.MailError("cannot build")

    monkeypatch.setattr(mail, "enqueue_message", refuse)
    fail(6)
    assert locked_at(alice.id) is not None
    assert outbox() == []


# ------------------------------------------------------------------ temporary, doubling locks
T0 = 1_800_000_000  # an injected clock: epoch seconds passed as ``now``


def state(user_id: int) -> tuple:
    db.session.expire_all()
    user = db.session.get(User, user_id)
    return user.locked_until, user.lockouts


def test_lock_durations_double_up_to_the_cap(app, ctx):
    assert [accounts.lock_duration(n) for n in range(1, 10)] == [
        900, 1800, 3600, 7200, 14400, 28800, 57600, 86400, 86400]


def test_a_lock_expires_by_itself_and_a_success_ends_the_escalation(alice):
    fail(6, now=T0)
    assert state(alice.id) == (T0 + 900, 1)
    fail(1, password=PASSWORD, now=T0 + 899)  # still locked: the right password fails
    assert accounts.authenticate("alice@example.com", PASSWORD, now=T0 + 900).id == alice.id
    db.session.commit()  # as the login view does
    assert state(alice.id) == (None, 0)
    # The escalation and the count start over: 5 failures do not lock, the 6th locks 15 min.
    fail(5, now=T0 + 1000)
    assert state(alice.id) == (None, 0)
    fail(1, now=T0 + 1001)
    assert state(alice.id) == (T0 + 1001 + 900, 1)


def test_failing_again_after_a_lock_relocks_for_twice_as_long(alice):
    fail(6, now=T0)
    fail(3, now=T0 + 60)  # during the lock: counted, no new lock, no new email
    assert state(alice.id) == (T0 + 900, 1) and len(outbox("account_locked")) == 1
    fail(1, now=T0 + 900)  # the lock has ended; the failures of the last 24 h still count
    assert state(alice.id) == (T0 + 900 + 1800, 2)
    fail(1, now=T0 + 2700)
    assert state(alice.id) == (T0 + 2700 + 3600, 3)
    assert len(outbox("account_locked")) == 3  # one email per lock
    fail(1, password=PASSWORD, now=T0 + 6299)
    assert accounts.authenticate("alice@example.com", PASSWORD, now=T0 + 6300).id == alice.id
    db.session.commit()  # as the login view does


def test_a_reset_ends_the_lock_and_its_escalation(alice):
    fail(6, now=T0)
    fail(1, now=T0 + 900)
    assert state(alice.id)[1] == 2
    link = link_in(outbox("account_locked")[-1], "/password/reset")
    recovery.reset_password(token_of(link), GOOD_PASSWORD)
    assert state(alice.id) == (None, 0)
    fail(5, now=T0 + 1000)  # the count started over too
    assert state(alice.id) == (None, 0)


def test_five_failures_a_day_never_lock(alice):
    for day in range(7):
        fail(5, now=T0 + day * 86400)
        assert state(alice.id) == (None, 0), day


def test_failures_either_side_of_midnight_add_up(alice):
    """A sliding window: no reset at a boundary (UTC midnight used to let 5 + 5 through)."""
    midnight = T0 - T0 % 86400 + 86400
    fail(5, now=midnight - 60)
    fail(1, now=midnight + 60)
    assert state(alice.id) == (midnight + 60 + 900, 1)


def test_the_lock_email_says_when_it_ends_in_the_users_language(factory):
    user = factory.user("fr@example.com")
    user.locale = "fr"
    db.session.commit()
    fail(6, email="fr@example.com", now=T0)
    [mail] = outbox("account_locked", "fr@example.com")
    assert mail.locale == "fr" and "Il se déverrouillera de lui-même le" in mail.text_body
    assert "2027" in mail.text_body  # T0 + 900 is in January 2027
