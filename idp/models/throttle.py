"""Sliding-window counters for rate limits (one row per key and time bucket), shared by
every worker through the database.

With IDP_REDIS_URL set, Redis holds them instead (idp/services/throttle.py).
"""

from __future__ import annotations

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models._types import Epoch


class RateLimitCounter(db.Model):
    __tablename__ = "rate_limit_counters"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[int] = mapped_column(Epoch, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    expires_at: Mapped[int] = mapped_column(Epoch, nullable=False, index=True)
