"""Rate limits and lockout counters that hold across workers and nodes.

Sliding windows: ``hit`` counts the hits of the last ``window`` seconds, not
those since a boundary (a fixed window reset at a boundary would let twice the
limit through around it, and a daily one resets at UTC midnight). Hits are
kept in small time buckets (one second for the short per-IP windows, at most
``MAX_BUCKETS`` per window for long ones, so a 24 h window has 2-minute
buckets); a bucket counts until its first second is ``window`` old, so
with one-second buckets the count is exact and with long windows a hit may
stop counting one bucket early (2 minutes in 24 hours). Stored in the database by
default, or in Redis when IDP_REDIS_URL is set; both give the same answers.

``hit`` answers whether the request may go on and, when not, how many seconds
until it may (for Retry-After). Every hit counts, refused ones included. Tests
pass ``now`` (epoch seconds) to move time without sleeping.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Protocol

from flask import current_app
from sqlalchemy import bindparam, create_engine, delete, insert, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError

from idp.extensions import db
from idp.models import RateLimitCounter

MAX_BUCKETS = 720


@dataclass(frozen=True)
class Decision:
    allowed: bool
    count: int
    retry_after: int


class Counter(Protocol):
    def hit(self, key: str, limit: int, window: int, now: float | None = None) -> Decision: ...

    def reset(self, key: str, window: int) -> None: ...


def bucket_width(window: int) -> int:
    return max(1, math.ceil(window / MAX_BUCKETS))


def _bucket(window: int, now: int) -> int:
    width = bucket_width(window)
    return now - now % width


def _oldest_live(window: int, now: int) -> int:
    """Buckets starting after this second hold the hits of the last ``window`` seconds."""
    return now - window


def decide(buckets: list[tuple[int, int]], limit: int, window: int, now: int) -> Decision:
    """The decision for live ``(bucket start, count)`` pairs, the current hit included.

    Refused: Retry-After is when enough of the oldest hits leave the window
    for one more to fit under the limit.
    """
    count = sum(c for _start, c in buckets)
    if count <= limit:
        return Decision(True, count, 0)
    leaving = count - limit + 1
    for start, hits in sorted(buckets):
        leaving -= hits
        if leaving <= 0:
            return Decision(False, count, max(1, start + window - now))
    return Decision(False, count, window)  # pragma: no cover - the sum says otherwise


def _postgresql_engine():
    """PostgreSQL: the counters' own connections, in autocommit with ``synchronous_commit =
    off`` set as each one connects, for these connections only (the app's own commits stay
    synchronous). A hit is then one statement, its own transaction, one round trip, and
    commits without waiting for its WAL flush: other workers see the count at once; a
    server crash may lose the last fraction of a second of hits, as a Redis counter would.
    It saves a disk flush and four round trips per limited POST (the password POST among
    them)."""
    app = current_app._get_current_object()
    engine = app.extensions.get("idp_counter_engine")
    if engine is None:
        engine = app.extensions.setdefault("idp_counter_engine", create_engine(
            db.engine.url, isolation_level="AUTOCOMMIT", pool_size=2, max_overflow=8,
            connect_args={"options": "-c synchronous_commit=off"}))
    return engine


_TABLE = RateLimitCounter.__table__
# Built once: a limited POST runs them on every request (building one costs as much as
# running it on SQLite).
_INCREMENT = (update(_TABLE).where(_TABLE.c.key == bindparam("k"),
                                   _TABLE.c.window_start == bindparam("start"))
              .values(count=_TABLE.c.count + 1))
_INSERT = insert(_TABLE)
_LIVE = select(_TABLE.c.window_start, _TABLE.c.count).where(
    _TABLE.c.key == bindparam("k"), _TABLE.c.window_start > bindparam("oldest"))
_RESET = delete(_TABLE).where(_TABLE.c.key == bindparam("k"))
# PostgreSQL: the hit in one statement. The upsert's RETURNING gives the current bucket;
# the other live buckets come from the statement's snapshot, taken before it.
_UPSERT = (postgresql.insert(_TABLE)
           .values(key=bindparam("k"), window_start=bindparam("start"), count=1,
                   expires_at=bindparam("expires"))
           .on_conflict_do_update(index_elements=[_TABLE.c.key, _TABLE.c.window_start],
                                  set_={"count": _TABLE.c.count + 1})
           .returning(_TABLE.c.window_start, _TABLE.c.count)
           .cte("hit"))
_HIT_ONE_STATEMENT = select(_UPSERT.c.window_start, _UPSERT.c.count).union_all(
    select(_TABLE.c.window_start, _TABLE.c.count).where(
        _TABLE.c.key == bindparam("k"), _TABLE.c.window_start > bindparam("oldest"),
        _TABLE.c.window_start != bindparam("start")))


class DatabaseCounter:
    """One row per key and bucket; an UPDATE ... SET count = count + 1 is atomic on both backends.

    Each hit and reset runs in a short transaction of its own (``db.engine.begin()``; on
    PostgreSQL one statement on the counters' own connections, ``_postgresql_engine``),
    never in the caller's session: it neither commits the caller's work behind
    its back nor goes away with the caller's rollback (a refused or failed
    attempt still counts, which is what a limit needs). SQLite has one writer at a
    time: when the caller's transaction already holds it, a second connection
    would wait for it forever, so the hit joins the caller's transaction instead
    (still no commit here: it is committed, or rolled back, with the caller's work).
    """

    @staticmethod
    def _transaction():
        session = db.session()
        if db.engine.dialect.name == "sqlite" and session.in_transaction():
            connection = session.connection()
            if connection.connection.dbapi_connection.in_transaction:  # it wrote
                return nullcontext(connection)
        if db.engine.dialect.name == "postgresql":
            return _postgresql_engine().connect()
        return db.engine.begin()

    def hit(self, key: str, limit: int, window: int, now: float | None = None) -> Decision:
        now = int(time.time() if now is None else now)
        start = _bucket(window, now)
        key = key[:200]
        if db.engine.dialect.name == "postgresql":
            with self._transaction() as connection:
                rows = connection.execute(_HIT_ONE_STATEMENT, {
                    "k": key, "start": start, "expires": start + window,
                    "oldest": _oldest_live(window, now)}).all()
            return decide([(s, c) for s, c in rows], limit, window, now)
        with self._transaction() as connection:
            if not self._increment(connection, key, start):
                try:
                    with connection.begin_nested():
                        connection.execute(_INSERT, {"key": key, "window_start": start,
                                                     "count": 1, "expires_at": start + window})
                except IntegrityError:
                    self._increment(connection, key, start)
            rows = connection.execute(
                _LIVE, {"k": key, "oldest": _oldest_live(window, now)}).all()
        return decide([(s, c) for s, c in rows], limit, window, now)

    @staticmethod
    def _increment(connection, key: str, start: int) -> bool:
        return bool(connection.execute(_INCREMENT, {"k": key, "start": start}).rowcount)

    def reset(self, key: str, window: int) -> None:
        with self._transaction() as connection:
            connection.execute(_RESET, {"k": key[:200]})

    @staticmethod
    def purge_expired() -> int:
        result = db.session.execute(
            delete(RateLimitCounter).where(RateLimitCounter.expires_at <= int(time.time())))
        return result.rowcount or 0


# KEYS[1]: a hash of bucket start -> hits. ARGV: bucket, oldest live bucket, ttl.
# Adds the hit, drops dead buckets, returns the live ones (flat: start, count, ...).
_REDIS_HIT = """
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
local all = redis.call('HGETALL', KEYS[1])
local live = {}
for i = 1, #all, 2 do
  if tonumber(all[i]) <= tonumber(ARGV[2]) then
    redis.call('HDEL', KEYS[1], all[i])
  else
    live[#live + 1] = all[i]
    live[#live + 1] = all[i + 1]
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return live
"""


class RedisCounter:
    def __init__(self, url: str):
        import redis

        self.redis = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._hit = self.redis.register_script(_REDIS_HIT)

    def hit(self, key: str, limit: int, window: int, now: float | None = None) -> Decision:
        now = int(time.time() if now is None else now)
        flat = self._hit(keys=[f"idp:rl:{key}"],
                         args=[_bucket(window, now), _oldest_live(window, now),
                               window + 1])
        pairs = [(int(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2)]
        return decide(pairs, limit, window, now)

    def reset(self, key: str, window: int) -> None:
        self.redis.delete(f"idp:rl:{key}")


def counter_for(app) -> Counter:
    """The counter backend of this app (Redis if configured), created once."""
    existing = app.extensions.get("idp_counter")
    if existing is None:
        url = app.config["IDP_REDIS_URL"]
        existing = RedisCounter(url) if url else DatabaseCounter()
        app.extensions["idp_counter"] = existing
    return existing
