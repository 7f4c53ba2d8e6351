"""Server-side browser sessions.

The cookie holds a random 256-bit token; the database holds its SHA-256, the
session data (JSON) and who is signed in. Any worker on any node can continue
a flow. The id rotates at login (``rotate``), and the row is deleted at logout
or when the user's sessions are revoked (password reset, account disabled).
"""

from __future__ import annotations

import hashlib
import secrets
import time

from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin
from sqlalchemy import delete, insert, select, update
from werkzeug.datastructures import CallbackDict

from idp.extensions import db
from idp.models import BrowserSession

COOKIE_NAME = "idp_session"
SECURE_COOKIE_NAME = "__Host-idp_session"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


class ServerSession(CallbackDict, SessionMixin):
    def __init__(self, data: dict | None = None, token: str | None = None,
                 sid: str | None = None, created_at: int | None = None):
        def on_update(this):
            this.modified = True

        super().__init__(data or {}, on_update)
        self.token = token
        self.sid = sid
        self.created_at = created_at
        self.modified = False
        self.old_token: str | None = None

    @property
    def new(self) -> bool:  # type: ignore[override]
        return self.token is None

    def rotate(self) -> None:
        """Give this session a new id and a new public sid (saved with the response)."""
        if self.token:
            self.old_token = self.token
        self.token = None
        self.sid = secrets.token_urlsafe(16)
        self.modified = True


def cookie_name(app: Flask) -> str:
    return SECURE_COOKIE_NAME if app.config["IDP_HTTPS"] else COOKIE_NAME


class DatabaseSessionInterface(SessionInterface):
    def open_session(self, app: Flask, request: Request) -> ServerSession:
        token = request.cookies.get(cookie_name(app))
        if not token or len(token) > 128:
            return ServerSession()
        now = int(time.time())
        row = db.session.execute(
            select(BrowserSession.data, BrowserSession.sid, BrowserSession.created_at)
            .where(BrowserSession.id_hash == _hash(token), BrowserSession.expires_at > now)
        ).first()
        if row is None:
            return ServerSession()
        return ServerSession(dict(row.data), token, row.sid, row.created_at)

    def save_session(self, app: Flask, session: ServerSession, response: Response) -> None:
        name = cookie_name(app)
        secure = app.config["IDP_HTTPS"]
        if not session.modified:
            return
        with db.engine.begin() as conn:
            for stale in (session.old_token, None if session else session.token):
                if stale:
                    conn.execute(delete(BrowserSession).where(
                        BrowserSession.id_hash == _hash(stale)))
            session.old_token = None
            if not session:
                session.token = None
            if not session:
                response.delete_cookie(name, path="/", secure=secure, httponly=True,
                                       samesite="Lax")
                return
            now = int(time.time())
            ttl = app.config["IDP_SESSION_TTL"]
            user_id = session.get("uid")
            if session.token is None:
                session.token = secrets.token_urlsafe(32)
                session.sid = session.sid or secrets.token_urlsafe(16)
                session.created_at = now
                conn.execute(insert(BrowserSession).values(
                    id_hash=_hash(session.token), sid=session.sid, user_id=user_id,
                    data=dict(session), created_at=now, expires_at=now + ttl))
                response.set_cookie(name, session.token, max_age=None, path="/",
                                    secure=secure, httponly=True, samesite="Lax")
            else:
                conn.execute(update(BrowserSession)
                             .where(BrowserSession.id_hash == _hash(session.token))
                             .values(data=dict(session), user_id=user_id))
        response.vary.add("Cookie")


def revoke_user_sessions(user_id: int) -> int:
    """End every browser session of a user (password reset, account disabled)."""
    result = db.session.execute(delete(BrowserSession).where(BrowserSession.user_id == user_id))
    return result.rowcount or 0


def purge_expired() -> int:
    result = db.session.execute(
        delete(BrowserSession).where(BrowserSession.expires_at <= int(time.time())))
    return result.rowcount or 0
