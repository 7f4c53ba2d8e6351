"""No CR/LF ever reaches a header: not from an address, a subject, a name or the database."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from idp.extensions import db
from idp.mail import MailError, enqueue, enqueue_message
from idp.mail.headers import clean_text, validate_address
from idp.mail.worker import deliver_due
from idp.models import OutboxMessage

LINK = "https://localhost/reset?token=t0k3n"
EVIL = ["a@b.c\r\nBcc: evil@x", "a@b.c\nBcc: evil@x", "a@b.c\rBcc: evil@x",
        "a@b.c\u2028Bcc: evil@x", "a@b.c\x00", "Name <a@b.c>", "a@b.c, evil@x.test",
        "evil@x.test\r\n\r\nbody", "a b@c.de"]


def _header_names(raw: bytes) -> list[str]:
    head = raw.split(b"\r\n\r\n", 1)[0]
    return [line.split(b":", 1)[0].decode().lower() for line in head.split(b"\r\n")
            if line and not line[:1].isspace()]


@pytest.mark.parametrize("address", EVIL)
def test_a_recipient_with_line_breaks_is_refused(app, ctx, address):
    with pytest.raises(MailError):
        enqueue_message("password_reset", address, locale="en", link=LINK, expires_minutes=5)
    with pytest.raises(MailError):
        enqueue(address, "Subject", "Body")
    assert not db.session.new


def test_clean_text_and_validate_address():
    assert clean_text("Hi\r\nBcc: evil@x") == "Hi Bcc: evil@x"
    assert clean_text("a\u2028b\u2029c\x85d\x00e\tf") == "a b c d e f"
    assert validate_address(" Alice@Example.com ") == "Alice@Example.com"


def test_tenant_name_and_subject_with_line_breaks_stay_on_one_line(app, factory, smtp,
                                                                    outbox_rows):
    tenant = factory.tenant("evil", "Evil Corp\r\nBcc: evil@x.test\r\nX-Injected: yes")
    tenant.settings = {"support_email": "help@x.test\r\nBcc: evil@x.test"}  # ignored: invalid
    db.session.commit()
    enqueue_message("welcome", "victim@example.com", locale="en", tenant=tenant,
                    name="Eve\r\nBcc: evil@x.test", link=LINK, expires_hours=1)
    enqueue("victim@example.com", "Hello\r\nBcc: evil@x.test\nX-Injected: yes", "Body")
    db.session.commit()
    assert deliver_due().sent == 2
    for received in smtp.wait_for(2):
        assert received.rcpt_tos == ["victim@example.com"]
        names = _header_names(received.data)
        assert "bcc" not in names and "x-injected" not in names
        assert names.count("subject") == 1 and names.count("from") == 1
        message = received.message
        assert "\n" not in str(message["Subject"]) and "\r" not in str(message["Subject"])
        assert message["Reply-To"] is None  # the invalid support address was dropped
    welcome = next(r.message for r in smtp.received if "Welcome" in str(r["Subject"]))
    assert welcome["From"].addresses[0].display_name == \
        "Evil Corp Bcc: evil@x.test X-Injected: yes"
    assert welcome["From"].addresses[0].addr_spec == "no-reply@localhost"


def test_rows_edited_in_the_database_are_still_checked(app, ctx, smtp, outbox_rows):
    good = enqueue("ok@example.com", "Subject", "Body")
    bad = enqueue("ok2@example.com", "Subject", "Body")
    db.session.commit()
    # Someone writes straight into the table, bypassing enqueue().
    db.session.execute(update(OutboxMessage).where(OutboxMessage.id == good.id).values(
        subject="Hi\r\nBcc: evil@x.test",
        headers={"from_name": "X\r\nBcc: evil@x.test", "reply_to": None,
                 "message_id": "<a@b>\r\nBcc: evil@x.test"}))
    db.session.execute(update(OutboxMessage).where(OutboxMessage.id == bad.id).values(
        to_address="ok2@example.com\r\nBcc: evil@x.test"))
    db.session.commit()
    result = deliver_due()
    assert (result.sent, result.failed) == (1, 1)
    [received] = smtp.wait_for(1)
    assert received.rcpt_tos == ["ok@example.com"]
    assert "bcc" not in _header_names(received.data)
    rows = {r.id: r for r in outbox_rows()}
    assert rows[bad.id].status == "failed" and "cannot build" in rows[bad.id].last_error


def test_mail_from_setting_with_line_breaks_is_refused(app, ctx, monkeypatch):
    monkeypatch.setitem(app.config, "IDP_MAIL_FROM", "IdP <no-reply@x.test>\r\nBcc: evil@x.test")
    with pytest.raises(MailError):
        enqueue_message("password_reset", "a@example.com", locale="en", link=LINK,
                        expires_minutes=5)
