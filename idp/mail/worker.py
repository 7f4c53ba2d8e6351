"""The delivery worker: claim due messages, send them, record the outcome; repeat.

Two ways to run it, any number of each, on any number of nodes (claims never
overlap, see ``idp.mail.outbox``):

* in-process: ``create_app`` starts a daemon thread per server process unless
  ``IDP_MAIL_WORKER=0`` or ``TESTING``. It is woken as soon as a transaction
  that enqueued a message commits, and polls every ``IDP_MAIL_POLL_INTERVAL``
  seconds for retries and for messages written by other processes.
* standalone: ``idp mail worker`` (``--once`` for a single pass).
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
import weakref
from dataclasses import asdict, dataclass

import click
from flask import Flask, current_app
from flask_sqlalchemy.session import Session as FlaskSQLAlchemySession
from sqlalchemy import event

from idp.mail.messages import build_mime
from idp.mail.outbox import (
    SESSION_FLAG,
    claim_due,
    mark_retry,
    mark_sent,
    purge,
    worker_name,
)
from idp.mail.transport import DeliveryError, classify, transport_from_config

logger = logging.getLogger("idp.mail")
PURGE_EVERY = 3600

_workers: weakref.WeakSet[MailWorker] = weakref.WeakSet()


def _after_commit(session) -> None:
    if session.info.pop(SESSION_FLAG, False):
        for worker in list(_workers):
            worker.wake()


def _after_rollback(session) -> None:
    session.info.pop(SESSION_FLAG, None)


event.listen(FlaskSQLAlchemySession, "after_commit", _after_commit)
event.listen(FlaskSQLAlchemySession, "after_rollback", _after_rollback)


@dataclass
class PassResult:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def deliver_due(*, transport=None, batch: int | None = None, worker: str | None = None,
                now: int | None = None) -> PassResult:
    """One pass: claim a batch, deliver it over one connection, record each outcome.

    Needs an app context. ``transport`` defaults to the one IDP_SMTP_URL names.
    """
    config = current_app.config
    transport = transport if transport is not None else transport_from_config(config)
    batch = int(batch or config["IDP_MAIL_BATCH"])
    result = PassResult()
    claimed = claim_due(batch, worker=worker, now=now)
    result.claimed = len(claimed)
    connection = None
    connect_error: DeliveryError | None = None
    try:
        for message in claimed:
            try:
                mime, sender, recipients = build_mime(message, config)
            except ValueError as exc:  # includes MailError: a row no one can ever send
                logger.error("mail %s cannot be built: %s", message.id, exc)
                mark_retry(message, f"cannot build message: {exc}", permanent=True)
                result.failed += 1
                continue
            if connection is None and connect_error is None:
                try:
                    connection = transport.connect()
                except Exception as exc:  # noqa: BLE001 - the whole batch waits for a retry
                    connect_error = classify(exc)
                    logger.warning("mail transport %r unavailable: %s", transport, connect_error)
            if connect_error is not None:
                error: DeliveryError = connect_error
            else:
                try:
                    connection.send(mime, sender, recipients)
                except Exception as exc:  # noqa: BLE001 - every failure is recorded
                    error = classify(exc)
                    logger.warning("mail %s to %s not delivered (attempt %s): %s",
                                   message.id, message.to_address, message.attempts, error)
                    if not error.permanent:
                        connection.close()  # a fresh connection for the next message
                        connection = None
                else:
                    if not mark_sent(message, transport.status):
                        logger.warning("mail %s: lease expired before it was recorded as sent",
                                       message.id)
                    result.sent += 1
                    continue
            status = mark_retry(message, str(error), permanent=error.permanent)
            if status == "failed":
                logger.error("mail %s to %s failed for good: %s",
                             message.id, message.to_address, error)
                result.failed += 1
            else:
                result.retried += 1
    finally:
        if connection is not None:
            connection.close()
    return result


class MailWorker:
    """A delivery loop bound to an app: ``run_forever`` in a thread or in the foreground."""

    def __init__(self, app: Flask, *, transport=None, batch: int | None = None,
                 interval: float | None = None, name: str | None = None):
        self.app = app
        self.transport = transport
        self.batch = batch
        self.interval = float(interval if interval is not None
                              else app.config["IDP_MAIL_POLL_INTERVAL"])
        self.name = name or worker_name()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_purge = 0.0
        self._last_error: tuple[str, float] | None = None
        _workers.add(self)

    def wake(self) -> None:
        self._wake.set()

    def run_once(self, now: int | None = None) -> PassResult:
        from idp.services.deferred import run_due

        with self.app.app_context():
            run_due(now)  # after-response work a crashed process left (its emails)
            return deliver_due(transport=self.transport, batch=self.batch, worker=self.name,
                               now=now)

    def _purge(self) -> None:
        days = int(self.app.config["IDP_MAIL_RETENTION_DAYS"])
        if days <= 0 or time.monotonic() - self._last_purge < PURGE_EVERY:
            return
        self._last_purge = time.monotonic()
        with self.app.app_context():
            removed = purge(days)
        if removed:
            logger.info("mail outbox: purged %s messages older than %s days", removed, days)

    def _log_error(self, exc: Exception) -> None:
        # A missing table or a database outage would otherwise log every few seconds.
        text = f"{type(exc).__name__}: {exc}"
        previous = self._last_error
        if previous is None or previous[0] != text or time.monotonic() - previous[1] > 60:
            logger.error("mail worker pass failed: %s", text, exc_info=previous is None)
            self._last_error = (text, time.monotonic())

    def run_forever(self) -> None:
        logger.info("mail worker %s started", self.name)
        while not self._stop.is_set():
            self._wake.clear()
            busy = False
            try:
                result = self.run_once()
                busy = result.claimed >= int(self.batch or self.app.config["IDP_MAIL_BATCH"])
                self._purge()
                self._last_error = None
            except Exception as exc:  # noqa: BLE001 - the loop must survive anything
                self._log_error(exc)
            if not busy:
                self._wake.wait(self.interval)
        logger.info("mail worker %s stopped", self.name)

    def start(self) -> MailWorker:
        self._stop.clear()
        self._thread = threading.Thread(target=self.run_forever, name="idp-mail-worker",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


# Set by `idp serve` for the server it starts (granian or gunicorn): its workers are servers.
SERVED_ENV = "IDP_SERVED"


def install(app: Flask) -> None:
    """Start the in-process worker in server processes (not in CLI commands, scripts or tests).

    Under ``idp serve`` (granian or gunicorn) or a bare gunicorn the thread starts with the app, so a node that serves no
    traffic still delivers mail queued by others (``idp user create --invite``).
    Any other server (``flask run``, waitress, a forked child) starts it on its
    first request; a script that merely builds the app never does.
    """
    app.extensions["idp_mail_worker"] = None
    if not app.config["IDP_ENABLE_MAIL_WORKER"] or app.config.get("TESTING"):
        return
    lock = threading.Lock()
    state: dict = {"pid": None}

    def ensure_started() -> None:
        if state["pid"] == os.getpid():
            return
        with lock:
            if state["pid"] == os.getpid():
                return
            state["pid"] = os.getpid()
            worker = MailWorker(app).start()
            app.extensions["idp_mail_worker"] = worker
            atexit.register(worker.stop, 5.0)

    served = os.environ.get(SERVED_ENV) == "1" or (
        "gunicorn" in sys.modules and click.get_current_context(silent=True) is None)
    if served:
        ensure_started()
    app.before_request(ensure_started)


__all__ = ["MailWorker", "PassResult", "deliver_due", "install"]
