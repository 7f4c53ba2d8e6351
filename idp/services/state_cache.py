"""Token state read once per process, until PostgreSQL says it changed.

Introspection and userinfo of an access token read its row (token, grant, user,
membership, tenant, client) on every call, so that a revocation or a disabled user
counts at once. On PostgreSQL that read is a round trip the one-thread worker waits
through. Here the machine paths (idp/oauth/lean.py) keep what they read, and drop all of
it whenever the database reports a committed write that may change it:

- Migration 0013 puts a statement-level trigger on every table the access-token select
  reads. It fires only on writes that can change an existing token's state, and it calls
  ``pg_notify('idp_token_state', <table>)``. PostgreSQL delivers that notification when
  the writing transaction commits, whoever wrote: this process, another worker, another
  node, the CLI, or an operator's SQL.
- Each process keeps one connection that LISTENs on that channel. Before every cached
  read it drains the connection without blocking (two ``recv`` calls, under a
  microsecond). Any notification empties the whole cache.
- A commit of this process that wrote to a watched table empties this process's caches
  at once (``_note_write``/``_committed``), so a revocation is seen by the next request
  in the same process without waiting for the notification.
- While the listener is not connected, or the triggers are missing or disabled, nothing
  is cached: every read goes to the database, as before. After a reconnection the
  cache starts empty.
- An entry also expires after ``IDP_TOKEN_STATE_CACHE_MAX_AGE`` seconds. This bounds
  what a write made with triggers off can leave stale: ``session_replication_role =
  replica``, or a restore.

Another worker sees a change once its listener has the notification: PostgreSQL sends it
as the writer's COMMIT returns, so the window is about the loopback time, tens of
microseconds here. This is the same trade as a cluster cache with invalidation
messages (Keycloak's). Setting ``IDP_TOKEN_STATE_CACHE=0`` reads every time. SQLite
caches nothing: its read is a few microseconds in-process.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from contextlib import suppress
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

from idp.services import dbapi

logger = logging.getLogger(__name__)

CHANNEL = "idp_token_state"
TRIGGER = "idp_token_state"
# The tables migration 0013 watches. Writes to these empty this process's caches at commit.
TABLES = frozenset({"oauth_tokens", "oauth_grants", "users", "memberships", "tenants",
                    "oauth_clients", "oauth_client_tenants", "oauth_revoked_jtis"})
# Where a new row can change an existing token's state. A new token, grant, user or
# tenant row cannot.
INSERTS_MATTER = frozenset({"memberships", "oauth_clients", "oauth_client_tenants",
                            "oauth_revoked_jtis"})
MAX_ENTRIES = 10_000  # about 10 MB of token state at most; the oldest entry goes first
RETRY_SECONDS = 5.0  # after the listener failed or found no triggers
_TRIGGERS_SQL = ("SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
                 " WHERE t.tgname = %s AND t.tgenabled IN ('O', 'A')"
                 " AND pg_table_is_visible(c.oid)")
_WRITTEN = "idp_state_written"  # Connection.info flag: this transaction wrote a watched table

_caches: weakref.WeakKeyDictionary[Engine, StateCache] = weakref.WeakKeyDictionary()


class StateCache:
    """The rows ``first`` read for one engine, while a listener says nothing changed."""

    def __init__(self, engine: Engine, max_age: float, max_entries: int = MAX_ENTRIES):
        self._engine = weakref.ref(engine)
        self.max_age, self.max_entries = max_age, max_entries
        self._entries: dict[tuple, tuple[float, tuple | None]] = {}
        self._lock = threading.Lock()
        self._generation = 0  # moves on every flush: a read that straddles one is not kept
        self._listener: Any = None  # the psycopg connection, while it listens
        self._retry_at = 0.0
        self._warned = False
        self._pid = os.getpid()
        self.hits = self.misses = self.flushes = 0

    @property
    def listening(self) -> bool:
        return self._listener is not None

    def first(self, statement: dbapi.Statement, params: dict[str, Any],
              keep_missing: bool) -> tuple | None:
        """``dbapi.fetch_first(statement, engine, params)``, from the cache when it can be.
        ``keep_missing``: whether "no row" is kept too. It is for the deny-list, where no
        row is the usual answer. It is not for a token row, which may not be committed
        yet."""
        engine = self._engine()
        key = (statement, *params.values())
        now = time.monotonic()
        with self._lock:
            live = self._listening(now)
            if live:
                found = self._entries.get(key)
                if found is not None and found[0] > now:
                    self.hits += 1
                    return found[1]
            generation = self._generation
            self.misses += 1
        row = dbapi.fetch_first(statement, engine, params)
        if live and (row is not None or keep_missing):
            with self._lock:
                if generation == self._generation and self._listener is not None:
                    if len(self._entries) >= self.max_entries:
                        self._entries.pop(next(iter(self._entries)))
                    self._entries[key] = (now + self.max_age, row)
        return row

    def flush(self) -> None:
        with self._lock:
            self._flush()

    def render(self) -> str:
        """Its figures for /metrics (Prometheus text format)."""
        with self._lock:
            listening, hits, misses, flushes = (int(self.listening), self.hits, self.misses,
                                                self.flushes)
            size = len(self._entries)
        return "\n".join([
            "# HELP idp_token_state_cache_listening 1 while the token state cache listens "
            "for changes; 0: it reads every time.",
            "# TYPE idp_token_state_cache_listening gauge",
            f"idp_token_state_cache_listening {listening}",
            "# HELP idp_token_state_cache_lookups_total Token state lookups by outcome.",
            "# TYPE idp_token_state_cache_lookups_total counter",
            f'idp_token_state_cache_lookups_total{{outcome="hit"}} {hits}',
            f'idp_token_state_cache_lookups_total{{outcome="miss"}} {misses}',
            "# HELP idp_token_state_cache_flushes_total Times the cache was emptied.",
            "# TYPE idp_token_state_cache_flushes_total counter",
            f"idp_token_state_cache_flushes_total {flushes}",
            "# HELP idp_token_state_cache_entries Token states kept now.",
            "# TYPE idp_token_state_cache_entries gauge",
            f"idp_token_state_cache_entries {size}",
        ]) + "\n"

    def close(self) -> None:
        """Stop listening and forget everything (the engine's pool is being disposed); the
        next read connects again."""
        with self._lock:
            self._stop(0.0)

    # --- with the lock held ---------------------------------------------------------------

    def _flush(self) -> None:
        self._entries.clear()
        self._generation += 1
        self.flushes += 1

    def _listening(self, now: float) -> bool:
        """Whether entries may be used now, after taking every pending notification."""
        if self._pid != os.getpid():  # a forked child: the parent's listener is not ours
            self._listener, self._pid, self._retry_at = None, os.getpid(), 0.0
            self._flush()
        listener = self._listener
        if listener is None:
            return now >= self._retry_at and self._listen(now)
        try:
            pgconn = listener.pgconn
            # Twice: a backend that was terminated sends a last message, then closes; the
            # first read can take that message, the second sees the closed socket.
            pgconn.consume_input()
            pgconn.consume_input()
            if pgconn.notifies() is not None:
                while pgconn.notifies() is not None:
                    pass
                self._flush()
        except Exception:  # noqa: BLE001 - a lost connection, whatever the driver raises
            logger.warning("token state cache: the listener failed; reading every time",
                           exc_info=True)
            self._stop(now + RETRY_SECONDS)
            return False
        return True

    def _listen(self, now: float) -> bool:
        engine = self._engine()
        if engine is None:
            return False
        raw = None
        try:
            pooled = engine.raw_connection()
            raw = pooled.driver_connection
            pooled.detach()  # ours until close: never back in the pool, never reset
            raw.rollback()
            raw.autocommit = True
            raw.execute(f"LISTEN {CHANNEL}")
            found = {row[0] for row in raw.execute(_TRIGGERS_SQL, (TRIGGER,))}
        except Exception:  # noqa: BLE001 - no database now: read through, try again later
            logger.warning("token state cache: cannot listen; reading every time",
                           exc_info=True)
            if raw is not None:
                with suppress(Exception):
                    raw.close()
            self._retry_at = now + RETRY_SECONDS
            return False
        if found != TABLES:
            if not self._warned:
                logger.warning("token state cache off: the %s triggers are missing or "
                               "disabled on %s (run `idp db upgrade`)", TRIGGER,
                               ", ".join(sorted(TABLES - found)))
                self._warned = True
            raw.close()
            self._retry_at = now + RETRY_SECONDS
            return False
        self._listener = raw
        self._flush()  # whatever was read before now was not covered by a listener
        return True

    def _stop(self, retry_at: float) -> None:
        listener, self._listener = self._listener, None
        self._flush()
        self._retry_at = retry_at
        if listener is not None:
            with suppress(Exception):  # it is being dropped anyway
                listener.close()


def of(engine: Engine) -> StateCache | None:
    """The cache of ``engine``, or None: SQLite, another driver, or turned off."""
    return _caches.get(engine)


def flush_all() -> None:
    """Empty every cache of this process."""
    for cache in list(_caches.values()):
        cache.flush()


def _note_write(conn, _cursor, _statement, _parameters, context, _executemany) -> None:
    if context is None or not (context.isupdate or context.isdelete or context.isinsert):
        return
    table = getattr(getattr(context.compiled, "statement", None), "table", None)
    name = getattr(table, "name", None)
    if name in TABLES and (not context.isinsert or name in INSERTS_MATTER):
        conn.info[_WRITTEN] = True


def _committed(conn) -> None:
    if conn.info.pop(_WRITTEN, False):
        flush_all()


def _rolled_back(conn) -> None:
    conn.info.pop(_WRITTEN, None)


def init_app(app: Flask) -> StateCache | None:
    """A cache for the app's engine when it is PostgreSQL through psycopg and the cache is
    on (``IDP_TOKEN_STATE_CACHE``). It is reached as ``of(engine)``, and its listener
    connects on first use."""
    from idp.extensions import db

    if not app.config["IDP_TOKEN_STATE_CACHE"]:
        return None
    with app.app_context():
        engine = db.engine
    if engine.dialect.name != "postgresql" or engine.dialect.driver != "psycopg":
        return None
    cache = _caches.get(engine)
    if cache is None:
        cache = _caches[engine] = StateCache(engine, app.config["IDP_TOKEN_STATE_CACHE_MAX_AGE"])
        event.listen(engine, "after_cursor_execute", _note_write)
        event.listen(engine, "commit", _committed)
        event.listen(engine, "rollback", _rolled_back)
        event.listen(engine, "engine_disposed", lambda _engine: cache.close())
    app.extensions["idp_state_cache"] = cache
    return cache
