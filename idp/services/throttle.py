"""Rate limits and lockout counters that hold across workers and nodes.

Fixed windows counted in the database by default, or in Redis when
IDP_REDIS_URL is set. ``hit`` answers whether the request may go on and, when
not, how many seconds until it may (for Retry-After).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from idp.extensions import db
from idp.models import RateLimitCounter


@dataclass(frozen=True)
class Decision:
    allowed: bool
    count: int
    retry_after: int


class Counter(Protocol):
    def hit(self, key: str, limit: int, window: int) -> Decision: ...

    def reset(self, key: str, window: int) -> None: ...


def _window(window: int, now: int) -> int:
    return now - now % window


class DatabaseCounter:
    """One row per key and window; an UPDATE ... SET count = count + 1 is atomic on both backends."""

    def hit(self, key: str, limit: int, window: int) -> Decision:
        now = int(time.time())
        start = _window(window, now)
        key = key[:200]
        count = self._increment(key, start)
        if count is None:
            try:
                with db.session.begin_nested():
                    db.session.add(RateLimitCounter(key=key, window_start=start, count=1,
                                                    expires_at=start + window))
                count = 1
            except IntegrityError:
                count = self._increment(key, start) or 1
        db.session.commit()
        return Decision(count <= limit, count, 0 if count <= limit else start + window - now)

    @staticmethod
    def _increment(key: str, start: int) -> int | None:
        updated = db.session.execute(
            update(RateLimitCounter)
            .where(RateLimitCounter.key == key, RateLimitCounter.window_start == start)
            .values(count=RateLimitCounter.count + 1)).rowcount
        if not updated:
            return None
        return db.session.scalar(select(RateLimitCounter.count).where(
            RateLimitCounter.key == key, RateLimitCounter.window_start == start))

    def reset(self, key: str, window: int) -> None:
        db.session.execute(delete(RateLimitCounter).where(RateLimitCounter.key == key[:200]))
        db.session.commit()

    @staticmethod
    def purge_expired() -> int:
        result = db.session.execute(
            delete(RateLimitCounter).where(RateLimitCounter.expires_at <= int(time.time())))
        return result.rowcount or 0


class RedisCounter:
    def __init__(self, url: str):
        import redis

        self.redis = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)

    def hit(self, key: str, limit: int, window: int) -> Decision:
        now = int(time.time())
        start = _window(window, now)
        name = f"idp:rl:{key}:{start}"
        pipe = self.redis.pipeline()
        pipe.incr(name)
        pipe.expire(name, window + 1)
        count = int(pipe.execute()[0])
        return Decision(count <= limit, count, 0 if count <= limit else start + window - now)

    def reset(self, key: str, window: int) -> None:
        start = _window(window, int(time.time()))
        self.redis.delete(f"idp:rl:{key}:{start}")


def counter_for(app) -> Counter:
    """The counter backend of this app (Redis if configured), created once."""
    existing = app.extensions.get("idp_counter")
    if existing is None:
        url = app.config.get("IDP_REDIS_URL")
        existing = RedisCounter(url) if url else DatabaseCounter()
        app.extensions["idp_counter"] = existing
    return existing
