"""idp/services/dbapi.py: a statement on the DBAPI cursor returns exactly what SQLAlchemy
returns (booleans, JSON, NULLs of outer joins), and a broken connection is replaced."""

from __future__ import annotations

import pytest

from idp.extensions import db
from idp.models import Token
from idp.services import dbapi, tokens

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")


def _core_row(statement, params):
    return tuple(db.session.connection().execute(statement, params).first())


def test_the_joined_token_selects_read_as_through_sqlalchemy(app, ctx, driver, rp):
    issued = driver.tokens(rp, scope="openid profile email")
    access = tokens.decode_access_token(app.extensions["idp_keys"], app.config["IDP_ISSUER"],
                                        issued["access_token"])
    cases = [(tokens._access_select, {"jti": access["jti"]}),
             (tokens._refresh_select, {"refresh_hash": tokens.digest(issued["refresh_token"])})]
    for build, params in cases:
        core = _core_row(build(), params)
        raw = dbapi.fetch_first(dbapi.Statement(build), db.engine, params)
        assert raw == core
        assert [type(v) for v in raw] == [type(v) for v in core]
    assert dbapi.fetch_first(dbapi.Statement(tokens._access_select), db.engine,
                             {"jti": "none such"}) is None
    if db.engine.dialect.name == "postgresql":  # sent, read later: the very same rows
        db.session.commit()
        with dbapi.connection(db.engine) as conn:
            for build, params in cases:
                core = _core_row(build(), params)
                db.session.commit()
                sent = dbapi.Statement(build).send(conn, params).rows()
                assert sent == [core] and [type(v) for v in sent[0]] == [type(v) for v in core]
            assert dbapi.Statement(tokens._access_select).send(conn, {"jti": "none"}).rows() == []


def test_a_write_in_a_transaction_and_a_rollback(app, ctx, driver, rp):
    driver.tokens(rp)
    token_id = db.session.query(Token.id).filter(Token.refresh_hash.isnot(None)).scalar()
    claim = dbapi.Statement(lambda: tokens._rotation_statements()[0])
    db.session.commit()  # nothing of the session's open while another connection writes
    with dbapi.connection(db.engine) as conn:
        with pytest.raises(RuntimeError), conn.transaction():
            assert claim.execute(conn, {"old_id": token_id, "now": 5}).rowcount == 1
            raise RuntimeError("rolled back")
        with conn.transaction():
            assert claim.execute(conn, {"old_id": token_id, "now": 7}).rowcount == 1
            assert claim.execute(conn, {"old_id": token_id, "now": 9}).rowcount == 0
    db.session.expire_all()
    assert db.session.get(Token, token_id).rotated_at == 7


def test_a_failed_connection_is_dropped_and_replaced(app, ctx):
    bad = dbapi.Statement(lambda: db.text("SELECT * FROM no_such_table"))
    with dbapi.connection(db.engine) as first:
        pass
    with pytest.raises(db.engine.dialect.loaded_dbapi.Error):
        dbapi.fetch_first(bad, db.engine, {})
    with dbapi.connection(db.engine) as second:
        assert second is not first
    with dbapi.connection(db.engine) as third:
        assert third is second


def test_a_forked_child_opens_its_own_connection(app, ctx):
    """After a fork (os.register_at_fork) the parent's connections are not the child's."""
    with dbapi.connection(db.engine) as parent:
        pass
    dbapi._forget_after_fork()  # what the child runs
    with dbapi.connection(db.engine) as child:
        assert child is not parent
    parent.dbapi.close()


def test_a_threads_connections_close_with_the_thread(app, ctx):
    """A server that starts a thread per request (werkzeug's) leaves no connection open."""
    import threading
    import time

    engine, opened = db.engine, []

    def request():
        with dbapi.connection(engine) as connection:
            opened.append(connection)

    worker = threading.Thread(target=request)
    worker.start()
    worker.join()
    deadline = time.monotonic() + 2
    while True:  # the thread's locals go just after join() returns
        try:
            opened[0].dbapi.cursor().close()
        except engine.dialect.loaded_dbapi.Error:
            break
        assert time.monotonic() < deadline, "the thread's connection is still open"
        time.sleep(0.01)


