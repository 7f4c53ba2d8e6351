"""Work done after the response is sent, so its cost does not show in the answer's timing.

A service calls ``defer(kind, **payload)`` in its transaction: inside a
request, that adds a ``DeferredTask`` row (committed with the caller's change)
and the task runs as soon as the response is closed (``call_on_close``), in a
transaction of its own. Outside a request (CLI, scripts, unit tests) nothing
is observed, so the handler runs at once in the caller's transaction.

Claiming deletes the row in the handler's transaction: a task's effects are
committed together with its removal, exactly once, even if several processes
race; a failure rolls both back. Rows left behind (a crash after the response,
a database outage) are run by ``run_due`` in every mail-worker pass once they
are ``STALE_AFTER`` seconds old, so the work (an email) is never lost; a task
failing ``MAX_ATTEMPTS`` times is dropped and logged.

Handlers register with ``@handler("kind")``; they take the payload (plain JSON).
This module imports none of them (no import cycle): the app factory imports the
modules that define handlers (services/recovery.py) before any task runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from flask import Flask, current_app, g, has_request_context
from sqlalchemy import delete, inspect, select, update

from idp.extensions import db
from idp.models import DeferredTask

logger = logging.getLogger("idp.deferred")
STALE_AFTER = 30
MAX_ATTEMPTS = 5
_HANDLERS: dict[str, Callable[[dict], None]] = {}
_PENDING = "idp_deferred_tasks"


def handler(kind: str) -> Callable[[Callable[[dict], None]], Callable[[dict], None]]:
    def register(function: Callable[[dict], None]) -> Callable[[dict], None]:
        _HANDLERS[kind] = function
        return function

    return register


def defer(kind: str, **payload) -> None:
    """Run ``kind`` after the response (in a request), else now. Adds to the session; no commit."""
    if not has_request_context():
        _HANDLERS[kind](payload)
        return
    task = DeferredTask(kind=kind, payload=payload, created_at=int(time.time()), attempts=0)
    db.session.add(task)
    g.setdefault(_PENDING, []).append(task)


def _schedule(response):
    tasks = g.pop(_PENDING, [])
    # Only rows that were committed (a rolled-back request leaves nothing to do).
    ids = [state.identity[0] for state in map(inspect, tasks)
           if state.identity is not None and not state.deleted and not state.detached]
    if ids:
        app = current_app._get_current_object()
        response.call_on_close(lambda: run(app, ids))
    return response


def run(app: Flask, ids: list[int]) -> None:
    """Run these tasks now (after the response), each in its own transaction."""
    with app.app_context():
        try:
            for task_id in ids:
                _run_one(task_id)
        except Exception:  # noqa: BLE001 - e.g. the database is down: the sweep retries
            logger.exception("deferred tasks %s left for the next sweep", ids)
        finally:
            db.session.remove()


def run_due(now: int | None = None) -> int:
    """Run the tasks older than STALE_AFTER (their process died, or they failed). Needs an app
    context; returns how many ran."""
    cutoff = int(time.time() if now is None else now) - STALE_AFTER
    ids = list(db.session.scalars(select(DeferredTask.id).where(
        DeferredTask.created_at <= cutoff).order_by(DeferredTask.id).limit(100)))
    db.session.rollback()
    return sum(_run_one(task_id) for task_id in ids)


def _run_one(task_id: int) -> bool:
    task = db.session.get(DeferredTask, task_id)
    if task is None:
        db.session.rollback()
        return False
    kind, payload, attempts = task.kind, dict(task.payload or {}), task.attempts
    try:
        claimed = db.session.execute(delete(DeferredTask).where(
            DeferredTask.id == task_id)).rowcount
        if not claimed:  # another process ran it
            db.session.rollback()
            return False
        _HANDLERS[kind](payload)
        db.session.commit()
        return True
    except Exception:  # noqa: BLE001 - logged; the row stays for a retry
        db.session.rollback()
        logger.exception("deferred task %s (%s) failed (attempt %s)", task_id, kind, attempts + 1)
        if attempts + 1 >= MAX_ATTEMPTS:
            db.session.execute(delete(DeferredTask).where(DeferredTask.id == task_id))
            logger.error("deferred task %s (%s) dropped after %s attempts", task_id, kind,
                         MAX_ATTEMPTS)
        else:
            db.session.execute(update(DeferredTask).where(DeferredTask.id == task_id)
                               .values(attempts=DeferredTask.attempts + 1))
        db.session.commit()
        return False


def init_app(app: Flask) -> None:
    app.after_request(_schedule)
