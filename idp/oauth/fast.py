"""Machine endpoints without the browser's costs.

Token, userinfo, revocation, introspection, discovery, JWKS (and the health and
metrics endpoints) authenticate clients or nobody, never a browser: their requests
neither read nor write the server-side session (``MachineSessions``), so a stray
session cookie costs no database lookup and no answer ever sets one.

Discovery and JWKS are answered before Flask, from bytes the app rendered once.

Both documents are constant between key rotations: the first GET goes through the
whole app (so the answer carries every header its view and the security hooks set),
and its status, headers and body are kept; later GETs and HEADs are answered from
them with an ETag, and a matching If-None-Match gets 304. The JWKS entry is
rendered again when the key store reloads the manifest (``idp keys rotate``); the
discovery document depends on configuration only. Anything else, a query string, a
method other than GET/HEAD, or a first answer other than 200 (a process not ready
yet) goes to the app unchanged.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from flask import Flask, Request, Response
from flask.sessions import SessionInterface

# Paths that serve programs, not browsers: JSON errors, no browser session.
API_PREFIXES = ("/oauth/token", "/oauth/userinfo", "/oauth/revoke", "/oauth/introspect",
                "/.well-known/", "/healthz", "/readyz", "/metrics")

DOCUMENTS = {"/.well-known/openid-configuration": "oauth.openid_configuration",
             "/.well-known/jwks.json": "oauth.jwks"}


@dataclass(frozen=True)
class _Entry:
    version: object
    headers: list[tuple[str, str]]
    body: bytes
    etag: str


def etag_matches(header: str, etag: str) -> bool:
    """RFC 9110 13.1.2: If-None-Match uses the weak comparison."""
    if header.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == bare for tag in header.split(","))


class ConstantDocuments:
    """WSGI middleware in front of the Flask app for the two constant documents."""

    def __init__(self, app: Flask, wsgi_app: Callable):
        self.app, self.wsgi_app = app, wsgi_app
        self._entries: dict[str, _Entry] = {}

    def _version(self, path: str) -> object:
        if path == "/.well-known/jwks.json":
            # The same bytes object until the key store reloads the manifest.
            return self.app.extensions["idp_keys"].jwks_json()
        return None

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "")
        if (path not in DOCUMENTS or method not in ("GET", "HEAD")
                or environ.get("QUERY_STRING")):
            return self.wsgi_app(environ, start_response)
        started = time.perf_counter()
        try:
            version = self._version(path)
        except RuntimeError:  # no keys yet: the app answers (and logs) it
            return self.wsgi_app(environ, start_response)
        entry = self._entries.get(path)
        if entry is None or entry.version is not version:
            entry = self._render(path, version, environ)
            if entry is None:
                return self.wsgi_app(environ, start_response)
        if etag_matches(environ.get("HTTP_IF_NONE_MATCH", ""), entry.etag):
            status, body = "304 Not Modified", b""
            headers = [(k, v) for k, v in entry.headers
                       if k.lower() not in ("content-length", "content-type")]
        else:
            status, body, headers = "200 OK", entry.body, entry.headers
        start_response(status, headers)
        metrics = self.app.extensions.get("idp_metrics")
        if metrics is not None:
            metrics.observe(DOCUMENTS[path], method, int(status[:3]),
                            time.perf_counter() - started)
        return [b""] if method == "HEAD" else [body]

    def _render(self, path: str, version: object, environ: dict) -> _Entry | None:
        """One GET through the app; its answer kept if it is a 200."""
        captured: dict = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        get = {**environ, "REQUEST_METHOD": "GET"}
        get.pop("HTTP_IF_NONE_MATCH", None)
        chunks = self.wsgi_app(get, capture)
        try:
            body = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        if not captured.get("status", "").startswith("200"):
            return None
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "etag"]
        headers.append(("ETag", etag))
        entry = _Entry(version, headers, body, etag)
        self._entries[path] = entry
        return entry


class MachineSessions(SessionInterface):
    """The app's session interface, bypassed for machine paths (an empty session there)."""

    def __init__(self, inner: SessionInterface):
        self.inner = inner

    def open_session(self, app: Flask, request: Request):
        from idp.services.sessions import ServerSession

        if request.path.startswith(API_PREFIXES):
            return ServerSession()
        return self.inner.open_session(app, request)

    def save_session(self, app: Flask, session, response: Response) -> None:
        from flask import request


        if request.path.startswith(API_PREFIXES):
            return None
        return self.inner.save_session(app, session, response)


def init_app(app: Flask) -> None:
    from idp.oauth import lean

    app.session_interface = MachineSessions(app.session_interface)
    lean.init_app(app)  # token, introspection, userinfo answered before Flask when they succeed
    app.wsgi_app = ConstantDocuments(app, app.wsgi_app)
