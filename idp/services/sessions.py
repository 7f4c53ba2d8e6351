"""Browser sessions: a signed cookie until there is something to keep, then a database row.

An anonymous visitor of a hosted page needs at most a CSRF token (and the
``ui_locales`` of the request that sent them, the language chosen with the
switcher): those few keys (``COOKIE_KEYS``) travel in the cookie itself, signed with ``SECRET_KEY`` (itsdangerous), and no row
is written, so anonymous GETs cannot grow the table. As soon as the session holds
anything else (a flow, a signed-in user) the data moves to the database: the cookie
then holds a random 256-bit token and the row its SHA-256, the session data (JSON)
and who is signed in, so any worker on any node can continue a flow.

Both kinds share the cookie name. A signed value always contains ``.`` and a
database token never does; a signed value is never looked up in the database and
only ``COOKIE_KEYS`` are read from it, so it cannot be forged into a signed-in
session. The id rotates at login (``rotate``); the row is deleted at logout, when
the user's sessions are revoked (password reset, account disabled), and when the
session falls back to cookie-only keys. A row without a signed-in user (a pending
flow) expires ``IDP_FLOW_TTL`` after its last change; ``idp purge`` deletes
expired rows.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from contextlib import contextmanager

from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy import bindparam, delete, insert, select, update
from werkzeug.datastructures import CallbackDict

from idp.extensions import db
from idp.models import BrowserSession

COOKIE_NAME = "idp_session"
SECURE_COOKIE_NAME = "__Host-idp_session"
# Keys an anonymous session may keep in its signed cookie (Flask-WTF's raw CSRF token).
COOKIE_KEYS = frozenset({"csrf_token", "ui_locales", "locale"})  # locale: the switcher
MAX_COOKIE_VALUE = 2048
SIGNING_SALT = "idp.browser-session.cookie"


_TABLE = BrowserSession.__table__
# Built once: every hosted page's request runs one of them.
_OPEN = select(_TABLE.c.data, _TABLE.c.sid, _TABLE.c.created_at).where(
    _TABLE.c.id_hash == bindparam("h"), _TABLE.c.expires_at > bindparam("now"))
_INSERT = insert(_TABLE)
_UPDATE = update(_TABLE).where(_TABLE.c.id_hash == bindparam("h"))
_DELETE = delete(_TABLE).where(_TABLE.c.id_hash == bindparam("h"))


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
        self.commit_with_row = False  # sign_in: the request's transaction ends with the row

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


def worth_storing(data: dict) -> bool:
    """True when the session holds more than the keys its signed cookie may carry."""
    return any(value not in (None, "", {}, []) for key, value in data.items()
               if key not in COOKIE_KEYS)


def _serializer(app: Flask) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(app.secret_key, salt=SIGNING_SALT,
                                  signer_kwargs={"key_derivation": "hmac",
                                                 "digest_method": hashlib.sha256})


class DatabaseSessionInterface(SessionInterface):
    def open_session(self, app: Flask, request: Request) -> ServerSession:
        value = request.cookies.get(cookie_name(app))
        if not value or len(value) > MAX_COOKIE_VALUE:
            return ServerSession()
        if "." in value:
            return self._open_signed(app, value)
        if len(value) > 128:
            return ServerSession()
        row = db.session.execute(_OPEN, {"h": _hash(value), "now": int(time.time())}).first()
        if row is None:
            return ServerSession()
        return ServerSession(dict(row.data), value, row.sid, row.created_at)

    @staticmethod
    def _open_signed(app: Flask, value: str) -> ServerSession:
        try:
            data = _serializer(app).loads(value, max_age=app.config["IDP_SESSION_TTL"])
        except BadData:  # forged, expired or unreadable: start afresh
            return ServerSession()
        if not isinstance(data, dict):
            return ServerSession()
        return ServerSession({k: v for k, v in data.items()
                              if k in COOKIE_KEYS and isinstance(v, str)})

    def save_session(self, app: Flask, session: ServerSession, response: Response) -> None:
        if not session.modified:
            return
        name = cookie_name(app)
        secure = app.config["IDP_HTTPS"]
        keep_row = worth_storing(session)
        stale = [session.old_token] + ([] if keep_row else [session.token])
        session.old_token = None
        if not keep_row:
            session.token = None
        response.vary.add("Cookie")
        if not keep_row:
            if any(stale):
                with db.engine.begin() as conn:
                    self._forget(conn, stale)
            light = {k: v for k, v in session.items() if k in COOKIE_KEYS and v}
            if not light:
                response.delete_cookie(name, path="/", secure=secure, httponly=True,
                                       samesite="Lax")
                return
            response.set_cookie(name, _serializer(app).dumps(light), max_age=None, path="/",
                                secure=secure, httponly=True, samesite="Lax")
            return
        self._store(app, session, response, name, secure, stale)

    @staticmethod
    def _forget(conn, tokens: list[str | None]) -> None:
        for token in filter(None, tokens):
            conn.execute(_DELETE, {"h": _hash(token)})

    @staticmethod
    def _store(app: Flask, session: ServerSession, response: Response, name: str,
               secure: bool, stale: list[str | None]) -> None:
        now = int(time.time())
        user_id = session.get("uid")
        created = session.token is None
        if created:
            session.token = secrets.token_urlsafe(32)
            session.sid = session.sid or secrets.token_urlsafe(16)
            session.created_at = now
        # A signed-in session lives IDP_SESSION_TTL from its creation (login rotates it);
        # a pending flow without a user lives IDP_FLOW_TTL from its last change.
        expires_at = ((session.created_at or now) + app.config["IDP_SESSION_TTL"] if user_id
                      else now + app.config["IDP_FLOW_TTL"])
        with _transaction(session) as conn:
            DatabaseSessionInterface._forget(conn, stale)
            if created:
                conn.execute(_INSERT, {"id_hash": _hash(session.token), "sid": session.sid,
                                       "user_id": user_id, "data": dict(session),
                                       "created_at": now, "expires_at": expires_at})
            else:
                conn.execute(_UPDATE, {"h": _hash(session.token), "data": dict(session),
                                       "user_id": user_id, "expires_at": expires_at})
        if created:
            response.set_cookie(name, session.token, max_age=None, path="/",
                                secure=secure, httponly=True, samesite="Lax")


@contextmanager
def _request_transaction():
    yield db.session.connection()
    db.session.commit()


def _transaction(session: ServerSession):
    """The row's own short transaction; at sign-in the request's, which then commits the
    sign-in's audit entry and counters with the new row (``sign_in``): one commit, one WAL
    flush on PostgreSQL, instead of two."""
    return _request_transaction() if session.commit_with_row else db.engine.begin()


def sign_in(session: ServerSession, user_id: int, done: list[dict]) -> None:
    """The one place a browser session becomes signed in: once the sign-in's steps meet
    the policy (flows/signin.py). The id rotates; the session keeps the open flows, the
    language, who (``uid``), when (``auth_time``) and the completed factors, from which
    amr and acr are computed (factors/assurance.py). What the caller left uncommitted (the
    sign-in's audit entry) is committed with the new row, as the response is saved."""
    keep = {k: session[k] for k in ("flows", "ui_locales", "locale") if k in session}
    session.clear()
    session.rotate()
    session.commit_with_row = True
    session.update(keep)
    session["uid"] = user_id
    session["auth_time"] = int(time.time())
    session["factors"] = [dict(record) for record in done]


def completed_factors(session) -> list[dict]:
    """The factors of a signed-in session (none for a pending or anonymous one)."""
    return list(session.get("factors") or []) if session.get("uid") else []


def revoke_user_sessions(user_id: int) -> int:
    """End every browser session of a user (password reset, account disabled)."""
    result = db.session.execute(delete(BrowserSession).where(BrowserSession.user_id == user_id))
    return result.rowcount or 0


def purge_expired() -> int:
    """Delete expired rows: signed-in sessions past IDP_SESSION_TTL, abandoned flows."""
    result = db.session.execute(
        delete(BrowserSession).where(BrowserSession.expires_at <= int(time.time())))
    return result.rowcount or 0
