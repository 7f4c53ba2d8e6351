"""Profile the password sign-in POST in-process (no HTTP server), as bench/run.py sends it.

One GET /login gives a cookie and its CSRF token; then the same form (the bench
account's address and password) is POSTed again and again with that cookie, as
bench/lua/post.lua does: each POST signs in afresh (303 onwards). Prints the CPU
time per POST, the argon2id verification alone on the account's own hash, the
statements and commits per POST, and a cProfile of the POSTs by function.

Against a throwaway instance it prepares itself (SQLite, or the PostgreSQL
database given, which is wiped):

    PYTHONPATH=$PWD .venv/bin/python bench/profile_login.py [--database-url URL]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

EMAIL, PASSWORD = "loadtest@bench.example", "Pw-profile-login-1"


def _prepare(instance: Path, url: str | None) -> None:
    """A fresh instance with the bench's tenant and account (bench/run.py prepare_instance)."""
    os.environ.update({
        "IDP_INSTANCE_DIR": str(instance), "IDP_KEYS_DIR": str(instance / "keys"),
        "IDP_ISSUER": "http://localhost:5000",
        "IDP_DATABASE_URL": url or f"sqlite:///{instance / 'idp.sqlite3'}",
        "IDP_LOGIN_IP_LIMIT": "1000000000",
    })
    if url:
        import sqlalchemy

        engine = sqlalchemy.create_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
        engine.dispose()
    cli = [sys.executable, "-c", "from idp.cli import main; main()"]
    for args in (["init"], ["tenant", "create", "bench", "--name", "Bench"],
                 ["user", "create", "--tenant", "bench", "--email", EMAIL,
                  "--password", PASSWORD]):
        subprocess.run([*cli, *args], check=True, capture_output=True, env=os.environ,
                       cwd=ROOT)


class Statements:
    """Counts the statements and commits the app sends (SQLAlchemy engine events)."""

    def __init__(self, *engines):
        from sqlalchemy import event

        self.statements = self.commits = 0
        for engine in engines:
            event.listen(engine, "before_cursor_execute", self._statement)
            event.listen(engine, "commit", self._commit)
        self.log: list[str] | None = None

    def _statement(self, conn, cursor, statement, parameters, context, executemany):
        self.statements += 1
        if self.log is not None:
            self.log.append(" ".join(statement.split())[:110])

    def _commit(self, conn):
        self.commits += 1
        if self.log is not None:
            self.log.append("COMMIT")


class _TimedHasher:
    """The hasher, with the CPU time of the verifications made through it."""

    def __init__(self, hasher):
        self.hasher, self.cpu = hasher, 0.0

    def verify(self, stored: str, password: str) -> bool:
        started = time.process_time()
        try:
            return self.hasher.verify(stored, password)
        finally:
            self.cpu += time.process_time() - started

    def __getattr__(self, name: str):
        return getattr(self.hasher, name)


def setup(url: str | None):
    """A prepared instance, its app, and a function that POSTs the bench's form once."""
    import logging
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    instance = Path(tempfile.mkdtemp(prefix="idp-profile-login-"))
    _prepare(instance, url)

    from loadgen import CSRF_RE
    from profile_token import InProcessClient

    from idp import create_app
    from idp.extensions import db
    from idp.models import User

    app = create_app()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    client = InProcessClient(app, app.config["IDP_ISSUER"])
    status, _, page = client.call("GET", "/login")
    cookie = client.cookie
    body = urlencode({"email": EMAIL, "password": PASSWORD,
                      "csrf_token": CSRF_RE.search(page.decode()).group(1)}).encode()

    def post() -> None:
        client.cookie = cookie  # the bench sends the same pre-login cookie every time
        status, location, data = client.call("POST", "/login", body)
        if status != 303 or location.startswith("/login"):
            raise SystemExit(f"POST /login answered {status} {location!r} {data[:300]!r}")

    with app.app_context():
        stored = db.session.query(User.password_hash).filter_by(email=EMAIL).scalar()
        engine = db.engine
    return app, post, stored, engine


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="a PostgreSQL database to wipe and use")
    parser.add_argument("--posts", type=int, default=150, help="timed POSTs")
    parser.add_argument("--profile", type=int, default=60, help="profiled POSTs")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()

    app, post, stored, engine = setup(args.database_url)
    from idp.factors import password_hash
    from idp.factors.password_hash import HASHER

    for _ in range(20):
        post()
    # PostgreSQL: the rate-limit counters' own autocommit connections (services/throttle.py).
    counter_engine = app.extensions.get("idp_counter_engine")
    counted = Statements(engine, *([counter_engine] if counter_engine is not None else []))
    counted.log = []
    post()
    log, counted.log = counted.log, None
    counted.statements = counted.commits = 0
    timed = _TimedHasher(HASHER)
    password_hash.HASHER = timed
    cpu_post = wall_post = cpu_argon = 0.0
    for _ in range(args.posts):  # interleaved, so a busy neighbour weighs on both alike
        started, wall = time.process_time(), time.perf_counter()
        post()
        cpu_post += time.process_time() - started
        wall_post += time.perf_counter() - wall
        started = time.process_time()
        HASHER.verify(stored, PASSWORD)
        cpu_argon += time.process_time() - started
    password_hash.HASHER = HASHER
    cpu_post, wall_post, cpu_argon = (v / args.posts for v in (cpu_post, wall_post, cpu_argon))
    cpu_inside = timed.cpu / args.posts
    statements, commits = counted.statements / args.posts, counted.commits / args.posts
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(args.profile):
        post()
    profiler.disable()

    print(f"database: {engine.dialect.name}")
    overhead = cpu_post - cpu_inside
    print(f"POST /login: {cpu_post * 1e3:.2f} ms CPU per POST, of which argon2id "
          f"{cpu_inside * 1e3:.2f} ms and the rest {overhead * 1e3:.2f} ms; argon2id verify "
          f"alone {cpu_argon * 1e3:.2f} ms; ratio argon2/(argon2 + rest) "
          f"{cpu_argon / (cpu_argon + overhead):.3f}")
    print(f"wall time per POST {wall_post * 1e3:.2f} ms (one thread: what a worker serves)")
    print(f"statements per POST {statements:.1f}, commits per POST {commits:.1f} (an "
          "autocommit statement commits too, without a COMMIT)")
    print("one POST's statements:")
    for line in log:
        print("   ", line)
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(args.top)
    if os.environ.get("PROFILE_CALLEES"):
        stats.sort_stats("cumulative").print_callees(os.environ["PROFILE_CALLEES"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
