"""Reading the mail outbox in HTTP tests: who got which message, and the links in it."""

from __future__ import annotations

import contextvars
import re
from urllib.parse import urlsplit

from flask.testing import FlaskClient
from sqlalchemy import select

from idp.extensions import db
from idp.models import OutboxMessage

LINK_RE = re.compile(r"https?://[^\s<>\"')]+")


def messages(to: str | None = None, kind: str | None = None) -> list[OutboxMessage]:
    db.session.expire_all()
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    if to is not None:
        query = query.where(OutboxMessage.to_address == to)
    if kind is not None:
        query = query.where(OutboxMessage.template == kind)
    return list(db.session.scalars(query))


def kinds() -> list[tuple[str, str]]:
    """(kind, recipient) of every queued message, oldest first."""
    return [(m.template, m.to_address) for m in messages()]


def links_in(message: OutboxMessage, path: str) -> list[str]:
    """Links of the text body whose path is ``path``, as site-relative URLs."""
    found = []
    for url in LINK_RE.findall(message.text_body):
        parts = urlsplit(url)
        if parts.path == path:
            found.append(parts.path + ("?" + parts.query if parts.query else ""))
    return found


def last_link(to: str, kind: str, path: str) -> str:
    sent = messages(to, kind)
    assert sent, f"no {kind} message to {to}: {kinds()}"
    links = links_in(sent[-1], path)
    assert links, f"no link to {path} in:\n{sent[-1].text_body}"
    return links[0]


def token_of(link: str) -> str:
    return link.split("token=", 1)[1]


class IsolatedClient(FlaskClient):
    """A test client whose requests never reuse the test's own app context.

    Flask pushes a new app context for a request only when none is active; with
    the ``ctx`` fixture active, requests would share the test's ``g`` (Flask-WTF
    caches the CSRF token there) and its database session, so two "browsers"
    in one test would share a CSRF token. Each request here runs in an empty
    ``contextvars`` context, like a request on a real server.
    """

    def open(self, *args, **kwargs):
        return contextvars.Context().run(super().open, *args, **kwargs)


def isolated_client(app) -> IsolatedClient:
    return IsolatedClient(app, app.response_class, use_cookies=True)
