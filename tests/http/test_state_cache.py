"""idp/services/state_cache.py: on PostgreSQL, introspection and userinfo keep a token's
state until the database reports a write that changes it (migration 0013's triggers).

Every test here needs PostgreSQL (IDP_TEST_DATABASE_URL); on SQLite only the first runs:
nothing is cached there."""

from __future__ import annotations

import logging
import time

import psycopg
import pytest
from sqlalchemy import Column
from sqlalchemy.sql import visitors

from idp.extensions import db
from idp.models import User
from idp.services import dbapi, state_cache, tokens
from tests.http.helpers import introspect
from tests.support import basic_auth

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")


def test_nothing_is_cached_on_sqlite_or_when_turned_off(app, ctx):
    from idp import create_app

    if db.engine.dialect.name == "postgresql":
        off = create_app({"TESTING": True, "IDP_TOKEN_STATE_CACHE": False,
                          "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
                          "IDP_KEYS_DIR": app.config["IDP_KEYS_DIR"]})
        assert "idp_state_cache" not in off.extensions
        assert state_cache.of(db.engine) is app.extensions["idp_state_cache"]
    else:
        assert state_cache.of(db.engine) is None and "idp_state_cache" not in app.extensions


@pytest.fixture
def cache(app, ctx):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only (IDP_TEST_DATABASE_URL): SQLite caches nothing")
    found = state_cache.of(db.engine)
    found.flush()
    return found


def _connect(app):
    """A psycopg connection of its own to the app's database, in autocommit."""
    with app.app_context():
        url = db.engine.url.set(drivername="postgresql")
    return psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)


@pytest.fixture
def outsider(app):
    """A connection of another process's kind: its writes reach the cache only as
    notifications (no commit hook of this process sees them)."""
    with _connect(app) as conn:
        yield conn


@pytest.fixture
def listener(app):
    with _connect(app) as conn:
        conn.execute(f"LISTEN {state_cache.CHANNEL}")
        yield conn


def _notified(listener, sql: str, wait: float = 1.0) -> list[str]:
    """The tables named by the notifications that ``sql``, run and committed on another
    connection, sent."""
    with psycopg.connect(listener.info.dsn, autocommit=True) as writer:
        writer.execute(sql)
    return [n.payload for n in listener.notifies(timeout=wait, stop_after=1)]


def _read_columns(statement) -> set[tuple[str, str]]:
    return {(c.table.name, c.name) for c in visitors.iterate(statement)
            if isinstance(c, Column) and c.table is not None}


def test_every_column_the_token_state_reads_fires_the_trigger(cache, listener):
    """Each column the access-token and deny-list selects read, set to itself by a
    statement that touches no row, notifies its table; so does a DELETE of each table and
    an INSERT where a new row matters. The migration's lists cannot drift from the select."""
    read = _read_columns(tokens._access_select()) | _read_columns(tokens._revoked_select())
    assert {table for table, _ in read} == state_cache.TABLES
    for table, column in sorted(read):
        assert _notified(listener, f"UPDATE {table} SET {column} = {column} WHERE false") \
            == [table], (table, column)
    for table in sorted(state_cache.TABLES):
        assert _notified(listener, f"DELETE FROM {table} WHERE false") == [table]
    for table in sorted(state_cache.INSERTS_MATTER):
        assert _notified(listener, f"INSERT INTO {table} SELECT * FROM {table} WHERE false") \
            == [table]


def test_writes_that_change_no_token_state_notify_nothing(cache, listener):
    """A new token or grant, a refresh token's rotation, a grant's code redeemed, a column
    the token state does not read: the hot writes leave the cache alone. A write rolled
    back notifies nothing."""
    for sql in ("UPDATE oauth_tokens SET rotated_at = rotated_at WHERE false",
                "INSERT INTO oauth_tokens SELECT * FROM oauth_tokens WHERE false",
                "INSERT INTO oauth_grants SELECT * FROM oauth_grants WHERE false",
                "UPDATE oauth_grants SET code_used_at = code_used_at WHERE false",
                "UPDATE users SET last_login_at = last_login_at WHERE false",
                "BEGIN; UPDATE users SET active = active WHERE false; ROLLBACK"):
        assert _notified(listener, sql, wait=0.2) == [], sql


@pytest.fixture
def reads(monkeypatch):
    """The statements that reached the database through the lean paths' DBAPI reads."""
    seen = []
    real = dbapi.fetch_first
    monkeypatch.setattr(dbapi, "fetch_first",
                        lambda statement, *args: seen.append(statement) or real(statement, *args))
    return seen


