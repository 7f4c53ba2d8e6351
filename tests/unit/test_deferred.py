"""Work run after the response (services/deferred.py): kept until it succeeds, run once."""

from __future__ import annotations

from sqlalchemy import func, select

from idp.extensions import db
from idp.models import DeferredTask
from idp.services import deferred

T0 = 1_800_000_000


def pending() -> list[DeferredTask]:
    db.session.expire_all()
    return list(db.session.scalars(select(DeferredTask)))


def test_a_failing_task_stays_for_a_retry_then_is_dropped(app, ctx, monkeypatch):
    calls = []

    def boom(payload):
        calls.append(payload)
        raise RuntimeError("database hiccup")

    monkeypatch.setitem(deferred._HANDLERS, "test_boom", boom)
    db.session.add(DeferredTask(kind="test_boom", payload={"n": 1}, created_at=T0, attempts=0))
    db.session.commit()
    assert deferred.run_due(now=T0 + deferred.STALE_AFTER - 1) == 0 and calls == []  # too recent
    for attempt in range(1, deferred.MAX_ATTEMPTS):
        assert deferred.run_due(now=T0 + 3600) == 0
        assert [t.attempts for t in pending()] == [attempt]
    deferred.run_due(now=T0 + 3600)
    assert pending() == [] and len(calls) == deferred.MAX_ATTEMPTS


def test_the_effects_and_the_removal_commit_together(app, ctx, monkeypatch):
    from idp.models import AuditEvent
    from idp.services import audit

    monkeypatch.setitem(deferred._HANDLERS, "test_audit",
                        lambda payload: audit.record("test_event", ip=payload["ip"]))
    db.session.add(DeferredTask(kind="test_audit", payload={"ip": "192.0.2.1"}, created_at=T0,
                                attempts=0))
    db.session.commit()
    assert deferred.run_due(now=T0 + 3600) == 1
    assert deferred.run_due(now=T0 + 3600) == 0  # gone: never twice
    assert pending() == []
    assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.event == "test_event")) == 1
