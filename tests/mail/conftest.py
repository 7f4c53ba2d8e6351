"""Mail fixtures: a real SMTP server on 127.0.0.1, TLS material, the app pointed at it."""

from __future__ import annotations

import pytest

from tests.mail.smtp_server import SMTPServer, make_tls


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory):
    """(server SSLContext, CA file) for STARTTLS / smtps tests."""
    return make_tls(tmp_path_factory.mktemp("smtp-tls"))


@pytest.fixture
def smtp(app, monkeypatch):
    """A plain SMTP server, with IDP_SMTP_URL pointing at it for this test."""
    server = SMTPServer().start()
    monkeypatch.setitem(app.config, "IDP_SMTP_URL", server.url)
    yield server
    server.stop()


@pytest.fixture
def outbox_rows(app):
    """All outbox rows, freshly read."""
    from sqlalchemy import select

    from idp.extensions import db
    from idp.models import OutboxMessage

    def read():
        db.session.expire_all()
        return db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()

    return read
