"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives, for tests.

Other test packages can use it too::

    from tests.mail.smtp_server import SMTPServer
    with SMTPServer() as smtp:
        app.config["IDP_SMTP_URL"] = smtp.url
        ...
        smtp.wait_for(1)[0]["Subject"]
"""

from __future__ import annotations

import datetime
import email
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    auth_login: str | None = None
    tls: bool = False
    message: EmailMessage = field(init=False)

    def __post_init__(self):
        self.message = email.message_from_bytes(self.data, policy=policy.default)

    def __getitem__(self, header: str):
        return self.message[header]


class _Handler:
    def __init__(self, refuse: set[str]):
        self.received: list[Received] = []
        self.refuse = refuse
        self.lock = threading.Lock()
        self.event = threading.Condition(self.lock)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        login = session.auth_data.login.decode() if isinstance(session.auth_data,
                                                               LoginPassword) else None
        item = Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content
                        or envelope.content, auth_login=login,
                        tls=session.ssl is not None
                        or server.transport.get_extra_info("ssl_object") is not None)
        with self.event:
            self.received.append(item)
            self.event.notify_all()
        return "250 OK"


class SMTPServer:
    """``SMTPServer(port=None, tls=None, starttls=False, implicit_tls=False, users=None)``.

    ``tls`` is a server ``ssl.SSLContext`` (see ``make_tls``); ``users`` maps
    logins to passwords and turns AUTH on (offered only after TLS, as in real life).
    """

    def __init__(self, port: int | None = None, *, tls: ssl.SSLContext | None = None,
                 starttls: bool = False, implicit_tls: bool = False,
                 users: dict[str, str] | None = None, refuse: set[str] | None = None):
        self.port = port or free_port()
        self.handler = _Handler(refuse or set())
        self.users = users
        kwargs: dict = {}
        if tls is not None and implicit_tls:
            kwargs["ssl_context"] = tls
        elif tls is not None:
            kwargs.update(tls_context=tls, require_starttls=starttls)
        if users is not None:
            # aiosmtpd only knows about STARTTLS; with implicit TLS the link is already secure.
            kwargs.update(authenticator=self._authenticate, auth_required=True,
                          auth_require_tls=not implicit_tls)
        self.scheme = "smtps" if implicit_tls else ("smtp+starttls" if starttls else "smtp")
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port,
                                     ready_timeout=10, **kwargs)

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and self.users is not None
              and self.users.get(auth_data.login.decode()) == auth_data.password.decode())
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def received(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self.handler.event:
            while len(self.handler.received) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"expected {count} messages, got "
                                         f"{len(self.handler.received)}")
                self.handler.event.wait(remaining)
            return list(self.handler.received)

    def start(self) -> SMTPServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def __enter__(self) -> SMTPServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def make_tls(directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A throw-away CA and a certificate for 127.0.0.1/localhost signed by it.

    Returns the server context and the CA file a client should trust (IDP_SMTP_CA_FILE).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp test CA")])
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                            key_encipherment=False, data_encipherment=False,
                                            key_agreement=False, key_cert_sign=True,
                                            crl_sign=True, encipher_only=False,
                                            decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                              critical=False)
               .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file = directory / "server.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file = directory / "server.key"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context, ca_file
