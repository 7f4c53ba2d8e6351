"""`idp mail ...`: the standalone worker and outbox inspection."""

from __future__ import annotations

import json

from idp.extensions import db
from idp.mail import enqueue
from tests.mail.smtp_server import free_port


def _run(app, *args):
    result = app.test_cli_runner().invoke(args=["idp", "mail", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def test_worker_once_list_show_requeue(app, ctx, smtp, monkeypatch):
    enqueue("one@example.com", "First", "Hello one")
    db.session.commit()
    result = _run(app, "worker", "--once")
    assert result.exit_code == 0
    assert json.loads(result.output.strip().splitlines()[-1])["sent"] == 1
    assert [r.rcpt_tos for r in smtp.wait_for(1)] == [["one@example.com"]]

    monkeypatch.setitem(app.config, "IDP_SMTP_URL", f"smtp://127.0.0.1:{free_port()}")
    monkeypatch.setitem(app.config, "IDP_MAIL_MAX_ATTEMPTS", 1)
    enqueue("two@example.com", "Second", "Hello two")
    db.session.commit()
    assert json.loads(_run(app, "worker", "--once").output.splitlines()[-1])["failed"] == 1

    listing = json.loads(_run(app, "list", "--json").output)
    assert [(m["to"], m["status"]) for m in listing] == [("two@example.com", "failed"),
                                                         ("one@example.com", "sent")]
    assert "two@example.com" in _run(app, "list", "--status", "failed").output
    shown = _run(app, "show", str(listing[0]["id"])).output
    assert "Subject: Second" in shown and "Hello two" in shown

    assert "requeued 1" in _run(app, "requeue").output
    monkeypatch.setitem(app.config, "IDP_SMTP_URL", smtp.url)
    assert json.loads(_run(app, "worker", "--once").output.splitlines()[-1])["sent"] == 1
    assert len(smtp.wait_for(2)) == 2


def test_test_command_sends_now(app, ctx, smtp):
    result = _run(app, "test", "ops@example.com", "--send")
    assert result.exit_code == 0 and "sent" in result.output
    [received] = smtp.wait_for(1)
    assert "Test message" in str(received["Subject"])


def test_purge_keeps_what_is_not_delivered(app, ctx, smtp):
    enqueue("a@example.com", "A", "a")
    enqueue("b@example.com", "B", "b", not_before=2**40)  # far in the future: stays queued
    db.session.commit()
    _run(app, "worker", "--once")
    assert "deleted 1" in _run(app, "purge", "--older-than-days", "0").output
    remaining = json.loads(_run(app, "list", "--json").output)
    assert [m["to"] for m in remaining] == ["b@example.com"]
