"""The outbox: store a message with the change that caused it, then claim, send, record.

States (``OutboxMessage.status``)::

    queued --claim--> sending --mark_sent--> sent | console
              ^           |
              +--retry----+--give up / permanent refusal--> failed

* ``enqueue`` only adds the row to ``db.session``: the caller's commit stores it
  together with the business change, and a rollback drops both.
* ``claim_due`` hands a batch of due rows to exactly one worker, whatever the
  number of workers and nodes: ``SELECT ... FOR UPDATE SKIP LOCKED`` on
  PostgreSQL, a conditional ``UPDATE`` elsewhere (SQLite serialises writers).
  A claim is a lease: a worker that dies mid-send leaves a ``sending`` row whose
  ``locked_until`` passes, and another worker retries it (at-least-once delivery;
  the Message-ID stays the same so receivers can spot a duplicate).
* Attempts are counted at claim time, so a message that crashes its worker still
  runs out of attempts.
"""

from __future__ import annotations

import os
import random
import socket
import uuid
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import and_, delete, or_, select, update

from idp.extensions import db
from idp.mail.headers import MailError, clean_text, validate_address
from idp.models._types import now as _now
from idp.models.mail import OutboxMessage

MAX_ERROR_LENGTH = 1000
SESSION_FLAG = "idp_mail_enqueued"


def enqueue(to: str, subject: str, text_body: str, html_body: str | None = None, *,
            tenant=None, template: str = "custom", locale: str | None = None,
            headers: dict | None = None, not_before: int | None = None) -> OutboxMessage:
    """Add a message to the outbox in the current transaction. Does NOT commit."""
    if not text_body:
        raise MailError("a message needs a text body")
    tenant_id = getattr(tenant, "id", tenant)
    if tenant is not None and tenant_id is None:
        db.session.flush()  # a tenant created in this same transaction
        tenant_id = tenant.id
    message = OutboxMessage(
        tenant_id=tenant_id,
        template=clean_text(template, 64) or "custom",
        locale=locale,
        to_address=validate_address(to),
        subject=clean_text(subject) or "(no subject)",
        text_body=text_body,
        html_body=html_body,
        headers=dict(headers or {}),
        status="queued",
        attempts=0,
        next_attempt_at=not_before if not_before is not None else _now(),
        created_at=_now(),
    )
    db.session.add(message)
    # Lets the in-process worker wake up as soon as this transaction commits.
    db.session.info[SESSION_FLAG] = True
    return message


@dataclass(frozen=True)
class ClaimedMessage:
    """A claimed row, detached from the session: sending holds no transaction open."""

    id: int
    token: str
    attempts: int
    tenant_id: int | None
    template: str
    locale: str | None
    to_address: str
    subject: str
    text_body: str
    html_body: str | None
    headers: dict = field(default_factory=dict)
    created_at: int = 0


def worker_name() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}"


def _due(moment: int):
    return or_(
        and_(OutboxMessage.status == "queued", OutboxMessage.next_attempt_at <= moment),
        and_(OutboxMessage.status == "sending", OutboxMessage.locked_until < moment),
    )