def test_a_token_is_read_once_then_kept(client, driver, rp, cache, reads):
    token = driver.tokens(rp)["access_token"]
    reads.clear()
    hits = cache.hits
    for _ in range(3):
        assert introspect(client, rp, token).get_json()["active"] is True
        assert client.get("/oauth/userinfo",
                          headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert reads == [tokens._ACCESS] and cache.listening and cache.hits == hits + 5


class _Deaf:
    """A listener that never hears a notification: what is left is this process's hook."""

    def consume_input(self) -> None:
        pass

    def notifies(self) -> None:
        return None

    @property
    def pgconn(self):
        return self


@pytest.fixture
def deaf(cache):
    cache.first(tokens._REVOKED, {"jti": "c.none"}, True)  # listening
    real, cache._listener = cache._listener, _Deaf()
    yield
    cache._listener = real


def test_a_revocation_in_this_process_counts_at_once(client, driver, rp, cache, reads, deaf):
    """This process's commit empties the cache itself, without waiting for the
    notification."""
    token = driver.tokens(rp)["access_token"]
    reads.clear()
    assert introspect(client, rp, token).get_json()["active"] is True
    assert introspect(client, rp, token).get_json()["active"] is True
    assert reads == [tokens._ACCESS]
    assert client.post("/oauth/revoke", data={"token": token},
                       headers=basic_auth(rp.client_id, rp.client_secret)).status_code == 200
    assert introspect(client, rp, token).get_json() == {"active": False}


def test_a_revoked_client_token_counts_at_once(client, rp, cache, deaf):
    """The deny-list's "no row" is kept too, and a new row in it empties the cache."""
    token = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                        headers=basic_auth(rp.client_id, rp.client_secret)).get_json()
    token = token["access_token"]
    assert introspect(client, rp, token).get_json()["active"] is True
    hits = cache.hits
    assert introspect(client, rp, token).get_json()["active"] is True
    assert cache.hits == hits + 1  # the deny-list's answer, kept
    client.post("/oauth/revoke", data={"token": token},
                headers=basic_auth(rp.client_id, rp.client_secret))
    assert introspect(client, rp, token).get_json() == {"active": False}


