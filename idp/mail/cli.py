"""``idp mail ...``: run the delivery worker and inspect the outbox."""

from __future__ import annotations

import json
import signal
import time

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select

from idp.extensions import db

mail_group = AppGroup("mail", help="Email outbox and delivery worker.")


def _when(epoch: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch)) if epoch else "-"


@mail_group.command("worker")
@click.option("--once", is_flag=True, help="One pass over the due messages, then exit.")
@click.option("--batch", type=click.IntRange(1, 1000), default=None,
              help="Messages per pass (IDP_MAIL_BATCH).")
@click.option("--interval", type=click.FloatRange(0.1, 3600), default=None,
              help="Seconds between polls (IDP_MAIL_POLL_INTERVAL).")
@with_appcontext
def worker_command(once: bool, batch: int | None, interval: float | None) -> None:
    """Deliver queued email (runs until SIGTERM / Ctrl-C)."""
    from idp.mail.transport import transport_from_config
    from idp.mail.worker import MailWorker

    app = current_app._get_current_object()
    worker = MailWorker(app, batch=batch, interval=interval)
    if once:
        result = worker.run_once()
        click.echo(json.dumps(result.as_dict()))
        return
    click.echo(f"mail worker {worker.name}: {transport_from_config(app.config)!r}, "
               f"polling every {worker.interval:g}s")

    def _stop(signum, _frame):
        click.echo(f"mail worker: signal {signum}, finishing the current message")
        worker.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    worker.run_forever()


@mail_group.command("list")
@click.option("--status", type=click.Choice(["queued", "sending", "sent", "failed", "console"]))
@click.option("--to", "to_address", default=None, help="Only messages to this address.")
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def list_command(status: str | None, to_address: str | None, limit: int, as_json: bool) -> None:
    """The newest messages of the outbox."""
    from idp.models.mail import OutboxMessage

    query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    if status:
        query = query.where(OutboxMessage.status == status)
    if to_address:
        query = query.where(OutboxMessage.to_address == to_address.strip().lower())
    rows = db.session.scalars(query).all()
    if as_json:
        click.echo(json.dumps([{
            "id": r.id, "status": r.status, "template": r.template, "to": r.to_address,
            "subject": r.subject, "attempts": r.attempts, "created_at": r.created_at,
            "next_attempt_at": r.next_attempt_at, "sent_at": r.sent_at,
            "last_error": r.last_error} for r in rows], indent=2))
        return
    for r in rows:
        click.echo(f"{r.id:>6} {r.status:8} {r.attempts:>2} {_when(r.created_at)} "
                   f"{r.template:22} {r.to_address}")
        if r.status == "queued" and r.attempts:
            click.echo(f"{'':>6} next attempt {_when(r.next_attempt_at)} UTC: {r.last_error}")
        elif r.status == "failed":
            click.echo(f"{'':>6} {r.last_error}")


@mail_group.command("show")
@click.argument("message_id", type=int)
@click.option("--html", is_flag=True, help="Print the HTML part instead of the text part.")
@with_appcontext
def show_command(message_id: int, html: bool) -> None:
    """One message: headers, state and body."""
    from idp.models.mail import OutboxMessage

    row = db.session.get(OutboxMessage, message_id)
    if row is None:
        raise click.ClickException(f"no message {message_id}")
    headers = row.headers or {}
    click.echo(f"Id: {row.id}\nStatus: {row.status} (attempts {row.attempts})\n"
               f"Created: {_when(row.created_at)} UTC\nSent: {_when(row.sent_at)}\n"
               f"From: {headers.get('from_name', '')} <{headers.get('from_addr', '')}>\n"
               f"To: {row.to_address}\nSubject: {row.subject}\n"
               f"Last error: {row.last_error or '-'}\n")
    click.echo(row.html_body if html else row.text_body)


@mail_group.command("requeue")
@click.argument("message_ids", type=int, nargs=-1)
@click.option("--status", "statuses", multiple=True, type=click.Choice(["failed", "console"]),
              help="Requeue every message in this state (default: failed).")
@with_appcontext
def requeue_command(message_ids: tuple[int, ...], statuses: tuple[str, ...]) -> None:
    """Queue failed (or console) messages again, from attempt zero."""
    from idp.mail.outbox import requeue

    count = requeue(list(message_ids) or None, tuple(statuses) or ("failed",))
    click.echo(f"requeued {count} message(s)")


@mail_group.command("purge")
@click.option("--older-than-days", type=click.IntRange(0, 36500), default=None,
              help="Default: IDP_MAIL_RETENTION_DAYS.")
@with_appcontext
def purge_command(older_than_days: int | None) -> None:
    """Delete sent and console messages older than the retention period."""
    from idp.mail.outbox import purge

    days = older_than_days if older_than_days is not None else \
        int(current_app.config["IDP_MAIL_RETENTION_DAYS"])
    click.echo(f"deleted {purge(days)} message(s)")


@mail_group.command("test")
@click.argument("address")
@click.option("--tenant", "tenant_slug", default=None, help="Brand the message as this tenant.")
@click.option("--locale", default=None)
@click.option("--send", is_flag=True, help="Deliver it now, then report the outcome.")
@with_appcontext
def test_command(address: str, tenant_slug: str | None, locale: str | None, send: bool) -> None:
    """Queue a test message to ADDRESS (checks IDP_SMTP_URL end to end with --send)."""
    from idp.mail import MailError, enqueue_message
    from idp.models import Tenant

    tenant = None
    if tenant_slug:
        tenant = db.session.scalar(select(Tenant).where(Tenant.slug == tenant_slug))
        if tenant is None:
            raise click.ClickException(f"no tenant {tenant_slug!r}")
    try:
        message = enqueue_message("test", address, locale=locale, tenant=tenant)
    except MailError as exc:
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(f"queued message {message.id}")
    if send:
        from idp.mail.worker import deliver_due
        from idp.models.mail import OutboxMessage

        deliver_due()
        row = db.session.get(OutboxMessage, message.id)
        db.session.refresh(row)
        click.echo(f"message {row.id}: {row.status}"
                   + (f" ({row.last_error})" if row.last_error else ""))
        if row.status not in ("sent", "console"):
            raise SystemExit(1)
