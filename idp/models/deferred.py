"""Work that runs right after the response is sent (services/deferred.py).

A row is written in the request's transaction, so a crash between the
response and the work leaves it here for the next sweep: nothing is lost.
"""

from __future__ import annotations

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models._types import Epoch, JSONType, now


class DeferredTask(db.Model):
    __tablename__ = "deferred_tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64), nullable=False)
    payload: Mapped[dict] = mapped_column(JSONType, nullable=False, default=dict)
    created_at: Mapped[int] = mapped_column(Epoch, nullable=False, default=now, index=True)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
