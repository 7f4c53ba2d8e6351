"""SMTP URL forms, STARTTLS, implicit TLS and AUTH against a real server."""

from __future__ import annotations

import pytest

from idp.extensions import db
from idp.mail import enqueue
from idp.mail.transport import (
    ConsoleTransport,
    SMTPTransport,
    parse_smtp_url,
    transport_from_config,
)
from idp.mail.worker import deliver_due
from tests.mail.smtp_server import SMTPServer


@pytest.mark.parametrize(("url", "expected"), [
    ("smtp://mail.example.com", ("mail.example.com", 25, "plain", None, None)),
    ("smtp://mail.example.com:2525?starttls=1", ("mail.example.com", 2525, "starttls", None, None)),
    ("smtp+starttls://u%40x:p%3Ass@mail.example.com",
     ("mail.example.com", 587, "starttls", "u@x", "p:ss")),
    ("smtps://user:secret@mail.example.com", ("mail.example.com", 465, "tls", "user", "secret")),
    ("smtps://mail.example.com:1465", ("mail.example.com", 1465, "tls", None, None)),
])
def test_smtp_url_forms(url, expected):
    settings = parse_smtp_url(url)
    assert (settings.host, settings.port, settings.security, settings.username,
            settings.password) == expected
    assert "secret" not in repr(settings) and "secret" not in repr(SMTPTransport(settings))


def test_bad_smtp_urls_are_refused():
    with pytest.raises(ValueError, match="scheme"):
        parse_smtp_url("http://mail.example.com")
    with pytest.raises(ValueError, match="host"):
        parse_smtp_url("smtp://")


def test_transport_from_config():
    assert isinstance(transport_from_config({"IDP_SMTP_URL": None}), ConsoleTransport)
    transport = transport_from_config({"IDP_SMTP_URL": "smtp://h:1?timeout=3",
                                       "IDP_SMTP_TIMEOUT": 20.0, "IDP_SMTP_CA_FILE": "/ca.pem"})
    assert transport.settings.timeout == 3 and transport.settings.ca_file == "/ca.pem"


def _send_one(app, to="tls@example.com"):
    enqueue(to, "Over TLS", "Body")
    db.session.commit()
    return deliver_due()


def test_starttls_with_auth_login(app, ctx, tls_material, monkeypatch, outbox_rows):
    context, ca_file = tls_material
    with SMTPServer(tls=context, starttls=True, users={"mailer": "s3cret:pw"}) as smtp:
        monkeypatch.setitem(app.config, "IDP_SMTP_URL",
                            f"smtp+starttls://mailer:s3cret%3Apw@127.0.0.1:{smtp.port}")
        monkeypatch.setitem(app.config, "IDP_SMTP_CA_FILE", str(ca_file))
        assert _send_one(app).sent == 1
        [received] = smtp.wait_for(1)
        assert received.tls and received.auth_login == "mailer"
        assert received["Subject"] == "Over TLS"
        assert [r.status for r in outbox_rows()] == ["sent"]


def test_starttls_query_form_and_wrong_password(app, ctx, tls_material, monkeypatch,
                                               outbox_rows):
    context, ca_file = tls_material
    with SMTPServer(tls=context, starttls=True, users={"mailer": "right"}) as smtp:
        monkeypatch.setitem(app.config, "IDP_SMTP_URL",
                            f"smtp://mailer:wrong@127.0.0.1:{smtp.port}?starttls=1")
        monkeypatch.setitem(app.config, "IDP_SMTP_CA_FILE", str(ca_file))
        result = _send_one(app)
        assert result.sent == 0 and result.retried == 1  # fixable config: retried, kept
        [row] = outbox_rows()
        assert row.status == "queued" and "535" in row.last_error
        assert "wrong" not in row.last_error
        assert smtp.received == []


def test_untrusted_certificate_is_refused(app, ctx, tls_material, monkeypatch, outbox_rows):
    context, _ca_file = tls_material
    with SMTPServer(tls=context, starttls=True) as smtp:
        monkeypatch.setitem(app.config, "IDP_SMTP_URL", f"smtp+starttls://127.0.0.1:{smtp.port}")
        monkeypatch.setitem(app.config, "IDP_SMTP_CA_FILE", None)  # system store only
        assert _send_one(app).retried == 1
        [row] = outbox_rows()
        assert row.status == "queued" and "CERTIFICATE_VERIFY_FAILED" in row.last_error
        assert smtp.received == []


def test_starttls_never_falls_back_to_plain_text(app, ctx, monkeypatch, outbox_rows):
    with SMTPServer() as smtp:  # offers no STARTTLS
        monkeypatch.setitem(app.config, "IDP_SMTP_URL", f"smtp+starttls://127.0.0.1:{smtp.port}")
        assert _send_one(app).retried == 1
        [row] = outbox_rows()
        assert "STARTTLS" in row.last_error
        assert smtp.received == []


# aiosmtpd cannot tell implicit TLS from plain text, hence its warning about AUTH.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_implicit_tls(app, ctx, tls_material, monkeypatch, outbox_rows):
    context, ca_file = tls_material
    with SMTPServer(tls=context, implicit_tls=True, users={"mailer": "pw"}) as smtp:
        monkeypatch.setitem(app.config, "IDP_SMTP_URL", f"smtps://mailer:pw@127.0.0.1:{smtp.port}")
        monkeypatch.setitem(app.config, "IDP_SMTP_CA_FILE", str(ca_file))
        assert _send_one(app).sent == 1
        [received] = smtp.wait_for(1)
        assert received.tls and received.auth_login == "mailer"
