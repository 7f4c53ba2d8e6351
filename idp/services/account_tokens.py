"""Single-use links sent by email (invitation, verification, reset, email change, sign-up).

256-bit random tokens, only their SHA-256 stored; single use enforced by a
conditional UPDATE so two tabs (or two attackers) cannot both use one link. A
newer link of the same purpose for the same user or address supersedes older ones
(reset, invitation, email change), except where a journey keeps them
(``supersede=False``: registration and company sign-up, where anyone can make us
send a new link and must not kill the owner's); those die together with
``revoke`` once one of them is used.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import or_, select, update

from idp.extensions import db
from idp.models import AccountToken
from idp.models.oauth import digest

MAX_TOKEN_LENGTH = 128


class LinkError(Exception):
    """The link is unknown, used, superseded or expired (one message for the person).

    ``expired`` tells an old link apart, so the page can offer a new one. Each
    journey subclasses it to name its own failure.
    """

    def __init__(self, reason: str = "", expired: bool = False):
        super().__init__(reason)
        self.expired = expired


class LinkExpired(LinkError):
    def __init__(self, reason: str = "expired"):
        super().__init__(reason, expired=True)


def revoke(purpose: str, *, user=None, email: str | None = None) -> None:
    """Every unused link of this purpose for this user or address dies. No commit."""
    holders = []
    if user is not None:
        holders.append(AccountToken.user_id == user.id)
    if email is not None:
        holders.append(AccountToken.email == email)
    if holders:
        db.session.execute(
            update(AccountToken)
            .where(AccountToken.purpose == purpose, AccountToken.used_at.is_(None), or_(*holders))
            .values(used_at=int(time.time())))


def issue(purpose: str, *, ttl: int, user=None, email: str | None = None, tenant=None,
          data: dict | None = None, supersede: bool = True) -> tuple[str, AccountToken]:
    """Create a link token (added to the session, not committed); older ones die unless
    ``supersede`` is False."""
    now = int(time.time())
    if supersede:
        revoke(purpose, user=user, email=email)
    raw = secrets.token_urlsafe(32)
    row = AccountToken(purpose=purpose, token_hash=digest(raw),
                       user_id=user.id if user is not None else None,
                       tenant_id=tenant.id if tenant is not None else None, email=email,
                       data=data or {}, created_at=now, expires_at=now + ttl)
    db.session.add(row)
    db.session.flush()
    return raw, row


def _live(row: AccountToken | None, purpose: str) -> AccountToken:
    """The one check of a link: its purpose, never used (nor superseded), not expired."""
    if row is None or row.purpose != purpose or row.used_at is not None:
        raise LinkError("unknown or used")
    if row.expires_at <= int(time.time()):
        raise LinkExpired("expired")
    return row


def peek(purpose: str, raw: str | None) -> AccountToken:
    """The live token behind a link, without using it (to render the page)."""
    if not raw or not isinstance(raw, str) or len(raw) > MAX_TOKEN_LENGTH:
        raise LinkError("malformed")
    return _live(db.session.scalar(select(AccountToken).where(
        AccountToken.token_hash == digest(raw))), purpose)


def peek_id(purpose: str, token_id: int) -> AccountToken:
    """The live token of this id (a flow in progress keeps the row's id, not the link)."""
    return _live(db.session.get(AccountToken, token_id), purpose)


@contextmanager
def raised_as(error: type[LinkError]) -> Iterator[None]:
    """Link problems inside the block are raised as the journey's own LinkError subclass."""
    try:
        yield
    except LinkError as exc:
        if isinstance(exc, error):
            raise
        raise error(str(exc), expired=exc.expired) from exc


def peek_as(error: type[LinkError], purpose: str, raw: str | None) -> AccountToken:
    """``peek``, with link problems raised as the journey's own LinkError subclass."""
    with raised_as(error):
        return peek(purpose, raw)


def use(row: AccountToken) -> AccountToken:
    """Mark a live token used, once: a conditional UPDATE, so two tabs cannot both use it.
    The caller commits together with what the link does."""
    used = db.session.execute(
        update(AccountToken).where(AccountToken.id == row.id, AccountToken.used_at.is_(None))
        .values(used_at=int(time.time()))).rowcount
    if used != 1:
        raise LinkError("used concurrently")
    return row


def consume(purpose: str, raw: str | None) -> AccountToken:
    """Use the link once; the caller commits together with what the link does."""
    return use(peek(purpose, raw))


def consume_as(error: type[LinkError], purpose: str, raw: str | None) -> AccountToken:
    """``consume``, with link problems raised as the journey's own LinkError subclass."""
    with raised_as(error):
        return consume(purpose, raw)
