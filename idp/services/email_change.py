"""Changing the email address of an account: effective only once the new address confirms.

* ``request_change`` (after a recent login, checked by the page): the new
  address gets a single-use ``email_change`` link, the current address a
  notice naming the new one, masked. If the new address already belongs to
  another account, the answer is the same, no link is sent and nothing
  changes (no enumeration); the current address still gets its notice.
* ``confirm_change`` uses the link once and switches the address (verified:
  following the link proved it). Older links die with each new request.
* A self-registration never confirmed (``registration.is_pending``) does not
  hold its address: anyone can make one, and it must not keep the mailbox's
  owner from moving their account there (issue 6). The change goes ahead and
  the pending account, never usable, is deleted when the link is followed.
"""

from __future__ import annotations

import hashlib
import time

from flask import current_app
from sqlalchemy.exc import IntegrityError

from idp.extensions import db
from idp.models import AccountToken, User
from idp.services import account_tokens, accounts, audit, email_address, registration
from idp.services.links import external_url

PURPOSE = "email_change"
EMAIL_WINDOW = 3600


class EmailChangeError(ValueError):
    """Form problems: ``errors`` maps a field to a code."""

    def __init__(self, errors: dict[str, str]):
        super().__init__(", ".join(f"{k}={v}" for k, v in errors.items()))
        self.errors = errors


class ChangeLinkError(account_tokens.LinkError):
    """The link cannot be used (see account_tokens.LinkError)."""


class AddressTaken(ChangeLinkError):
    """The new address got an account between the request and the confirmation."""


def change_ttl() -> int:
    return current_app.config["IDP_EMAIL_CHANGE_TTL"]


def _tenant_of(user: User):
    return next(iter(accounts.tenants_of(user)), None)


def request_change(user: User, new_email: str | None, *, ip: str | None = None,
                   counter=None) -> str:
    """Send the link and the notice. Commits. Returns sent, taken or throttled (same page)."""
    from idp.mail import enqueue_message

    try:
        normalized = email_address.normalize(new_email)
    except email_address.InvalidEmail as exc:
        raise EmailChangeError({"new_email": exc.reason}) from exc
    if normalized == user.email:
        raise EmailChangeError({"new_email": "same"})
    limit = current_app.config["IDP_EMAIL_CHANGE_LIMIT"]
    key = f"email-change:{user.id}:" + hashlib.sha256(normalized.encode()).hexdigest()[:16]
    if not accounts._counter(counter).hit(key, limit, EMAIL_WINDOW).allowed:
        db.session.rollback()
        return "throttled"
    tenant = _tenant_of(user)
    existing = accounts.get_by_email(normalized)
    taken = existing is not None and not registration.is_pending(existing)
    if not taken:
        ttl = change_ttl()
        raw, _row = account_tokens.issue(PURPOSE, ttl=ttl, user=user, email=normalized)
        enqueue_message("email_change_verify", normalized, locale=user.locale, tenant=tenant,
                        link=external_url("account.confirm_email", token=raw),
                        name=user.given_name)
    enqueue_message("email_change_notice", user.email, locale=user.locale, tenant=tenant,
                    new_email=normalized, name=user.given_name)
    audit.record("email_change_requested", tenant_id=tenant.id if tenant else None,
                 user_id=user.id, ip=ip)
    db.session.commit()
    return "taken" if taken else "sent"


def check_link(raw: str | None) -> tuple[AccountToken, User]:
    row = account_tokens.peek_as(ChangeLinkError, PURPOSE, raw)
    user = db.session.get(User, row.user_id) if row.user_id is not None else None
    if user is None or not user.active:
        raise ChangeLinkError("no usable account")
    return row, user


def confirm_change(raw: str | None, *, ip: str | None = None) -> User:
    """Use the link once and switch the address. Commits."""
    row, user = check_link(raw)
    other = accounts.get_by_email(row.email)
    if other is not None and other.id != user.id and not registration.is_pending(other):
        raise AddressTaken("taken")
    try:
        account_tokens.consume_as(ChangeLinkError, PURPOSE, raw)
        if other is not None and other.id != user.id:
            audit.record("pending_registration_removed", user_id=user.id, ip=ip)
            db.session.delete(other)  # never confirmed: the mailbox's owner takes the address
            db.session.flush()
        old = user.email
        user.email = row.email
        user.email_verified = True
        user.updated_at = int(time.time())
        tenant = _tenant_of(user)
        audit.record("email_changed", tenant_id=tenant.id if tenant else None, user_id=user.id,
                     ip=ip, old_domain=old.rpartition("@")[2])
        db.session.commit()
    except ChangeLinkError:
        db.session.rollback()
        raise
    except IntegrityError as exc:
        db.session.rollback()
        raise AddressTaken("taken") from exc
    return user
