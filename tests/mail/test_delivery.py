"""Enqueue, one worker pass, and what a real SMTP server receives."""

from __future__ import annotations

import time

from idp.extensions import db
from idp.mail import enqueue_message
from idp.mail.worker import deliver_due

LINK = "https://localhost/complete?token=abc123"


def _branded_tenant(factory):
    tenant = factory.tenant("terrestar", "Terrestar Solutions")
    tenant.settings = {"support_email": "service@iot.example.ca",
                       "logo_url": "https://cdn.example.ca/logo.png", "brand_color": "#123456"}
    db.session.commit()
    return tenant


def test_worker_pass_delivers_multipart_message(app, factory, smtp, outbox_rows):
    tenant = _branded_tenant(factory)
    user = factory.user("john@example.com", tenant=tenant, given_name="John")
    enqueue_message("password_reset", user.email, locale=user.locale, tenant=tenant,
                    link=LINK, expires_minutes=30)
    db.session.commit()
    [row] = outbox_rows()
    assert row.status == "queued" and row.attempts == 0

    result = deliver_due()

    assert result.sent == 1 and result.retried == 0
    [received] = smtp.wait_for(1)
    assert received.mail_from == "no-reply@localhost"  # IDP_MAIL_FROM's address
    assert received.rcpt_tos == ["john@example.com"]
    message = received.message
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["To"] == "john@example.com"
    assert message["From"].addresses[0].display_name == "Terrestar Solutions"
    assert message["From"].addresses[0].addr_spec == "no-reply@localhost"
    assert message["Reply-To"] == "service@iot.example.ca"
    assert message["Subject"] == "Reset your password"
    assert message["Message-ID"] == row.headers["message_id"]
    assert message["Date"] and message["Auto-Submitted"] == "auto-generated"
    assert message["Content-Language"] == "en"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert LINK in text and "30 minutes" in text and "Terrestar Solutions" in text
    assert f'href="{LINK.replace("&", "&amp;")}"' in html
    assert 'src="https://cdn.example.ca/logo.png"' in html and "#123456" in html
    assert "mailto:service@iot.example.ca" in html

    [row] = outbox_rows()
    assert row.status == "sent" and row.attempts == 1 and row.sent_at >= row.created_at
    assert row.locked_until is None and row.last_error is None
    # A second pass finds nothing to do: the message is never sent twice.
    assert deliver_due().claimed == 0
    time.sleep(0.2)
    assert len(smtp.received) == 1


def test_welcome_is_bilingual_english_then_french(app, factory, smtp):
    tenant = _branded_tenant(factory)
    user = factory.user("john@example.com", tenant=tenant, given_name="John", locale="fr")
    enqueue_message("welcome", user.email, locale=user.locale, tenant=tenant, name="John",
                    link=LINK, expires_hours=72)
    db.session.commit()
    deliver_due()
    [received] = smtp.wait_for(1)
    message = received.message
    assert message["Subject"] == ("Welcome to Terrestar Solutions / "
                                  "Bienvenue sur Terrestar Solutions")
    assert message["Content-Language"] == "en, fr"
    # French typography: a no-break space in "72 heures".
    text = message.get_body(("plain",)).get_content().replace("\xa0", " ")
    english = [
        "Hello John,",
        "Welcome to the Terrestar Solutions portal — your user account has been successfully "
        "created!",
        "Complete Registration",
        "expires in 72 hours",
        "If you have any questions or need assistance, feel free to contact us: "
        "service@iot.example.ca.",
        "The Terrestar Solutions Team",
        "please check your spam folder",
    ]
    french = [
        "Bonjour John,",
        "Bienvenue sur le portail de Terrestar Solutions — votre compte utilisateur a été créé "
        "avec succès !",
        "Compléter l'inscription",
        "expire dans 72 heures",
        "N'hésitez pas à nous joindre : service@iot.example.ca.",
        "L'équipe de Terrestar Solutions",
        "dossier pourriel (SPAM)",
    ]
    positions = [text.index(fragment) for fragment in english + french]
    assert positions == sorted(positions), "English first, then French, each in order"
    assert text.count(LINK) == 2
    html = message.get_body(("html",)).get_content()
    assert html.index('lang="en"') < html.index("Complete Registration") \
        < html.index('lang="fr"') < html.index("Compléter l'inscription")
    assert "dossier pourriel (SPAM)" in html and "spam folder" in html


