"""Shared fixtures: one app per test session, a clean database per test, a live server.

The database is SQLite in a temporary directory unless IDP_TEST_DATABASE_URL
points at PostgreSQL; the schema always comes from the Alembic migrations.
"""

from __future__ import annotations

import os
import socket
import threading

import pytest
from sqlalchemy import text
from werkzeug.serving import make_server

from tests.required import pytest_runtest_makereport  # noqa: F401 - the CI skip rule
from tests.support import Driver, Factory, IsolatedClient


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def server_port() -> int:
    return _free_port()


@pytest.fixture(scope="session")
def app(tmp_path_factory, server_port):
    instance = tmp_path_factory.mktemp("instance")
    database_url = os.environ.get("IDP_TEST_DATABASE_URL") or f"sqlite:///{instance / 'test.db'}"
    os.environ["IDP_INSTANCE_DIR"] = str(instance)
    from idp import create_app
    from idp.extensions import db
    from idp.oauth.keys import ensure_keys

    app = create_app({
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "IDP_ISSUER": f"http://localhost:{server_port}",
        "IDP_KEYS_DIR": str(instance / "keys"),
        "IDP_BACKCHANNEL_TIMEOUT": 2.0,
        # Tests edit clients mid-test; the cache has its own test (tests/unit/test_client_cache.py).
        "IDP_CLIENT_CACHE_TTL": 0,
        "SERVER_NAME": None,
    })
    ensure_keys(app.config["IDP_KEYS_DIR"])
    app.test_client_class = IsolatedClient
    with app.app_context():
        if database_url.startswith("postgresql"):
            # Start from nothing: leftovers of an earlier run must not hide a migration bug.
            db.session.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            db.session.commit()
        from flask_migrate import upgrade

        upgrade(directory=app.extensions["migrate"].directory)
    yield app


@pytest.fixture
def uninitialised_app(tmp_path, monkeypatch):
    """uninitialised_app(revision=None): an app on a new SQLite file before `idp init`.

    With ``revision`` the schema is migrated up to that revision only (behind head);
    there are no signing keys either way."""
    monkeypatch.setenv("IDP_INSTANCE_DIR", str(tmp_path))
    from idp import create_app

    def make(revision: str | None = None):
        created = create_app({
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'empty.db'}",
            "IDP_KEYS_DIR": str(tmp_path / "keys"),
            "IDP_ENABLE_MAIL_WORKER": False,
            "SERVER_NAME": None,
        })
        if revision is not None:
            from flask_migrate import upgrade

            with created.app_context():
                upgrade(directory=created.extensions["migrate"].directory, revision=revision)
        return created

    return make


def _wipe(app) -> None:
    from idp.extensions import db

    with app.app_context():
        tables = [t.name for t in db.metadata.sorted_tables]
        for name in reversed(tables):
            db.session.execute(text(f"DELETE FROM {name}"))
        if db.engine.dialect.name == "postgresql":
            # What TRUNCATE ... RESTART IDENTITY did, at a tenth of its cost per test.
            db.session.execute(text(
                "SELECT setval(c.oid::regclass, 1, false) FROM pg_class c JOIN pg_namespace n"
                " ON n.oid = c.relnamespace WHERE c.relkind = 'S'"
                " AND n.nspname = current_schema()"))
        db.session.commit()
        db.session.remove()


@pytest.fixture(autouse=True)
def _clean_database(request):
    yield
    if "app" in request.fixturenames:
        _wipe(request.getfixturevalue("app"))


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def factory(app, ctx) -> Factory:
    return Factory(app)


@pytest.fixture
def required(factory):
    """Tenant acme with the MFA policy `required` (a second factor after the password)."""
    from idp.extensions import db
    from idp.factors.assurance import REQUIRED, set_mfa_policy

    tenant = factory.tenant()
    set_mfa_policy(tenant, REQUIRED)
    db.session.commit()
    return tenant


@pytest.fixture
def driver(app, client, factory) -> Driver:
    return Driver(app, client)


class _LiveServer:
    def __init__(self, app, port: int):
        self.url = f"http://localhost:{port}"
        self._server = make_server("127.0.0.1", port, app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()


@pytest.fixture(scope="session")
def smtp_server():
    """A real SMTP server on 127.0.0.1 (aiosmtpd) for the whole session (tests/smtp.py)."""
    from tests.smtp import SmtpSink

    sink = SmtpSink()
    yield sink
    sink.stop()


@pytest.fixture
def smtp(smtp_server):
    """The SMTP server with an empty mailbox; ``smtp.wait_for(app, to)`` delivers and reads."""
    smtp_server.clear()
    yield smtp_server
    smtp_server.clear()


@pytest.fixture(scope="session")
def live_server(app, server_port):
    server = _LiveServer(app, server_port)
    yield server
    server.stop()
