"""The few hottest statements, run on the DBAPI cursor.

On the machine paths (idp/oauth/lean.py) one indexed statement is the whole database
work of a request, and SQLAlchemy's execution layer (statement cache lookup, result
metadata, row objects, the pool's checkout and reset) costs about as much as the
database itself. Here a Core statement is compiled once per dialect, with the bind and
result processors of its own column types (so values come back exactly as through
SQLAlchemy: booleans, JSON), and run on a connection each thread keeps open.

The connection is the engine's own (its connect listeners ran: SQLite's pragmas), taken
out of the pool once per thread and process; a connection that fails is dropped and the
caller falls back to the ordinary path. PostgreSQL connections are in autocommit mode: a
read is one round trip; writes that need a transaction say so with ``transaction``.

On PostgreSQL a statement can also be *sent* (``Statement.send``): prepared once per
connection, sent, and its answer read later (``Pending.rows`` or ``Pending.rowcount``),
so that the worker computes while the server reads, executes and commits (the refresh
grant authenticates the client during its read, and signs its answer during its write).
"""

from __future__ import annotations

import itertools
import os
import select
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.pool import SingletonThreadPool, StaticPool

_local = threading.local()
# Pools whose connection is the database (SQLite in memory): shared, never detached.
SHARED_POOLS = (StaticPool, SingletonThreadPool)
_keep: set = set()
_names = itertools.count(1)
# The values ``send`` writes as text itself (all that the statements sent carry).
_TEXT_TYPES = (str, int)


class Statement:
    """A Core statement built lazily, compiled once per dialect, run on a DBAPI cursor."""

    def __init__(self, build: Callable[[], Any]):
        self._build = build
        self._core = None
        self._compiled: dict[str, tuple] = {}
        self._name = f"idp_{next(_names)}".encode()  # its prepared name (``send``)
        self._numbered: tuple | None = None

    def core(self) -> Any:
        """The Core statement itself (built on first use), to run it through SQLAlchemy."""
        if self._core is None:
            self._core = self._build()
        return self._core

    def _for(self, dialect) -> tuple:
        found = self._compiled.get(dialect.name)
        if found is None:
            statement = self.core()
            compiled = statement.compile(dialect=dialect)
            names = list(compiled.positiontup or ()) if compiled.positional else None
            binds = {name: bind.type.dialect_impl(dialect).bind_processor(dialect)
                     for name, bind in ((b.key, b) for b in compiled.binds.values())}
            binds = {name: p for name, p in binds.items() if p is not None}
            columns = getattr(statement, "exported_columns", ())
            results = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None)
                            for c in columns)
            # (position, processor) of the columns that have one: most have none
            processed = tuple((i, p) for i, p in enumerate(results) if p is not None)
            found = (compiled.string, names, binds, processed or None,
                     compiled.construct_params)
            self._compiled[dialect.name] = found
        return found

    def execute(self, connection: Connection, params: dict[str, Any]) -> Any:
        """Run it; returns the DBAPI cursor (its ``rowcount``, or rows via ``fetch``)."""
        return self._run(connection.dbapi.cursor(), connection.dialect, params)

    def _run(self, cursor: Any, dialect, params: dict[str, Any]) -> Any:
        sql, names, binds, _results, construct = self._for(dialect)
        values = construct(params)
        for name, process in binds.items():
            values[name] = process(values[name])
        cursor.execute(sql, [values[n] for n in names] if names is not None else values)
        return cursor

    def rows(self, connection: Connection, params: dict[str, Any]) -> list[tuple]:
        """All rows, each value as SQLAlchemy would have returned it (read on the
        connection's own cursor: a cursor per statement costs psycopg a few us)."""
        fetched = self._run(connection.reader(), connection.dialect, params).fetchall()
        return self._processed(fetched, self._compiled[connection.dialect.name][3])

    @staticmethod
    def _processed(fetched: list, processed: tuple | None) -> list[tuple]:
        if processed is None:
            return [tuple(row) for row in fetched]
        rows = []
        for row in fetched:
            values = list(row)
            for i, process in processed:
                values[i] = process(values[i])
            rows.append(tuple(values))
        return rows

    def first(self, connection: Connection, params: dict[str, Any]) -> tuple | None:
        found = self.rows(connection, params)
        return found[0] if found else None

    def send(self, connection: Connection, params: dict[str, Any]) -> Pending:
        """PostgreSQL: send it (autocommit: it commits on its own) and return before the
        server answers; ``Pending.rowcount`` reads the answer. Prepared on the connection
        the first time (``$n`` placeholders, each cast to its column's type by the
        compiler), its values sent as text: strings, integers and NULLs only."""
        if self._numbered is None:
            from sqlalchemy.dialects.postgresql import psycopg as dialects

            compiled = self.core().compile(dialect=dialects.dialect(paramstyle="numeric_dollar"))
            self._numbered = (compiled.string.encode(), list(compiled.positiontup or ()),
                              compiled.construct_params)
        sql, names, construct = self._numbered
        values = construct(params)
        text = []
        for name in names:
            value = values[name]
            if value is not None and (type(value) not in _TEXT_TYPES):
                raise TypeError(f"{name}: {type(value).__name__} is not sent as text here")
            text.append(None if value is None else str(value).encode())
        pgconn = connection.dbapi.pgconn
        if self._name not in connection.prepared:
            _check(pgconn.prepare(self._name, sql))
            connection.prepared.add(self._name)
        pgconn.send_query_prepared(self._name, text)
        return Pending(self, connection)


