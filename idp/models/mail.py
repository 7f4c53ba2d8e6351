"""The mail outbox: every email is a row, written in the transaction that caused it.

A worker claims due rows, delivers them over SMTP and records the outcome; see
``idp.mail.outbox`` for the state machine and docs/email.md for operators.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models._types import Epoch, JSONType, now

# queued  -> waiting for its next attempt (next_attempt_at)
# sending -> claimed by a worker until locked_until; reclaimed after that (crashed worker)
# sent    -> accepted by the SMTP server
# failed  -> gave up (permanent refusal or too many attempts); `idp mail requeue` retries
# console -> no SMTP configured: printed to the console and kept here for inspection
MAIL_STATUSES = ("queued", "sending", "sent", "failed", "console")


class OutboxMessage(db.Model):
    __tablename__ = "mail_outbox"
    __table_args__ = (
        Index("ix_mail_outbox_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="SET NULL"), index=True
    )
    # The message kind (template name): welcome, password_reset, ...
    template: Mapped[str] = mapped_column(String(64), nullable=False)
    locale: Mapped[str | None] = mapped_column(String(10))
    to_address: Mapped[str] = mapped_column(String(320), nullable=False, index=True)
    subject: Mapped[str] = mapped_column(String(500), nullable=False)
    text_body: Mapped[str] = mapped_column(Text, nullable=False)
    html_body: Mapped[str | None] = mapped_column(Text)
    # Further headers, rendered at enqueue time: From, Reply-To, Message-ID.
    headers: Mapped[dict] = mapped_column(JSONType, nullable=False, default=dict)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="queued")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[int] = mapped_column(Epoch, nullable=False, default=now)
    locked_until: Mapped[int | None] = mapped_column(Epoch)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(Epoch, nullable=False, default=now, index=True)
    sent_at: Mapped[int | None] = mapped_column(Epoch)

    def __repr__(self) -> str:
        return f"<OutboxMessage {self.id} {self.template} {self.status}>"