def _until_inactive(client, rp, token, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if introspect(client, rp, token).get_json() == {"active": False}:
            return True
        time.sleep(0.002)
    return False


def test_a_write_by_another_process_counts_when_notified(client, driver, rp, cache,
                                                         outsider, reads):
    """A user disabled through another connection: no commit hook here saw it, the
    notification empties the cache and the next introspection reads the row again."""
    token = driver.tokens(rp)["access_token"]
    user_id = db.session.query(User.id).filter_by(email="alice@example.com").scalar()
    db.session.commit()
    assert introspect(client, rp, token).get_json()["active"] is True
    reads.clear()
    assert introspect(client, rp, token).get_json()["active"] is True
    assert reads == []  # kept
    flushes = cache.flushes
    outsider.execute("UPDATE users SET active = false WHERE id = %s", (user_id,))
    assert _until_inactive(client, rp, token)
    assert cache.flushes > flushes and reads


def test_without_its_listener_the_cache_reads_every_time(client, driver, rp, cache, outsider,
                                                         reads):
    """The listener's connection killed: the next read finds it gone, reads the row and
    keeps nothing; a write it was not told about is still seen at once. Later it listens
    again, starting empty."""
    token = driver.tokens(rp)["access_token"]
    assert introspect(client, rp, token).get_json()["active"] is True
    pid = cache._listener.info.backend_pid
    outsider.execute("SELECT pg_terminate_backend(%s)", (pid,))
    time.sleep(0.05)
    reads.clear()
    assert introspect(client, rp, token).get_json()["active"] is True
    assert introspect(client, rp, token).get_json()["active"] is True
    assert not cache.listening and reads == [tokens._ACCESS, tokens._ACCESS]
    cache._retry_at = 0.0  # the retry is due
    assert introspect(client, rp, token).get_json()["active"] is True
    assert cache.listening and cache._listener.info.backend_pid != pid


def test_missing_triggers_turn_the_cache_off(app, client, driver, rp, cache, outsider, caplog):
    """A database without migration 0013 (or with its triggers disabled): nothing is kept,
    with one warning."""
    engine = db.engine
    fresh = state_cache.StateCache(engine, max_age=30)
    outsider.execute("ALTER TABLE memberships DISABLE TRIGGER idp_token_state")
    try:
        with caplog.at_level(logging.WARNING, "idp.services.state_cache"):
            for _ in range(2):
                fresh._retry_at = 0.0
                assert fresh.first(tokens._REVOKED, {"jti": "c.none"}, True) is None
    finally:
        outsider.execute("ALTER TABLE memberships ENABLE TRIGGER idp_token_state")
    assert not fresh.listening and fresh.hits == 0 and fresh.misses == 2
    assert [r.message for r in caplog.records].count(
        "token state cache off: the idp_token_state triggers are missing or disabled on "
        "memberships (run `idp db upgrade`)") == 1
    fresh._retry_at = 0.0
    fresh.first(tokens._REVOKED, {"jti": "c.none"}, True)
    assert fresh.listening
    fresh.close()


def test_an_entry_lives_max_age_at_most(app, ctx, cache, reads):
    fresh = state_cache.StateCache(db.engine, max_age=0.05)
    for _ in range(2):
        fresh.first(tokens._REVOKED, {"jti": "c.none"}, True)
    assert fresh.hits == 1
    time.sleep(0.06)
    fresh.first(tokens._REVOKED, {"jti": "c.none"}, True)
    assert fresh.hits == 1 and len(reads) == 2
    fresh.close()


def test_a_read_that_straddles_a_flush_is_not_kept(app, ctx, cache, monkeypatch):
    """Another thread emptied the cache while this read ran: what it read may predate that
    write, so it is returned but not kept."""
    real = dbapi.fetch_first

    def racing(*args):
        row = real(*args)
        cache.flush()
        return row

    monkeypatch.setattr(dbapi, "fetch_first", racing)
    cache.first(tokens._REVOKED, {"jti": "c.none"}, True)
    monkeypatch.setattr(dbapi, "fetch_first", real)
    hits = cache.hits
    cache.first(tokens._REVOKED, {"jti": "c.none"}, True)
    assert cache.hits == hits


def test_a_missing_token_row_is_not_kept(app, ctx, cache, reads):
    for _ in range(2):
        assert cache.first(tokens._ACCESS, {"jti": "none such"}, False) is None
    assert len(reads) == 2


def test_the_cache_holds_max_entries(app, ctx, cache):
    fresh = state_cache.StateCache(db.engine, max_age=30, max_entries=2)
    for jti in ("c.a", "c.b", "c.c"):
        fresh.first(tokens._REVOKED, {"jti": jti}, True)
    assert [key[1] for key in fresh._entries] == ["c.b", "c.c"]
    fresh.close()


def test_a_forked_child_listens_on_its_own_connection(app, ctx, cache):
    cache.first(tokens._REVOKED, {"jti": "c.none"}, True)
    parent = cache._listener
    cache._pid = -1  # as in a child after fork: the pid is not the one that connected
    cache.first(tokens._REVOKED, {"jti": "c.none"}, True)
    assert cache.listening and cache._listener is not parent
    assert not parent.closed  # the parent's, left alone
    parent.close()


def test_each_kind_of_write_of_this_process_empties_the_cache(app, ctx, factory, cache, deaf):
    """ORM flushes, ORM-enabled and Core bulk statements: a commit that wrote to a watched
    table empties the cache; one that only inserted a token, or that rolled back, does
    not."""
    from sqlalchemy import delete, false, insert, update

    from idp.models import Membership, RevokedJti, Token

    user = factory.user("bob@example.com")
    db.session.commit()

    def flushed(write) -> bool:
        before = cache.flushes
        write()
        db.session.commit()
        return cache.flushes > before

    assert flushed(lambda: setattr(user, "given_name", "Robert"))  # ORM flush
    assert flushed(lambda: db.session.execute(update(Token).where(false())
                                              .values(revoked_at=1)))
    assert flushed(lambda: db.session.execute(delete(Membership).where(false())))
    assert flushed(lambda: db.session.execute(
        insert(RevokedJti.__table__).values(jti="c.x", expires_at=1)))
    assert not flushed(lambda: db.session.execute(
        insert(Token.__table__).from_select(["jti"], Token.__table__.select().where(false())
                                            .with_only_columns(Token.jti))))
    before = cache.flushes
    user.active = False
    db.session.flush()
    db.session.rollback()
    assert cache.flushes == before


def test_metrics_say_whether_it_listens_and_how_it_hits(app, client, driver, rp, monkeypatch):
    """On PostgreSQL /metrics shows the cache's state; on SQLite there is none to show."""
    monkeypatch.setitem(app.config, "IDP_METRICS_TOKEN", "m" * 32)
    token = driver.tokens(rp)["access_token"]
    for _ in range(2):
        introspect(client, rp, token)
    text = client.get("/metrics", headers={"Authorization": "Bearer " + "m" * 32}).text
    if db.engine.dialect.name != "postgresql":
        assert "idp_token_state_cache" not in text
        return
    cache = state_cache.of(db.engine)
    assert "idp_token_state_cache_listening 1\n" in text
    assert f'idp_token_state_cache_lookups_total{{outcome="hit"}} {cache.hits}\n' in text
    assert cache.hits >= 1
    assert f"idp_token_state_cache_entries {len(cache._entries)}\n" in text
