"""Forgotten password (seeds 002, 004): a reset link by email, then a new password.

* ``request_reset`` answers nothing: the page says the same thing whether or
  not the address has an account, and the work done before answering is the
  same (one counter hit, one deferred-task row, for every address); the
  lookup, the link and the email come after the response (services/deferred.py).
  A reset link goes only to an active account; a pending invitation gets its
  welcome email again instead.
  At most IDP_FORGOT_EMAIL_LIMIT emails per address per hour, and none within a
  minute of the previous one (a double click), silently.
* The link: 256 random bits, only its SHA-256 stored, single use, IDP_RESET_TTL
  (1 h), and a newer link kills the older ones (services/account_tokens.py);
  built from IDP_ISSUER, never from the Host header (services/links.py).
* ``reset_password``: policy checked server side; then, in one transaction, the
  link is used, the password set, the lock cleared, the address marked verified
  (the link was read there), every browser session and
  every refresh/access token of the user revoked, the change audited and a
  notice queued. No automatic login: the person signs in again (MFA included).
"""

from __future__ import annotations

import hashlib
import time

from flask import current_app
from sqlalchemy import select

from idp.extensions import db
from idp.models import AccountToken, User
from idp.services import account_tokens, accounts, audit, deferred, email_address, invitations
from idp.services.links import external_url

PURPOSE = "reset_password"
EMAIL_WINDOW = 3600
# A second request this soon after a link was sent (a double click) sends nothing:
# a new link would kill the one already on its way.
RESEND_INTERVAL = 60


class ResetError(account_tokens.LinkError):
    """The link cannot be used (unknown, used, superseded, expired, or its account is gone)."""


def issue_reset_link(user: User) -> str:
    """A new reset link for this user (older ones die). Adds to the session; no commit."""
    ttl = current_app.config["IDP_RESET_TTL"]
    raw, _row = account_tokens.issue(PURPOSE, ttl=ttl, user=user)
    return external_url("recovery.reset", token=raw)


def _tenant_of(user: User):
    return next(iter(accounts.tenants_of(user)), None)


def send_reset_email(user: User) -> None:
    """Issue a link and queue the password_reset email. The caller commits."""
    link = issue_reset_link(user)
    minutes = max(1, current_app.config["IDP_RESET_TTL"] // 60)
    from idp.mail import enqueue_message

    enqueue_message("password_reset", user.email, locale=user.locale, tenant=_tenant_of(user),
                    link=link, expires_minutes=minutes)


@deferred.handler("account_locked_notice")
def send_locked_notice(payload: dict) -> None:
    """The account_locked email (after the response): until when, and a reset link.

    Nothing if that lock was lifted meanwhile (a reset). A message that cannot
    be built is logged; the lock holds either way.
    """
    from idp.mail import MailError, enqueue_message

    user = db.session.get(User, payload["user_id"])
    until = payload.get("locked_until")
    if user is None or until is None or user.locked_until != until:
        return
    try:
        with db.session.begin_nested():
            enqueue_message("account_locked", user.email, locale=user.locale,
                            tenant=_tenant_of(user), reset_link=issue_reset_link(user),
                            locked_until=until)
    except MailError:
        current_app.logger.exception("no account_locked email for user %s", user.id)


def _eligible(user: User | None) -> str | None:
    """What to send: a reset link, the invitation again, or nothing (same page either way)."""
    if user is None:
        return None
    if user.active and user.password_hash:
        return "reset"
    if not user.active and not user.password_hash and user.memberships:
        return "invitation"  # invited, never completed: the welcome email again
    return None  # disabled (or awaiting its own confirmation): nothing to send


def request_reset(email: str, *, ip: str | None = None, counter=None) -> None:
    """Send a reset link if the address has an eligible account. Commits. Says nothing.

    The answer costs the same for every address: one counter hit, one task
    row. Looking the address up, issuing the link and rendering the email run
    after the response (services/deferred.py), so its timing tells nothing.
    """
    normalized = accounts.normalize_email(email)
    key = "forgot:" + hashlib.sha256(normalized.encode("utf-8", "replace")).hexdigest()[:32]
    decision = accounts._counter(counter).hit(  # its own transaction (services/throttle.py)
        key, current_app.config["IDP_FORGOT_EMAIL_LIMIT"], EMAIL_WINDOW)
    if decision.allowed:
        deferred.defer("password_reset_request", email=normalized, ip=ip)
    db.session.commit()


@deferred.handler("password_reset_request")
def send_requested_reset(payload: dict) -> None:
    """The work of a reset request (after the response); adds to the session, no commit."""
    normalized, ip = payload["email"], payload.get("ip")
    user = accounts.get_by_email(normalized) if email_address.is_valid(normalized) else None
    action = _eligible(user)
    if action is None or _just_sent(user, action):
        return
    from idp.mail import MailError

    try:
        with db.session.begin_nested():
            if action == "reset":
                send_reset_email(user)
                audit.record("password_reset_requested", user_id=user.id, ip=ip)
            else:
                invitations.resend_invitation(user)
    except MailError:
        # Never a different answer (an error page would tell the address exists).
        current_app.logger.exception("no reset email for user %s", user.id)


def _just_sent(user: User, action: str) -> bool:
    purpose = PURPOSE if action == "reset" else "invite"
    recent = db.session.scalar(select(AccountToken.id).where(
        AccountToken.user_id == user.id, AccountToken.purpose == purpose,
        AccountToken.used_at.is_(None),
        AccountToken.created_at > int(time.time()) - RESEND_INTERVAL).limit(1))
    return recent is not None


def check_link(raw: str | None) -> User:
    """The account behind a live reset link, without using it (to render the page)."""
    row = account_tokens.peek_as(ResetError, PURPOSE, raw)
    user = db.session.get(User, row.user_id) if row.user_id is not None else None
    if user is None or not user.active:
        raise ResetError("no usable account")
    return user


def reset_password(raw: str | None, password: str, *, ip: str | None = None,
                   counter=None) -> User:
    """Use the link once and set the password. Commits.

    Raises ResetError (bad link) or accounts.WeakPassword (nothing changed, the
    link still works).
    """
    user = check_link(raw)
    accounts.set_password(user, password)  # raises WeakPassword before anything is used
    try:
        account_tokens.consume_as(ResetError, PURPOSE, raw)
    except ResetError:
        db.session.rollback()
        raise
    user.email_verified = True  # the link was read in that mailbox
    accounts.finish_password_change(user, "password_reset", ip=ip)
    db.session.commit()
    accounts.clear_failures(user.id, counter)
    return user
