"""Grow a bench instance to a given size, fast: users and stored refresh tokens in bulk.

For the flat-cost scenario of `make bench`: the token endpoint and the password POST are
measured on a small instance, then again after this has added users (up to USERS in
all) and TOKENS refresh-token rows (each with a unique hash, spread over the users, all
of the bench client), to show that their cost does not grow with the tables.

Rows go in through the DBAPI, not the ORM: ``COPY`` on PostgreSQL, one ``executemany``
per batch on SQLite, in one transaction; the tables' indexes are the production ones.
Usage: python bench/seed_bulk.py CLIENT_ID USERS TOKENS   (prints what it added and the time)
"""

from __future__ import annotations

import hashlib
import os
import sys
import time

from idp import create_app
from idp.extensions import db

BATCH = 50_000


def _users(start: int, count: int, now: int, password_hash: str | None):
    for i in range(start, start + count):
        yield (f"bulk-{i:08d}", f"bulk-{i:08d}@bulk.bench.example", True, password_hash, False,
               True, now, now, 0)


def _tokens(count: int, user_ids: list[int], client_id: str, now: int):
    salt = os.urandom(16)
    for i in range(count):
        value = hashlib.sha256(salt + i.to_bytes(8, "big")).hexdigest()
        yield (f"bulk.{salt.hex()[:8]}.{i}", value, client_id, user_ids[i % len(user_ids)], "openid", now,
               now + 3600, now + 86_400)


USER_COLUMNS = ("sub", "email", "email_verified", "password_hash", "phone_number_verified",
                "active", "created_at", "updated_at", "lockouts")
TOKEN_COLUMNS = ("jti", "refresh_hash", "client_id", "user_id", "scope", "issued_at",
                 "access_expires_at", "refresh_expires_at")


def _insert(connection, dialect: str, table: str, columns: tuple[str, ...], rows) -> int:
    cursor = connection.cursor()
    done = 0
    if dialect == "postgresql":
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                done += 1
        return done
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            cursor.executemany(sql, batch)
            done, batch = done + len(batch), []
    if batch:
        cursor.executemany(sql, batch)
        done += len(batch)
    return done


def main() -> None:
    client_id, users, tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    started = time.monotonic()
    app = create_app()
    with app.app_context():
        dialect = db.engine.dialect.name
        raw = db.engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("SELECT count(*) FROM users")
            have = cursor.fetchone()[0]
            cursor.execute("SELECT password_hash FROM users WHERE password_hash IS NOT NULL")
            found = cursor.fetchone()
            now = int(time.time())
            added_users = _insert(raw, dialect, "users", USER_COLUMNS,
                                  _users(have, max(0, users - have), now,
                                         found[0] if found else None))
            cursor.execute("SELECT count(*) FROM oauth_tokens WHERE refresh_hash IS NOT NULL")
            have_tokens = cursor.fetchone()[0]
            cursor.execute("SELECT id FROM users")
            user_ids = [row[0] for row in cursor.fetchall()]
            added_tokens = _insert(raw, dialect, "oauth_tokens", TOKEN_COLUMNS,
                                   _tokens(max(0, tokens - have_tokens), user_ids, client_id,
                                           now))
            raw.commit()
            for table in ("users", "oauth_tokens"):  # fresh planner statistics
                raw.cursor().execute(f"ANALYZE {table}")
            raw.commit()
            if dialect == "sqlite":
                # The load went through the WAL in one transaction (hundreds of MB); a
                # database that has run for a while has had it checkpointed, so the large
                # phase measures that, not readers searching a WAL that size.
                raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()
    print(f"added {added_users} users and {added_tokens} refresh tokens in "
          f"{time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