def test_french_user_gets_french_password_reset(app, factory, smtp):
    factory.user("marie@example.com", locale="fr")
    factory.user("bob@example.com", locale="en")
    enqueue_message("password_reset", "marie@example.com", locale="fr", link=LINK,
                    expires_minutes=15)
    enqueue_message("password_reset", "bob@example.com", locale="en", link=LINK,
                    expires_minutes=15)
    db.session.commit()
    deliver_due()
    by_rcpt = {r.rcpt_tos[0]: r.message for r in smtp.wait_for(2)}
    french = by_rcpt["marie@example.com"]
    assert french["Subject"] == "Réinitialisez votre mot de passe"
    assert french["Content-Language"] == "fr"
    text = french.get_body(("plain",)).get_content().replace("\xa0", " ")
    assert "Bonjour," in text and "Choisir un nouveau mot de passe" in text
    assert "expire dans 15 minutes" in text and "Reset" not in text
    assert "Choisir un nouveau mot de passe" in french.get_body(("html",)).get_content()
    english = by_rcpt["bob@example.com"]
    assert english["Subject"] == "Reset your password"
    assert "Choose a new password" in english.get_body(("plain",)).get_content()


def test_every_kind_renders_in_both_languages(app, ctx):
    from idp.mail.messages import KINDS, render_message

    context = {"link": LINK, "expires_hours": 24, "expires_minutes": 30, "when": 1_700_000_000,
               "reset_link": LINK, "login_link": "https://localhost/login",
               "locked_until": 1_700_000_900,
               "new_email": "john.new@example.com", "code": "482913",
               "passkey_name": "Work laptop",
               "change": "totp_added", "person_email": "bob@example.com",
               "security_link": "https://localhost/account/security"}
    for kind in KINDS:
        en = render_message(kind, to="a@example.com", locale="en", **context)
        fr = render_message(kind, to="a@example.com", locale="fr", **context)
        assert en.subject and en.text.strip() and "<html" in en.html
        if kind != "welcome":
            assert en.subject != fr.subject, kind
            assert en.text != fr.text, kind
        assert "{{" not in en.text + fr.text and "%(" not in en.text + fr.text, kind
    notice = render_message("email_change_notice", to="a@example.com", locale="en",
                            new_email="john.new@example.com")
    assert "j***@example.com" in notice.text and "john.new" not in notice.text + notice.html


def test_login_code(app, ctx):
    from idp.mail.messages import render_message

    message = render_message("login_code", to="a@example.com", locale="fr", code="482913",
                             expires_minutes=10)
    assert message.subject == "Votre code de connexion"
    assert "482913" in message.text and "482913" in message.html
    assert "10 minutes" in message.text.replace("\xa0", " ")


def test_locale_falls_back_to_default(app, ctx):
    from idp.mail.messages import render_message

    assert render_message("password_reset", to="a@example.com", locale="de-DE", link=LINK,
                          expires_minutes=5).locale == "en"
    assert render_message("password_reset", to="a@example.com", locale="fr-CA", link=LINK,
                          expires_minutes=5).locale == "fr"


def test_console_transport_prints_and_keeps_the_message(app, factory, capsys, monkeypatch,
                                                         outbox_rows):
    monkeypatch.setitem(app.config, "IDP_SMTP_URL", None)
    enqueue_message("verify_email", "new@example.com", locale="en", link=LINK, expires_hours=24)
    db.session.commit()
    result = deliver_due()
    assert result.sent == 1
    out = capsys.readouterr().out
    assert "IDP_SMTP_URL is not set" in out and "To: new@example.com" in out and LINK in out
    [row] = outbox_rows()
    assert row.status == "console" and row.sent_at is not None
    assert deliver_due().claimed == 0  # not retried, not printed again
