"""Server-side browser sessions: the cookie holds only a random id."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models._types import Epoch, JSONType, now


class BrowserSession(db.Model):
    __tablename__ = "browser_sessions"

    # SHA-256 of the cookie value: a database leak does not hand out live sessions.
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Public session id for the OIDC `sid` claim and back-channel logout.
    sid: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    data: Mapped[dict] = mapped_column(JSONType, nullable=False, default=dict)
    created_at: Mapped[int] = mapped_column(Epoch, nullable=False, default=now)
    expires_at: Mapped[int] = mapped_column(Epoch, nullable=False, index=True)
