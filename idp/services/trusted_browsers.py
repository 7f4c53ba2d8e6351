""""Trust this browser": skip the second factor in one browser for a while (a tenant option).

A tenant sets ``Tenant.settings["trust_browser_days"]`` (0, the default: off;
``idp tenant update SLUG --trust-browser-days N``). With several tenants in play the
smallest wins. Trusting stores a row per browser: the SHA-256 of a random 256-bit
token, the user, the second factors of that sign-in, and an expiry; the browser gets
the token in a cookie signed with the secret key and bound to the user id
(account/security_views.py and the sign-in views set and read it). A later sign-in
of the same person in that browser counts the stored factors again (with their
original time), so amr/acr tell what was done; a request asking more than they
give (a higher acr) still asks for it. Revocable one by one on the account page;
all die with a password change or reset and with an admin's factor reset.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any

from flask import current_app
from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy import delete, select, update

from idp.extensions import db
from idp.models import TrustedBrowser

COOKIE_NAME = "idp_trusted_browser"
SALT = "idp.trusted-browser"
MAX_DAYS = 365
DAY = 86400


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def trust_days(tenants: list[Any]) -> int:
    """Days a browser may be trusted for these tenants (0: not at all)."""
    if not tenants:
        return 0
    values = []
    for tenant in tenants:
        value = (tenant.settings or {}).get("trust_browser_days", 0)
        values.append(value if isinstance(value, int) and not isinstance(value, bool)
                      and 0 <= value <= MAX_DAYS else 0)
    return min(values)


def set_trust_days(tenant: Any, days: int) -> None:
    """The tenant option (the caller commits)."""
    if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= MAX_DAYS:
        raise ValueError(f"trust-browser days must be 0 to {MAX_DAYS}")
    tenant.settings = {**(tenant.settings or {}), "trust_browser_days": days}


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt=SALT)


def cookie_value(user_id: int, token: str) -> str:
    return _serializer().dumps({"u": user_id, "t": token})


def token_from_cookie(value: str | None, user_id: int) -> str | None:
    """The token of a cookie signed by us for this user, else None."""
    if not value or len(value) > 512:
        return None
    try:
        data = _serializer().loads(value)
    except BadData:
        return None
    if not isinstance(data, dict) or data.get("u") != user_id or not isinstance(data.get("t"), str):
        return None
    return data["t"]


def trust(user_id: int, factors: list[dict], days: int, label: str | None = None,
          now: int | None = None) -> str:
    """A new trusted browser; the token for its cookie (the caller commits)."""
    now = int(time.time() if now is None else now)
    token = secrets.token_urlsafe(32)
    db.session.add(TrustedBrowser(user_id=user_id, token_hash=_hash(token),
                                  factors=[dict(f) for f in factors],
                                  label=(label or "")[:200] or None, created_at=now,
                                  expires_at=now + days * DAY))
    return token


def remembered(user_id: int, token: str | None, days: int,
               now: int | None = None) -> list[dict]:
    """The second factors this browser's trust stands for (none: not trusted now)."""
    if not token or days <= 0:
        return []
    now = int(time.time() if now is None else now)
    row = db.session.scalar(select(TrustedBrowser).where(
        TrustedBrowser.token_hash == _hash(token), TrustedBrowser.user_id == user_id,
        TrustedBrowser.expires_at > now, TrustedBrowser.created_at > now - days * DAY))
    if row is None:
        return []  # expired, revoked, another person's, or the tenant now allows less
    db.session.execute(update(TrustedBrowser).where(TrustedBrowser.id == row.id)
                       .values(last_used_at=now).execution_options(synchronize_session=False))
    return [dict(f, trusted_browser=True) for f in row.factors or []]


def list_for(user: Any) -> list[TrustedBrowser]:
    return list(db.session.scalars(
        select(TrustedBrowser).where(TrustedBrowser.user_id == user.id,
                                     TrustedBrowser.expires_at > int(time.time()))
        .order_by(TrustedBrowser.created_at.desc())))


def revoke(user: Any, browser_id: int) -> bool:
    """Revoke one of this person's trusted browsers (False: not theirs, or gone)."""
    result = db.session.execute(delete(TrustedBrowser).where(
        TrustedBrowser.id == browser_id, TrustedBrowser.user_id == user.id))
    return bool(result.rowcount)


def revoke_all(user_id: int) -> int:
    result = db.session.execute(delete(TrustedBrowser).where(TrustedBrowser.user_id == user_id))
    return result.rowcount or 0
