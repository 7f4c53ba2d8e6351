"""Email: a transactional outbox, an SMTP transport and localized, branded messages.

Callers only need::

    from idp.mail import enqueue_message
    enqueue_message("password_reset", user.email, locale=user.locale, tenant=tenant,
                    link=url, expires_minutes=30)
    db.session.commit()   # the email is stored with the change that caused it

A worker (in-process thread, or ``idp mail worker``) delivers it; see docs/email.md.
"""

from __future__ import annotations

from flask import Flask

from idp.mail.headers import MailError
from idp.mail.messages import KINDS, enqueue_message, render_message
from idp.mail.outbox import enqueue

__all__ = ["KINDS", "MailError", "enqueue", "enqueue_message", "init_app", "render_message"]


def init_app(app: Flask) -> None:
    """The in-process delivery worker unless disabled or testing (settings: idp/config.py)."""
    from idp.mail.worker import install

    install(app)
