"""Fixtures for the protocol tests: a movable clock and the usual user and clients."""

from __future__ import annotations

import pytest

from tests.support import Clock, RegisteredClient


@pytest.fixture
def cheap_password_hashing(monkeypatch):
    """For protocol tests (opt in with ``pytestmark``): argon2 at production cost would be
    most of their run time. Per test, so no other test sees the cheap parameters."""
    from argon2 import PasswordHasher, Type

    from idp.factors import password_hash as password

    monkeypatch.setattr(password, "HASHER", PasswordHasher(
        time_cost=1, memory_cost=8, parallelism=1, type=Type.ID))


@pytest.fixture
def clock(monkeypatch) -> Clock:
    return Clock(monkeypatch)


@pytest.fixture
def alice(factory):
    return factory.user()


@pytest.fixture
def rp(factory, alice) -> RegisteredClient:
    """A confidential client of tenant acme, with alice a member of acme."""
    return factory.client(post_logout_redirect_uris=["https://app.example.com/bye"])


@pytest.fixture
def native(factory, alice) -> RegisteredClient:
    """A public (native) client with a loopback redirect URI."""
    return factory.client(redirect_uri="http://127.0.0.1/cb", public=True)
