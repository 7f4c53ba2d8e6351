"""The outbox: transactional writes, retries with backoff, nothing lost, no double sends."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from sqlalchemy import func, select

from idp.extensions import db
from idp.mail import MailError, enqueue, enqueue_message
from idp.mail.outbox import claim_due, mark_retry, retry_delay
from idp.mail.worker import MailWorker, deliver_due
from idp.models import OutboxMessage, User
from idp.models._types import now
from tests.mail.smtp_server import SMTPServer, free_port

LINK = "https://localhost/reset?token=t0k3n"


def _count() -> int:
    return db.session.scalar(select(func.count()).select_from(OutboxMessage))


def test_outbox_row_rolls_back_with_the_business_change(app, factory):
    tenant = factory.tenant()
    # The change and its email commit together...
    from idp.services.accounts import create_user

    create_user("kept@example.com", "Correct-Horse-9", tenant=tenant)
    enqueue_message("verify_email", "kept@example.com", locale="en", link=LINK, expires_hours=24)
    db.session.commit()
    # ...and a failed change takes its email with it.
    create_user("lost@example.com", "Correct-Horse-9", tenant=tenant)
    enqueue_message("verify_email", "lost@example.com", locale="en", link=LINK, expires_hours=24)
    db.session.flush()
    assert _count() == 2  # visible inside the transaction
    db.session.rollback()

    assert _count() == 1
    assert db.session.scalar(select(User).where(User.email == "lost@example.com")) is None
    assert db.session.scalar(select(OutboxMessage.to_address)) == "kept@example.com"


def test_enqueue_does_not_commit(app, ctx):
    enqueue("someone@example.com", "Subject", "Body")
    assert db.session.new  # pending in the caller's session, not committed
    db.session.rollback()
    assert _count() == 0


def test_smtp_down_keeps_the_message_and_delivers_it_when_back(app, factory, monkeypatch,
                                                               outbox_rows):
    port = free_port()  # nothing listens here yet
    monkeypatch.setitem(app.config, "IDP_SMTP_URL", f"smtp://127.0.0.1:{port}")
    for i in range(3):
        enqueue_message("password_reset", f"user{i}@example.com", locale="en", link=LINK,
                        expires_minutes=30)
    db.session.commit()

    before = now()
    result = deliver_due()
    assert (result.claimed, result.sent, result.retried) == (3, 0, 3)
    rows = outbox_rows()
    for row in rows:
        assert row.status == "queued" and row.attempts == 1
        assert row.next_attempt_at > before  # backoff: not retried at once
        assert row.last_error and row.locked_until is None
    assert deliver_due().claimed == 0  # not due yet

    with SMTPServer(port=port) as smtp:
        # Time passes until the retry is due; the server is back.
        result = deliver_due(now=max(r.next_attempt_at for r in rows))
        assert result.sent == 3
        received = smtp.wait_for(3)
        assert sorted(r.rcpt_tos[0] for r in received) == [f"user{i}@example.com"
                                                             for i in range(3)]
        for row in outbox_rows():
            assert row.status == "sent" and row.attempts == 2 and row.last_error is None
        assert deliver_due(now=now() + 10**6).claimed == 0
        time.sleep(0.2)
        assert len(smtp.received) == 3  # each exactly once


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    for attempts in range(1, 20):
        delay = retry_delay(attempts, base=30, cap=3600)
        ceiling = min(3600, 30 * 2 ** (attempts - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert retry_delay(1000, base=30, cap=3600) <= 3600
    samples = {retry_delay(6, base=30, cap=3600) for _ in range(50)}
    assert len(samples) > 1  # jitter spreads the retries of many nodes


def test_gives_up_after_max_attempts(app, ctx, monkeypatch, outbox_rows):
    monkeypatch.setitem(app.config, "IDP_MAIL_MAX_ATTEMPTS", 3)
    monkeypatch.setitem(app.config, "IDP_SMTP_URL", f"smtp://127.0.0.1:{free_port()}")
    enqueue("someone@example.com", "Subject", "Body")
    db.session.commit()
    moment = now()
    for expected in ("queued", "queued", "failed"):
        moment += 10**6
        deliver_due(now=moment)
        [row] = outbox_rows()
        assert row.status == expected
    assert row.attempts == 3 and "ConnectionRefused" in row.last_error
    assert deliver_due(now=moment + 10**7).claimed == 0

    from idp.mail.outbox import requeue

    assert requeue() == 1
    [row] = outbox_rows()
    assert row.status == "queued" and row.attempts == 0


def test_permanent_refusal_is_not_retried(app, ctx, monkeypatch, outbox_rows):
    with SMTPServer(refuse={"nobody@example.com"}) as smtp:
        monkeypatch.setitem(app.config, "IDP_SMTP_URL", smtp.url)
        enqueue("nobody@example.com", "Subject", "Body")
        enqueue("somebody@example.com", "Subject", "Body")
        db.session.commit()
        result = deliver_due()
        assert (result.sent, result.failed) == (1, 1)
        rows = {r.to_address: r for r in outbox_rows()}
        assert rows["nobody@example.com"].status == "failed"
        assert "550" in rows["nobody@example.com"].last_error
        assert rows["somebody@example.com"].status == "sent"
        assert [r.rcpt_tos for r in smtp.wait_for(1)] == [["somebody@example.com"]]


def test_a_claim_belongs_to_one_worker(app, ctx):
    for i in range(5):
        enqueue(f"u{i}@example.com", "Subject", "Body")
    db.session.commit()
    first = claim_due(10, worker="node-a")
    second = claim_due(10, worker="node-b")
    assert len(first) == 5 and second == []
    assert {m.attempts for m in first} == {1}
    rows = db.session.scalars(select(OutboxMessage)).all()
    assert {r.status for r in rows} == {"sending"}
    assert all(r.claimed_by.startswith("node-a:") for r in rows)


def test_expired_lease_is_taken_over_and_the_old_claim_cannot_finish(app, ctx):
    from idp.mail.outbox import mark_sent

    enqueue("u@example.com", "Subject", "Body")
    db.session.commit()
    [stale] = claim_due(1, worker="crashed", lease=60)
    assert claim_due(1, worker="other") == []  # still leased
    [fresh] = claim_due(1, worker="other", now=now() + 61)  # the lease ran out
    assert fresh.id == stale.id and fresh.attempts == 2
    assert mark_sent(stale) is False  # the crashed worker's late answer is ignored
    assert mark_retry(fresh, "temporary") == "queued"
    row = db.session.get(OutboxMessage, fresh.id)
    db.session.refresh(row)
    assert row.status == "queued" and row.last_error == "temporary"


def test_concurrent_workers_never_send_a_message_twice(app, ctx, monkeypatch):
    count = 40
    with SMTPServer() as smtp:
        monkeypatch.setitem(app.config, "IDP_SMTP_URL", smtp.url)
        for i in range(count):
            enqueue(f"user{i}@example.com", f"Message {i}", "Body")
        db.session.commit()
        errors: list[BaseException] = []
        start = threading.Barrier(4)

        def work(name: str) -> None:
            worker = MailWorker(app, batch=3, name=name)
            try:
                start.wait()
                idle = 0
                while idle < 3:
                    idle = idle + 1 if worker.run_once().claimed == 0 else 0
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        received = smtp.wait_for(count)
        time.sleep(0.3)
        received = smtp.received
        subjects = Counter(r["Subject"] for r in received)
        assert len(received) == count and set(subjects.values()) == {1}
        assert len({r["Message-ID"] for r in received}) == count
    db.session.expire_all()
    statuses = db.session.execute(select(OutboxMessage.status, OutboxMessage.attempts)).all()
    assert {tuple(s) for s in statuses} == {("sent", 1)}
    claimers = {c.rsplit(":", 1)[0] for c in
                db.session.scalars(select(OutboxMessage.claimed_by)).all()}
    assert len(claimers) > 1  # the work really was shared


def test_worker_thread_wakes_on_commit_and_stops_cleanly(app, ctx, monkeypatch):
    with SMTPServer() as smtp:
        monkeypatch.setitem(app.config, "IDP_SMTP_URL", smtp.url)
        worker = MailWorker(app, interval=60).start()  # polling alone would take a minute
        try:
            time.sleep(0.2)
            enqueue_message("password_changed", "u@example.com", locale="en", when=now())
            db.session.commit()
            [received] = smtp.wait_for(1, timeout=10)
            assert received["Subject"] == "Your password was changed"
        finally:
            worker.stop(timeout=10)
        assert not worker.alive


def test_in_process_worker_starts_only_when_enabled(app, monkeypatch):
    from idp import create_app

    base = {key: app.config[key] for key in ("SQLALCHEMY_DATABASE_URI", "IDP_KEYS_DIR",
                                             "IDP_ISSUER")}
    disabled = create_app({**base, "IDP_ENABLE_MAIL_WORKER": False})
    assert disabled.extensions["idp_mail_worker"] is None
    testing = create_app({**base, "TESTING": True})
    assert testing.extensions["idp_mail_worker"] is None
    server = create_app({**base, "IDP_SMTP_URL": f"smtp://127.0.0.1:{free_port()}",
                         "IDP_MAIL_POLL_INTERVAL": 60})
    # Not a gunicorn process: a script that builds the app starts no thread...
    assert server.extensions["idp_mail_worker"] is None
    # ...a process that serves requests does, once.
    server.test_client().get("/healthz")
    worker = server.extensions["idp_mail_worker"]
    try:
        assert worker is not None and worker.alive
        server.test_client().get("/healthz")
        assert server.extensions["idp_mail_worker"] is worker
    finally:
        worker.stop(timeout=10)
    assert not worker.alive


def test_unknown_kind_missing_context_and_bad_links_are_refused(app, ctx):
    with pytest.raises(MailError):
        enqueue_message("no_such_kind", "a@example.com", locale="en")
    with pytest.raises(MailError, match="link"):
        enqueue_message("password_reset", "a@example.com", locale="en", expires_minutes=5)
    with pytest.raises(MailError, match="http"):
        enqueue_message("password_reset", "a@example.com", locale="en",
                        link="javascript:alert(1)", expires_minutes=5)
    assert not db.session.new


def test_in_process_worker_starts_with_the_app_under_idp_serve(app, monkeypatch):
    from idp import create_app
    from idp.mail.worker import SERVED_ENV

    base = {key: app.config[key] for key in ("SQLALCHEMY_DATABASE_URI", "IDP_KEYS_DIR",
                                             "IDP_ISSUER")}
    monkeypatch.setenv(SERVED_ENV, "1")
    server = create_app({**base, "IDP_SMTP_URL": f"smtp://127.0.0.1:{free_port()}",
                         "IDP_MAIL_POLL_INTERVAL": 60})
    # A worker process of `idp serve` (granian) delivers mail before any request.
    worker = server.extensions["idp_mail_worker"]
    try:
        assert worker is not None and worker.alive
    finally:
        worker.stop(timeout=10)