class Pending:
    """A statement sent and not answered yet (``Statement.send``). Its answer must be read
    (``rowcount`` or ``rows``) before the connection runs anything else."""

    __slots__ = ("_statement", "_connection")

    def __init__(self, statement: Statement, connection: Connection):
        self._statement, self._connection = statement, connection

    def rowcount(self) -> int:
        """Wait for the answer: the rows the statement wrote. A database error is raised
        as psycopg raises it (the caller's ``connection`` block then drops the connection)."""
        return self._answer().command_tuples or 0

    def rows(self) -> list[tuple]:
        """Wait for the answer: the rows read, each value as ``Statement.rows`` gives it
        (psycopg's own loaders for the connection, then the columns' result processors)."""
        from psycopg.adapt import Transformer

        result = self._answer()
        loader = Transformer(self._connection.dbapi)
        loader.set_pgresult(result)
        fetched = loader.load_rows(0, result.ntuples, tuple)
        processed = self._statement._for(self._connection.dialect)[3]
        return self._statement._processed(fetched, processed)

    def _answer(self) -> Any:
        pgconn = self._connection.dbapi.pgconn
        poller = None
        pgconn.consume_input()
        while pgconn.is_busy():
            if poller is None:
                poller = select.poll()
                poller.register(pgconn.socket, select.POLLIN)
            poller.poll()
            pgconn.consume_input()
        result, extra = pgconn.get_result(), pgconn.get_result()
        while extra is not None:  # never for one statement; read to leave the connection idle
            extra = pgconn.get_result()
        _check(result)
        return result


def _check(result: Any) -> None:
    """Raise the psycopg error of a failed result, by its SQLSTATE."""
    from psycopg import pq

    if result is not None and result.status in (pq.ExecStatus.COMMAND_OK,
                                                pq.ExecStatus.TUPLES_OK):
        return
    import psycopg
    from psycopg import errors

    message = (result.error_message if result is not None else b"no result").decode(
        "utf-8", "replace")
    sqlstate = result.error_field(pq.DiagnosticField.SQLSTATE) if result is not None else None
    try:
        error = errors.lookup(sqlstate.decode()) if sqlstate else psycopg.DatabaseError
    except KeyError:
        error = psycopg.DatabaseError
    raise error(message)


class Connection:
    """One thread's open DBAPI connection to one engine, and that engine's dialect."""

    __slots__ = ("dbapi", "dialect", "_reader", "prepared")

    def __init__(self, dbapi: Any, dialect):
        self.dbapi, self.dialect = dbapi, dialect
        self._reader = None
        self.prepared: set[bytes] = set()  # the names ``Statement.send`` prepared on it

    def reader(self) -> Any:
        """The cursor reads run on, opened once (each read fetches all its rows)."""
        if self._reader is None:
            self._reader = self.dbapi.cursor()
        return self._reader

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """BEGIN ... COMMIT (ROLLBACK on any error) around the block's statements."""
        cursor = self.dbapi.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE" if self.dialect.name == "sqlite" else "BEGIN")
            yield self
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        else:
            cursor.execute("COMMIT")
        finally:
            cursor.close()


def _open(engine: Engine) -> Connection:
    pooled = engine.raw_connection()
    raw = pooled.driver_connection
    if not isinstance(engine.pool, SHARED_POOLS):
        pooled.detach()  # ours for the thread's life, no longer the pool's
    else:
        _keep.add(pooled)  # an in-memory SQLite: the pool's one connection, shared as it is
    if engine.dialect.name == "sqlite":
        raw.isolation_level = None  # no implicit BEGIN: reads stand alone, writes say BEGIN
    else:
        raw.autocommit = True
    return Connection(raw, engine.dialect)


class _Opened(weakref.WeakKeyDictionary):
    """One thread's connections by engine, closed when the thread ends (a server that
    starts a thread per request would otherwise leave them to the garbage collector), but
    not in a forked child, where they are the parent's."""

    def __init__(self):
        super().__init__()
        self.pid = os.getpid()

    def __del__(self, getpid=os.getpid):  # bound now: at exit the module may be gone
        if getpid() == self.pid:
            for found in list(self.values()):
                with suppress(Exception):
                    found.dbapi.close()


def _forget_after_fork() -> None:
    """A forked child starts without connections: the parent's are not its own."""
    global _local
    _local = threading.local()


os.register_at_fork(after_in_child=_forget_after_fork)


def _mine(engine: Engine) -> Connection:
    """This thread's connection to ``engine``, opened on first use."""
    try:
        opened = _local.open
    except AttributeError:
        opened = _local.open = _Opened()
    found = opened.get(engine)
    if found is None:
        found = opened[engine] = _open(engine)
    return found


def _drop(engine: Engine, found: Connection) -> None:
    _local.open.pop(engine, None)
    with suppress(Exception):  # it is being dropped anyway
        found.dbapi.close()


@contextmanager
def connection(engine: Engine) -> Iterator[Connection]:
    """This thread's connection to ``engine`` (opened on first use). An error of the
    database or driver inside the block closes it, so the next request opens a new one."""
    found = _mine(engine)
    try:
        yield found
    except engine.dialect.loaded_dbapi.Error:
        _drop(engine, found)
        raise


def fetch_first(statement: Statement, engine: Engine, params: dict[str, Any]) -> tuple | None:
    """One read on this thread's connection (``connection``'s rule, without the cost of a
    context manager: this is every lean read)."""
    found = _mine(engine)
    try:
        return statement.first(found, params)
    except engine.dialect.loaded_dbapi.Error:
        _drop(engine, found)
        raise


__all__: Sequence[str] = ("Connection", "Pending", "Statement", "connection", "fetch_first")
