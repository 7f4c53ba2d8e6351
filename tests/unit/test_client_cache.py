"""The per-process client cache: detached snapshots, a bounded staleness, no negative caching."""

import pytest

from idp.extensions import db
from idp.models import Client
from idp.oauth import server as server_module
from idp.oauth.server import authorization_server


@pytest.fixture
def cached(app, monkeypatch):
    monkeypatch.setitem(app.config, "IDP_CLIENT_CACHE_TTL", 5)
    clock = [1000.0]
    monkeypatch.setattr(server_module.time, "monotonic", lambda: clock[0])
    server = authorization_server()
    server.__dict__.pop("_client_cache", None)
    yield server, clock
    server.__dict__.pop("_client_cache", None)


def test_changes_reach_the_cache_after_the_ttl(ctx, factory, cached):
    server, clock = cached
    rp = factory.client()
    first = server.query_client(rp.client_id)
    db.session.execute(db.update(Client).where(Client.client_id == rp.client_id)
                       .values(grant_types=["client_credentials"]))
    db.session.commit()
    # a commit does not expire the detached snapshot, and the snapshot is reused
    assert server.query_client(rp.client_id) is first
    assert first.check_grant_type("authorization_code")
    clock[0] += 5.1
    fresh = server.query_client(rp.client_id)
    assert fresh is not first and not fresh.check_grant_type("authorization_code")


def test_unknown_clients_are_not_cached(ctx, factory, cached):
    server, _clock = cached
    assert server.query_client("not-yet-registered") is None
    factory.client(client_id="not-yet-registered")
    assert server.query_client("not-yet-registered") is not None
