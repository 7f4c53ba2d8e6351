"""Sliding-window counters (services/throttle.py), database and Redis: the same answers.

Time is injected (``now``), so nothing sleeps.
"""

from __future__ import annotations

import pytest

from idp.services.throttle import DatabaseCounter, bucket_width
from tests.lifecycle import redis_nodes

T0 = 1_800_000_000 - 1_800_000_000 % 300  # a fixed-window boundary of a 300 s window


@pytest.fixture(params=["database", "redis"])
def counter(request, app, ctx):
    if request.param == "database":
        yield DatabaseCounter()
        return
    (node,), cleanup = redis_nodes(1)
    yield node
    cleanup()


def hits(counter, times: list[int], key: str = "ip:test", limit: int = 3, window: int = 300):
    return [counter.hit(key, limit, window, now=t) for t in times]


def test_no_second_allowance_across_a_window_boundary(counter):
    """A fixed window let 3 through before the boundary and 3 more right after it."""
    before = hits(counter, [T0 - 3, T0 - 2, T0 - 1])
    assert [d.allowed for d in before] == [True, True, True]
    [after] = hits(counter, [T0 + 1])
    assert not after.allowed and after.count == 4
    # Refused hits count too: one more fits once T0 - 3 and T0 - 2 have left the window.
    assert after.retry_after == (T0 - 2) + 300 - (T0 + 1)


def test_hits_leave_the_window_one_by_one(counter):
    hits(counter, [T0, T0 + 100, T0 + 200])
    assert not hits(counter, [T0 + 299])[0].allowed  # all three still count (4 > 3)
    # At T0 + 300 the first hit is out; the refused one at T0 + 299 still counts.
    assert [d.count for d in hits(counter, [T0 + 300])] == [4]
    later = hits(counter, [T0 + 600])[0]  # only this one (T0 + 299 and T0 + 300 are 300 old)
    assert later.allowed and later.count == 1


def test_a_reset_forgets_every_hit(counter):
    hits(counter, [T0, T0 + 1, T0 + 2, T0 + 3])
    counter.reset("ip:test", 300)
    assert hits(counter, [T0 + 4])[0].count == 1


def test_long_windows_use_coarser_buckets(counter):
    assert bucket_width(300) == 1 and bucket_width(86400) == 120
    day = 86400
    hits(counter, [T0] * 5, key="acct:1", limit=6, window=day)
    assert hits(counter, [T0 + day - 1], key="acct:1", limit=6, window=day)[0].count == 6
    assert hits(counter, [T0 + day + 120], key="acct:1", limit=6, window=day)[0].count == 2



def test_a_database_hit_neither_commits_the_callers_work_nor_leaves_with_its_rollback(app, ctx):
    """Services never commit their caller's transaction: the counter has its own."""
    from sqlalchemy import func, select

    from idp.extensions import db
    from idp.models import AuditEvent, RateLimitCounter

    def events() -> int:
        return db.session.scalar(select(func.count(AuditEvent.id)))

    def stored(key: str) -> int | None:
        return db.session.scalar(select(RateLimitCounter.count).where(
            RateLimitCounter.key == key))

    counter, before = DatabaseCounter(), events()
    db.session.rollback()
    db.session.add(AuditEvent(event="caller_work_in_progress", created_at=T0))
    assert counter.hit("ip:own-tx", 3, 300, now=T0).count == 1
    db.session.rollback()  # the caller gives up its work
    assert events() == before  # the hit committed nothing of it
    assert stored("ip:own-tx") == 1  # and its own count survives the rollback
    db.session.rollback()
    db.session.add(AuditEvent(event="caller_work_in_progress", created_at=T0))
    counter.reset("ip:own-tx", 300)
    db.session.rollback()
    assert events() == before and stored("ip:own-tx") is None
    # Work already flushed (SQLite: the caller holds the one write lock) is not committed
    # either.
    db.session.add(AuditEvent(event="caller_work_in_progress", created_at=T0))
    db.session.flush()
    assert counter.hit("ip:own-tx-2", 3, 300, now=T0).count == 1
    db.session.rollback()
    assert events() == before


def test_counters_do_not_wait_for_a_wal_flush_on_postgresql(app, ctx):
    """Their own transaction only: the caller's commits stay synchronous."""
    from idp.extensions import db
    from idp.services.throttle import DatabaseCounter

    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only (IDP_TEST_DATABASE_URL)")
    with DatabaseCounter._transaction() as connection:
        assert connection.exec_driver_sql("SHOW synchronous_commit").scalar() == "off"
    assert db.session.execute(db.text("SHOW synchronous_commit")).scalar() == "on"
    db.session.rollback()


def test_a_hit_is_one_statement_on_its_own_connections_on_postgresql(app, ctx):
    """PostgreSQL: the upsert and the live buckets in one autocommit statement, on the
    counters' own connections (the caller's transaction neither sees it nor waits)."""
    from sqlalchemy import event

    from idp.extensions import db
    from idp.services.throttle import _postgresql_engine

    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only (IDP_TEST_DATABASE_URL)")
    counter = DatabaseCounter()
    counter.hit("ip:one-statement", 3, 300, now=T0)  # connects
    seen = []

    def statement(conn, cursor, text, *args):
        seen.append(text)

    event.listen(_postgresql_engine(), "before_cursor_execute", statement)
    event.listen(db.engine, "before_cursor_execute", statement)
    try:
        decisions = hits(counter, [T0 + 1, T0 + 1, T0 + 2], key="ip:one-statement")
    finally:
        event.remove(_postgresql_engine(), "before_cursor_execute", statement)
        event.remove(db.engine, "before_cursor_execute", statement)
    assert [(d.allowed, d.count) for d in decisions] == [(True, 2), (True, 3), (False, 4)]
    assert len(seen) == 3, seen
    counter.reset("ip:one-statement", 300)
    assert counter.hit("ip:one-statement", 3, 300, now=T0 + 3).count == 1