def claim_due(batch: int = 10, *, worker: str | None = None, lease: int | None = None,
              now: int | None = None) -> list[ClaimedMessage]:
    """Claim up to ``batch`` due messages for this worker and commit the claim.

    Safe with any number of concurrent workers: a row is handed to one of them.
    Uses (and commits) ``db.session``: call it from the worker's own app context.
    """
    moment = _now() if now is None else now
    lease = int(lease if lease is not None else current_app.config["IDP_MAIL_LEASE"])
    token = f"{(worker or worker_name())[:80]}:{uuid.uuid4().hex[:12]}"
    order = (OutboxMessage.next_attempt_at, OutboxMessage.id)
    values = {"status": "sending", "claimed_by": token, "locked_until": moment + lease,
              "attempts": OutboxMessage.attempts + 1}
    try:
        candidates = select(OutboxMessage.id).where(_due(moment)).order_by(*order).limit(batch)
        if db.engine.dialect.name == "postgresql":
            # Rows another worker has locked are skipped, not waited for.
            ids = db.session.scalars(candidates.with_for_update(skip_locked=True)).all()
            condition = OutboxMessage.id.in_(ids)
        else:
            ids = db.session.scalars(candidates).all()
            # Conditional: a row another worker claimed meanwhile no longer matches.
            condition = and_(OutboxMessage.id.in_(ids), _due(moment))
        if not ids:
            db.session.rollback()
            return []
        db.session.execute(update(OutboxMessage).where(condition).values(**values)
                           .execution_options(synchronize_session=False))
        db.session.commit()
        rows = db.session.scalars(select(OutboxMessage).where(
            OutboxMessage.claimed_by == token, OutboxMessage.status == "sending")
            .order_by(*order)).all()
        claimed = [ClaimedMessage(
            id=row.id, token=token, attempts=row.attempts, tenant_id=row.tenant_id,
            template=row.template, locale=row.locale, to_address=row.to_address,
            subject=row.subject, text_body=row.text_body, html_body=row.html_body,
            headers=dict(row.headers or {}), created_at=row.created_at) for row in rows]
        db.session.rollback()  # end the read transaction; nothing is held while sending
        return claimed
    except Exception:
        db.session.rollback()
        raise


def _finish(message: ClaimedMessage, **values) -> bool:
    result = db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message.id, OutboxMessage.claimed_by == message.token,
               OutboxMessage.status == "sending")
        .values(locked_until=None, **values)
        .execution_options(synchronize_session=False))
    db.session.commit()
    # False: the lease ran out and another worker took the message over.
    return result.rowcount == 1


def mark_sent(message: ClaimedMessage, status: str = "sent") -> bool:
    """Record a delivery (``console`` for the console transport)."""
    return _finish(message, status=status, sent_at=_now(), last_error=None)


def retry_delay(attempts: int, base: int = 30, cap: int = 3600) -> int:
    """Exponential backoff with jitter: ``base * 2**(attempts-1)``, capped, then 50-100 % of it."""
    delay = min(cap, base * 2 ** max(0, min(attempts - 1, 30)))
    return max(1, int(delay / 2 + random.uniform(0, delay / 2)))


def mark_retry(message: ClaimedMessage, error: str, *, permanent: bool = False) -> str:
    """Schedule the next attempt, or give up. Returns the new status (queued or failed)."""
    config = current_app.config
    error = (error or "unknown error")[:MAX_ERROR_LENGTH]
    if permanent or message.attempts >= int(config["IDP_MAIL_MAX_ATTEMPTS"]):
        _finish(message, status="failed", last_error=error)
        return "failed"
    delay = retry_delay(message.attempts, int(config["IDP_MAIL_RETRY_BASE"]),
                        int(config["IDP_MAIL_RETRY_MAX"]))
    _finish(message, status="queued", next_attempt_at=_now() + delay, last_error=error)
    return "queued"


def requeue(ids: list[int] | None = None, statuses: tuple[str, ...] = ("failed",)) -> int:
    """Queue given messages (or all in ``statuses``) again, from attempt zero. Commits."""
    query = update(OutboxMessage).values(status="queued", attempts=0, next_attempt_at=_now(),
                                         locked_until=None)
    if ids:
        query = query.where(OutboxMessage.id.in_(ids), OutboxMessage.status != "sending")
    else:
        query = query.where(OutboxMessage.status.in_(statuses))
    result = db.session.execute(query.execution_options(synchronize_session=False))
    db.session.commit()
    return result.rowcount


def purge(older_than_days: int) -> int:
    """Delete sent and console messages older than the given age. Commits."""
    cutoff = _now() - int(older_than_days) * 86400
    result = db.session.execute(
        delete(OutboxMessage)
        .where(OutboxMessage.status.in_(("sent", "console")), OutboxMessage.created_at <= cutoff)
        .execution_options(synchronize_session=False))
    db.session.commit()
    return result.rowcount


def counts() -> dict[str, int]:
    from sqlalchemy import func

    rows = db.session.execute(select(OutboxMessage.status, func.count())
                              .group_by(OutboxMessage.status)).all()
    return {status: count for status, count in rows}
