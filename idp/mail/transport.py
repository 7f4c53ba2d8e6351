"""Transports: SMTP (plain, STARTTLS, implicit TLS, optional AUTH) and the console.

``IDP_SMTP_URL`` forms::

    smtp://host[:25]                       plain (for a local relay)
    smtp://host:587?starttls=1             STARTTLS, refused if the server does not offer it
    smtp+starttls://host[:587]             the same
    smtps://host[:465]                     implicit TLS
    smtp+starttls://user:pass@host:587     AUTH (percent-encode special characters)

Optional query parameters: ``timeout`` (seconds) and ``helo`` (the name sent in
EHLO). Certificates are verified against the system store, or against the PEM
file named by ``IDP_SMTP_CA_FILE`` instead. With no ``IDP_SMTP_URL`` the
console transport prints each message and records it with status ``console``.
"""

from __future__ import annotations

import smtplib
import ssl
import sys
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import TextIO
from urllib.parse import parse_qs, unquote, urlsplit

SCHEMES = {"smtp": ("plain", 25), "smtp+starttls": ("starttls", 587),
           "smtps": ("tls", 465), "smtp+ssl": ("tls", 465)}
TRUE = {"1", "true", "yes", "on"}


class DeliveryError(Exception):
    """A failed delivery. ``permanent``: the server refused for good, do not retry."""

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str  # plain | starttls | tls
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 20.0
    ca_file: str | None = None
    helo: str | None = None


def parse_smtp_url(url: str, *, timeout: float = 20.0, ca_file: str | None = None) -> SmtpSettings:
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError(f"IDP_SMTP_URL: unsupported scheme {scheme!r} "
                         f"(use {', '.join(sorted(SCHEMES))})")
    if not parts.hostname:
        raise ValueError("IDP_SMTP_URL: a host is required")
    security, default_port = SCHEMES[scheme]
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if scheme == "smtp" and query.get("starttls", "").lower() in TRUE:
        security = "starttls"
    if "timeout" in query:
        timeout = float(query["timeout"])
    return SmtpSettings(
        host=parts.hostname, port=parts.port or default_port, security=security,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        timeout=timeout, ca_file=ca_file, helo=query.get("helo") or None)


def describe(settings: SmtpSettings) -> str:
    """The URL without its password, for logs."""
    user = f"{settings.username}@" if settings.username else ""
    return f"{settings.security} {user}{settings.host}:{settings.port}"


def classify(exc: BaseException) -> DeliveryError:
    """Permanent only when the server refused this message for good (5xx on RCPT or DATA)."""
    if isinstance(exc, DeliveryError):
        return exc
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        detail = "; ".join(f"{code} {_text(msg)}" for code, msg in exc.recipients.values())
        return DeliveryError(f"recipient refused: {detail}",
                             permanent=bool(codes) and all(code >= 500 for code in codes))
    if isinstance(exc, smtplib.SMTPDataError):
        return DeliveryError(f"message refused: {exc.smtp_code} {_text(exc.smtp_error)}",
                             permanent=exc.smtp_code >= 500)
    if isinstance(exc, smtplib.SMTPResponseException):
        return DeliveryError(f"{type(exc).__name__}: {exc.smtp_code} {_text(exc.smtp_error)}")
    return DeliveryError(f"{type(exc).__name__}: {exc}")


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class SMTPConnection:
    def __init__(self, smtp: smtplib.SMTP):
        self.smtp = smtp

    def send(self, message: EmailMessage, sender: str, recipients: list[str]) -> None:
        try:
            # Explicit envelope: recipients never come from the headers.
            self.smtp.send_message(message, from_addr=sender, to_addrs=recipients)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a retry decision
            raise classify(exc) from exc

    def close(self) -> None:
        try:
            self.smtp.quit()
        except Exception:  # noqa: BLE001, S110 - the connection may already be gone
            try:
                self.smtp.close()
            except Exception:  # noqa: BLE001, S110
                pass


class SMTPTransport:
    status = "sent"

    def __init__(self, settings: SmtpSettings):
        self.settings = settings

    def __repr__(self) -> str:
        return f"<SMTPTransport {describe(self.settings)}>"

    def _tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.settings.ca_file)

    def connect(self) -> SMTPConnection:
        s = self.settings
        smtp: smtplib.SMTP | None = None
        try:
            if s.security == "tls":
                smtp = smtplib.SMTP_SSL(s.host, s.port, local_hostname=s.helo, timeout=s.timeout,
                                        context=self._tls_context())
            else:
                smtp = smtplib.SMTP(s.host, s.port, local_hostname=s.helo, timeout=s.timeout)
            smtp.ehlo()
            if s.security == "starttls":
                if not smtp.has_extn("starttls"):
                    # Never fall back to plain text when TLS was asked for.
                    raise DeliveryError("the SMTP server does not offer STARTTLS")
                smtp.starttls(context=self._tls_context())
                smtp.ehlo()
            if s.username:
                smtp.login(s.username, s.password or "")
            return SMTPConnection(smtp)
        except Exception as exc:
            if smtp is not None:
                SMTPConnection(smtp).close()
            error = classify(exc)
            error.permanent = False  # a connection problem is never the message's fault
            raise error from exc


class ConsoleConnection:
    def __init__(self, stream: TextIO | None):
        self.stream = stream

    def send(self, message: EmailMessage, sender: str, recipients: list[str]) -> None:
        stream = self.stream or sys.stdout
        body = message.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        lines = ["", "=" * 72, "IDP_SMTP_URL is not set: this email was not sent, only shown here.",
                 f"From: {message['From']}", f"To: {', '.join(recipients)}",
                 f"Subject: {message['Subject']}", "-" * 72, text.rstrip(), "=" * 72, ""]
        stream.write("\n".join(lines))
        stream.flush()

    def close(self) -> None:
        pass


class ConsoleTransport:
    """Development mode: print the text part; the row stays in the outbox as ``console``."""

    status = "console"

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream

    def __repr__(self) -> str:
        return "<ConsoleTransport>"

    def connect(self) -> ConsoleConnection:
        return ConsoleConnection(self.stream)


def transport_from_config(config) -> SMTPTransport | ConsoleTransport:
    url = config["IDP_SMTP_URL"]
    if not url:
        return ConsoleTransport()
    return SMTPTransport(parse_smtp_url(url, timeout=float(config["IDP_SMTP_TIMEOUT"]),
                                        ca_file=config["IDP_SMTP_CA_FILE"]))
