"""Ending a browser session: tokens bound to it, the clients that used it, the cookie."""

from __future__ import annotations

from sqlalchemy import select

from idp.extensions import db
from idp.models import Grant, User
from idp.oauth import backchannel
from idp.services import audit, tokens


def end_session(session, user: User | None, ip: str | None = None) -> None:
    """Revoke the session's online grants, notify clients over the back channel, clear it.

    Grants with ``offline_access`` outlive the browser session (a mobile app stays
    signed in); everything else issued in this session dies with it. Commits (the
    logout views' transaction) before the back-channel calls, so clients are told
    only of a revocation that holds.
    """
    sid = session.sid
    if user is not None and sid:
        for grant_id, scope in db.session.execute(
                select(Grant.id, Grant.scope).where(Grant.sid == sid, Grant.revoked_at.is_(None))):
            if "offline_access" not in scope.split():
                tokens.revoke_grant(grant_id)
        audit.record("logout", user_id=user.id, ip=ip)
        db.session.commit()
        backchannel.notify(sid, user.sub)
    session.clear()
