"""The `idp` command-line contract (DESIGN.md): init, tenant, user and client creation."""

import json

import pytest

from idp.extensions import db
from idp.models import Client, Membership, Tenant, User


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def test_init_demo_is_idempotent(app, ctx, runner):
    first = runner.invoke(args=["idp", "init", "--demo"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(args=["idp", "init", "--demo"])
    assert second.exit_code == 0, second.output
    assert db.session.query(Tenant).filter_by(slug="acme").count() == 1
    assert db.session.query(User).filter_by(email="demo@acme.test").count() == 1
    client = db.session.query(Client).filter_by(client_id="acme-portal").one()
    assert client.secret_hash and len(client.secret_hash) == 64
    assert "acme-portal" in second.output


def _demo_client_file(app):
    from pathlib import Path

    return Path(app.config["INSTANCE_DIR"]) / "demo_client.json"


def test_init_demo_registers_the_demo_portal(app, ctx, runner, monkeypatch):
    monkeypatch.setitem(app.config, "IDP_DEMO_PORT", 8181)
    _demo_client_file(app).unlink(missing_ok=True)
    result = runner.invoke(args=["idp", "init", "--demo"])
    assert result.exit_code == 0, result.output
    client = db.session.query(Client).filter_by(client_id="acme-portal").one()
    assert client.redirect_uris == ["http://localhost:8181/callback",
                                    "http://127.0.0.1:8181/callback"]
    assert client.post_logout_redirect_uris == ["http://localhost:8181/"]
    assert client.backchannel_logout_uri == "http://localhost:8181/backchannel-logout"
    assert {"authorization_code", "refresh_token"} <= set(client.grant_types)
    assert {"openid", "email", "profile", "offline_access"} <= set(client.scope.split())
    creds = json.loads(_demo_client_file(app).read_text())
    assert creds["client_id"] == "acme-portal" and client.check_client_secret(creds["client_secret"])


def test_init_demo_updates_an_older_demo_client(app, ctx, runner, monkeypatch):
    assert runner.invoke(args=["idp", "init", "--demo"]).exit_code == 0
    first = json.loads(_demo_client_file(app).read_text())
    client = db.session.query(Client).filter_by(client_id="acme-portal").one()
    # What an earlier `idp init --demo` registered: no back-channel URI, fewer scopes.
    client.backchannel_logout_uri = None
    client.post_logout_redirect_uris = []
    client.scope = "openid email"
    db.session.commit()

    monkeypatch.setitem(app.config, "IDP_DEMO_PORT", 8282)
    result = runner.invoke(args=["idp", "init", "--demo"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    client = db.session.query(Client).filter_by(client_id="acme-portal").one()
    assert client.backchannel_logout_uri == "http://localhost:8282/backchannel-logout"
    assert client.post_logout_redirect_uris == ["http://localhost:8282/"]
    assert client.redirect_uris[0] == "http://localhost:8282/callback"
    assert {"openid", "email", "profile", "offline_access"} <= set(client.scope.split())
    assert json.loads(_demo_client_file(app).read_text()) == first  # the secret is kept
    assert first["client_secret"] in result.output

    # The file lost: a new secret, written where the portal reads it.
    _demo_client_file(app).unlink()
    assert runner.invoke(args=["idp", "init", "--demo"]).exit_code == 0
    db.session.expire_all()
    creds = json.loads(_demo_client_file(app).read_text())
    assert creds["client_secret"] != first["client_secret"]
    client = db.session.query(Client).filter_by(client_id="acme-portal").one()
    assert client.check_client_secret(creds["client_secret"])
    assert not client.check_client_secret(first["client_secret"])


def test_tenant_user_and_client_creation(app, ctx, runner):
    result = runner.invoke(args=["idp", "tenant", "create", "globex", "--name", "Globex",
                                 "--no-self-registration"])
    assert result.exit_code == 0, result.output
    tenant = db.session.query(Tenant).filter_by(slug="globex").one()
    assert tenant.self_registration is False

    result = runner.invoke(args=["idp", "user", "create", "--tenant", "globex", "--email",
                                 "Bob@Globex.test", "--password", "Str0ng-Pass!", "--role",
                                 "admin"])
    assert result.exit_code == 0, result.output
    user = db.session.query(User).filter_by(email="bob@globex.test").one()
    assert db.session.query(Membership).filter_by(user_id=user.id).one().role == "admin"
    assert user.password_hash.startswith("$argon2id$")

    result = runner.invoke(args=["idp", "client", "create", "--name", "Portal", "--redirect-uri",
                                 "https://portal.globex.test/cb", "--tenant", "globex",
                                 "--backchannel-logout-uri", "https://portal.globex.test/bc",
                                 "--json"])
    assert result.exit_code == 0, result.output
    creds = json.loads(result.output.strip().splitlines()[-1])
    assert set(creds) == {"client_id", "client_secret"}
    assert len(creds["client_secret"]) >= 43  # 256 bits, url-safe base64
    client = db.session.query(Client).filter_by(client_id=creds["client_id"]).one()
    assert client.secret_hash != creds["client_secret"]  # stored as a digest
    assert client.check_client_secret(creds["client_secret"])
    assert not client.check_client_secret(creds["client_secret"] + "x")


def test_public_client_has_no_secret(app, ctx, runner):
    result = runner.invoke(args=["idp", "client", "create", "--name", "App", "--public",
                                 "--redirect-uri", "com.example.app:/cb", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["client_secret"] is None


@pytest.mark.parametrize("args, message", [
    (["tenant", "create", "Bad Slug", "--name", "x"], "slug"),
    (["user", "create", "--tenant", "nope", "--email", "a@b.test", "--password", "x"], "no tenant"),
    (["client", "create", "--name", "x", "--redirect-uri", "javascript:alert(1)", "--json"],
     "redirect"),
    (["client", "create", "--name", "x", "--redirect-uri", "http://app.example.com/cb"], "http"),
    (["client", "create", "--name", "x", "--redirect-uri", "https://a.test/cb",
      "--grant-type", "password"], "unsupported grant"),
])
def test_bad_arguments_fail_cleanly(app, ctx, runner, args, message):
    result = runner.invoke(args=["idp", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_purge_deletes_only_expired_sessions_and_counters(app, ctx, runner):
    import time

    from idp.models import BrowserSession, RateLimitCounter, RevokedJti

    now = int(time.time())
    db.session.add_all([
        RevokedJti(jti="c.expired", expires_at=now - 1),
        RevokedJti(jti="c.live", expires_at=now + 60),
        BrowserSession(id_hash="a" * 64, sid="old", data={}, created_at=now - 99,
                       expires_at=now - 1),
        BrowserSession(id_hash="b" * 64, sid="live", data={}, created_at=now,
                       expires_at=now + 3600),
        RateLimitCounter(key="ip:1", window_start=now - 600, count=3, expires_at=now - 300),
        RateLimitCounter(key="ip:1", window_start=now, count=1, expires_at=now + 300),
    ])
    db.session.commit()
    result = runner.invoke(args=["idp", "purge"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"sessions": 1, "rate_limit_windows": 1,
                                         "revoked_jtis": 1}
    assert [r.jti for r in db.session.query(RevokedJti)] == ["c.live"]
    assert [s.sid for s in db.session.query(BrowserSession)] == ["live"]
    assert [c.window_start for c in db.session.query(RateLimitCounter)] == [now]


# ------------------------------------------------------------- before `idp init`

NOT_INITIALISED = "the database is not initialised: run `idp init`"
COMMANDS_NEEDING_THE_SCHEMA = [
    ["purge"], ["serve"], ["keys", "rotate"], ["tenant", "create", "globex", "--name", "G"],
    ["user", "create", "--tenant", "acme", "--email", "a@b.test", "--password", "x"],
    ["client", "create", "--name", "x", "--redirect-uri", "https://a.test/cb", "--json"],
    ["mail", "list"], ["mail", "purge"],
]


def _leaf_commands(group, prefix=()):
    import click

    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _leaf_commands(command, (*prefix, name))
        else:
            yield (*prefix, name), command


@pytest.mark.parametrize("args", COMMANDS_NEEDING_THE_SCHEMA, ids=" ".join)
def test_commands_before_init_say_so_without_a_traceback(uninitialised_app, monkeypatch, args):
    import os

    def no_exec(*_args):
        raise AssertionError("`idp serve` started gunicorn on an uninitialised database")

    monkeypatch.setattr(os, "execv", no_exec)
    app = uninitialised_app()
    result = app.test_cli_runner().invoke(args=["idp", *args])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == f"error: {NOT_INITIALISED}"
    assert "Traceback" not in result.output and "no such table" not in result.output


def test_every_command_but_init_checks_the_schema(app):
    from idp.cli import idp_group

    leaves = dict(_leaf_commands(idp_group))
    assert ("init",) in leaves and ("mail", "worker") in leaves
    unchecked = [" ".join(name) for name, command in leaves.items()
                 if not getattr(command.callback, "idp_schema_checked", False)]
    assert unchecked == ["init"]


def test_help_and_init_work_before_init(uninitialised_app):
    app = uninitialised_app()
    runner = app.test_cli_runner()
    for args in (["idp", "--help"], ["idp", "tenant", "create", "--help"], ["idp", "purge", "--help"]):
        result = runner.invoke(args=args)
        assert result.exit_code == 0 and "Usage:" in result.output, result.output
    result = runner.invoke(args=["idp", "init"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["idp", "purge"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"sessions": 0, "rate_limit_windows": 0,
                                         "revoked_jtis": 0}


def test_commands_refuse_a_schema_behind_the_latest_migration(uninitialised_app):
    app = uninitialised_app(revision="0001")
    result = app.test_cli_runner().invoke(args=["idp", "purge"])
    assert result.exit_code == 2
    assert NOT_INITIALISED in result.stderr and "revision 0001" in result.stderr
    assert "Traceback" not in result.output


def test_the_console_script_before_init(tmp_path):
    """`idp` itself (the entry point), in a fresh process on an empty database."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "IDP_INSTANCE_DIR": str(tmp_path),
           "IDP_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}",
           "IDP_KEYS_DIR": str(tmp_path / "keys")}
    done = subprocess.run([sys.executable, "-c", "from idp.cli import main; main()",
                           "tenant", "create", "globex", "--name", "Globex"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {NOT_INITIALISED}"
    assert done.stdout == ""


def test_tenant_mfa_policy_on_create_and_update(app, ctx, runner):
    from idp.factors.assurance import mfa_policy

    created = runner.invoke(args=["idp", "tenant", "create", "beta", "--name", "Beta"])
    assert created.exit_code == 0, created.output
    assert json.loads(created.output)["mfa"] == "optional"  # the default for a new tenant
    strict = runner.invoke(args=["idp", "tenant", "create", "gamma", "--name", "Gamma",
                                 "--mfa", "required"])
    assert json.loads(strict.output)["mfa"] == "required"
    updated = runner.invoke(args=["idp", "tenant", "update", "beta",
                                  "--mfa", "phishing-resistant"])
    assert updated.exit_code == 0, updated.output
    db.session.expire_all()
    assert mfa_policy(db.session.query(Tenant).filter_by(slug="beta").one()) \
        == "phishing-resistant"
    bad = runner.invoke(args=["idp", "tenant", "update", "beta", "--mfa", "sometimes"])
    assert bad.exit_code != 0 and "Traceback" not in bad.output
    missing = runner.invoke(args=["idp", "tenant", "update", "nope", "--mfa", "required"])
    assert missing.exit_code != 0 and "no tenant" in missing.output


def test_the_demo_tenant_asks_the_emailed_code(app, ctx, runner):
    from idp.factors.assurance import mfa_policy

    assert runner.invoke(args=["idp", "init", "--demo"]).exit_code == 0
    assert mfa_policy(db.session.query(Tenant).filter_by(slug="acme").one()) == "required"


# ------------------------------------------------------------- idp serve


@pytest.mark.parametrize("server, expected", [
    (None, ["-m", "granian", "--interface", "wsgi", "--workers", "3", "--blocking-threads", "1",
            "--host", "127.0.0.1", "--port", "5123", "--workers-kill-timeout", "10",
            "--access-log", "wsgi:app"]),
    ("granian --threads 4", ["-m", "granian", "--interface", "wsgi", "--workers", "3",
                             "--blocking-threads", "4", "--host", "127.0.0.1", "--port", "5123",
                             "--workers-kill-timeout", "10", "--access-log", "wsgi:app"]),
    ("gunicorn", ["-m", "gunicorn", "--workers", "3", "--bind", "127.0.0.1:5123",
                  "--graceful-timeout", "10", "--access-logfile", "-", "wsgi:app"]),
])
def test_serve_execs_the_server_and_marks_its_workers(app, monkeypatch, server, expected):
    import os
    import sys

    from idp.mail.worker import SERVED_ENV

    calls = []
    monkeypatch.setattr(os, "execv", lambda path, args: calls.append((path, args)))
    monkeypatch.setattr(os, "chdir", lambda path: None)
    monkeypatch.setenv(SERVED_ENV, "0")  # restored after the test
    args = ["idp", "serve", "--workers", "3", "--host", "127.0.0.1", "--port", "5123"]
    result = app.test_cli_runner().invoke(args=args + (["--server", *server.split()] if server
                                                       else []))
    assert result.exit_code == 0, result.output
    assert calls == [(sys.executable, [sys.executable, *expected])]
    # The workers of the server it starts run the in-process mail worker from the start.
    assert os.environ[SERVED_ENV] == "1"
