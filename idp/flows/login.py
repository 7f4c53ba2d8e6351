"""The login step: email and password, then the session is (re)established.

Every failure reason (unknown address, wrong password, locked, disabled or
unverified account) gives the same message at the same cost; consecutive
failures lock the account (services/accounts.py). The per-IP limit on this POST
is applied before the view runs (flows/throttling.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from idp.extensions import db
from idp.flows.authorization import acr_for
from idp.models import User
from idp.services import accounts, audit

MAX_FIELD = 1024


@dataclass
class LoginOutcome:
    user: User | None
    error: str | None = None


def submit(email: str | None, password: str | None, ip: str | None) -> LoginOutcome:
    email = (email or "").strip()
    password = password or ""
    if not email or not password:
        return LoginOutcome(None, "missing")
    if len(email) > MAX_FIELD or len(password) > MAX_FIELD:
        return LoginOutcome(None, "invalid")
    try:
        user = accounts.authenticate(email, password, ip=ip)
    except accounts.InvalidCredentials as failure:
        # Counted per account (lockout) inside authenticate; the page says the same thing.
        audit.record("login_failed", user_id=failure.user_id, ip=ip)
        db.session.commit()
        return LoginOutcome(None, "invalid")
    audit.record("login", user_id=user.id, ip=ip, amr=["pwd"])
    db.session.commit()
    return LoginOutcome(user)


def establish_session(session, user: User, amr: list[str]) -> None:
    """Rotate the session id and record how and when the person authenticated."""
    keep = {k: session[k] for k in ("flows", "ui_locales") if k in session}
    session.clear()
    session.rotate()
    session.update(keep)
    session["uid"] = user.id
    session["auth_time"] = int(time.time())
    session["amr"] = amr
    session["acr"] = acr_for(amr)
