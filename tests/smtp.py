"""The real mail, for journeys: an SMTP server on 127.0.0.1 and worker passes that deliver to it.

Browser tests read the mail a person would read: the outbox is delivered by
the real worker code (``idp.mail.worker.deliver_due``) over SMTP to the mail
tests' aiosmtpd server (tests/mail/smtp_server.py), and the test takes the
link from the received message. tests/conftest.py exposes it as the ``smtp``
fixture (tests/mail has its own ``smtp`` fixture for the transport tests).
"""

from __future__ import annotations

import re
import time
from email.message import EmailMessage

from tests.mail.smtp_server import SMTPServer

URL_RE = re.compile(r"https?://[^\s<>\"')]+")


class SmtpSink:
    """Collects every message it receives; ``deliver`` runs one worker pass against it."""

    def __init__(self):
        self.server = SMTPServer().start()
        self._seen = 0  # messages before this index were cleared

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    def stop(self) -> None:
        self.server.stop()

    def clear(self) -> None:
        self._seen = len(self.server.received)

    @property
    def messages(self) -> list[EmailMessage]:
        return [item.message for item in self.server.received[self._seen:]]

    def deliver(self, app):
        """One pass of the real delivery worker, over SMTP to this server."""
        from idp.mail.transport import SMTPTransport, parse_smtp_url
        from idp.mail.worker import deliver_due

        with app.app_context():
            return deliver_due(transport=SMTPTransport(parse_smtp_url(self.url, timeout=5)))

    def received(self, to: str | None = None) -> list[EmailMessage]:
        return [m for m in self.messages if to is None or to.lower() in str(m["To"]).lower()]

    def wait_for(self, app, to: str, count: int = 1, timeout: float = 10.0) -> EmailMessage:
        """Deliver the outbox until `to` has received `count` messages; the newest one."""
        deadline = time.monotonic() + timeout
        while True:
            self.deliver(app)
            found = self.received(to)
            if len(found) >= count:
                return found[-1]
            if time.monotonic() > deadline:
                raise AssertionError(f"no message #{count} for {to} within {timeout}s "
                                     f"(got {len(found)})")
            time.sleep(0.1)


def text_of(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def html_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("html",))
    return body.get_content() if body is not None else ""


def links_in(message: EmailMessage) -> list[str]:
    return URL_RE.findall(text_of(message))


def link_to(message: EmailMessage, path: str) -> str:
    """The first link in the text part whose path starts with `path` (e.g. "/invitation")."""
    for url in links_in(message):
        if re.match(r"https?://[^/]+" + re.escape(path), url):
            return url
    raise AssertionError(f"no {path} link in:\n{text_of(message)}")