def test_access_state_unpacks_the_access_select_in_its_order():
    """tokens.access_state reads the row by position: the select's columns, in order."""
    names = [c.key for c in tokens._access_select().selected_columns]
    assert names == ["client_id", "user_id", "tenant_id", "grant_id", "scope", "issued_at",
                     "access_expires_at", "revoked_at", "grant_found", "grant_revoked_at",
                     "grant_claims", "user_active", *tokens._USER_COLUMNS, "slug", "role",
                     "name", "tenant_active", "client_tenant_id", "client_listed",
                     "client_lists_tenant"]


def test_sqlite_connections_get_the_apps_pragmas(app, ctx):
    """WAL, a busy timeout, foreign keys and reads through a memory map, on the pool's
    connections and on the lean paths' own (taken from the same engine)."""
    from idp import SQLITE_MMAP_BYTES

    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's pragmas")
    pragmas = ("journal_mode", "busy_timeout", "foreign_keys", "mmap_size")
    expected = ("wal", 10000, 1, SQLITE_MMAP_BYTES)
    pooled = tuple(db.session.connection().exec_driver_sql(f"PRAGMA {p}").scalar()
                   for p in pragmas)
    with dbapi.connection(db.engine) as conn:
        own = tuple(conn.dbapi.execute(f"PRAGMA {p}").fetchone()[0] for p in pragmas)
    assert pooled == own == expected


# --- a statement sent, its answer read later (PostgreSQL) -------------------------------


@pytest.fixture
def postgres(app, ctx):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only (IDP_TEST_DATABASE_URL): Statement.send is libpq's")


def _a_refresh_token_id(driver, rp) -> int:
    driver.tokens(rp)
    token_id = db.session.query(Token.id).filter(Token.refresh_hash.isnot(None)).scalar()
    db.session.commit()  # nothing of the session's open while another connection writes
    return token_id


def test_a_sent_write_commits_and_its_answer_says_how_many_rows(postgres, driver, rp):
    token_id = _a_refresh_token_id(driver, rp)
    claim = dbapi.Statement(lambda: tokens._rotation_statements()[0])
    with dbapi.connection(db.engine) as conn:
        first = claim.send(conn, {"old_id": token_id, "now": 7})
        assert first.rowcount() == 1
        assert claim.send(conn, {"old_id": token_id, "now": 9}).rowcount() == 0
        # prepared once on this connection, and the connection serves reads as before
        assert claim._name in conn.prepared
        assert conn.dbapi.execute("SELECT 1").fetchone() == (1,)
    db.session.expire_all()
    assert db.session.get(Token, token_id).rotated_at == 7  # committed: autocommit


def test_a_sent_write_that_fails_raises_the_drivers_error_and_is_replaced(postgres, driver,
                                                                          rp):
    """A duplicate jti: psycopg's own UniqueViolation, nothing written, and the
    connection is dropped by its ``connection`` block (the lean path then asks the view)."""
    import psycopg

    token_id = _a_refresh_token_id(driver, rp)
    existing = db.session.get(Token, token_id)
    values = {c: getattr(existing, c) for c in tokens._STORED_COLUMNS}
    count = db.session.query(Token).count()
    db.session.commit()
    with pytest.raises(psycopg.errors.UniqueViolation):
        with dbapi.connection(db.engine) as conn:
            tokens._CLAIM_AND_STORE.send(conn, {"old_id": token_id, "now": 5, **values}) \
                .rowcount()
    with dbapi.connection(db.engine) as again:
        assert again is not conn
    db.session.expire_all()
    assert db.session.query(Token).count() == count
    assert db.session.get(Token, token_id).rotated_at is None  # the claim went with it


def test_send_refuses_a_value_it_would_not_write_faithfully(postgres, driver, rp):
    token_id = _a_refresh_token_id(driver, rp)
    claim = dbapi.Statement(lambda: tokens._rotation_statements()[0])
    with dbapi.connection(db.engine) as conn:
        with pytest.raises(TypeError):
            claim.send(conn, {"old_id": token_id, "now": True})
        assert conn.dbapi.execute("SELECT 1").fetchone() == (1,)  # nothing was sent
    db.session.expire_all()
    assert db.session.get(Token, token_id).rotated_at is None
