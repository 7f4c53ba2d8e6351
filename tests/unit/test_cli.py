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

    from idp.models import BrowserSession, RateLimitCounter

    now = int(time.time())
    db.session.add_all([
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
    assert json.loads(result.output) == {"sessions": 1, "rate_limit_windows": 1}
    assert [s.sid for s in db.session.query(BrowserSession)] == ["live"]
    assert [c.window_start for c in db.session.query(RateLimitCounter)] == [now]
