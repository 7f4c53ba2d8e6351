"""Redirect URI rules (RFC 9700 section 4.1, RFC 8252 section 7.3).

Matching is an exact string comparison; the single exception is the port of a
loopback IP literal registered by a native (public) app (RFC 8252 7.3): a web
(confidential) client's loopback URI matches exactly like any other. No
normalisation, no wildcards.
"""

from __future__ import annotations

from urllib.parse import urlsplit

LOOPBACK_HOSTS = {"127.0.0.1", "[::1]"}
FORBIDDEN_SCHEMES = {"javascript", "data", "vbscript", "file"}


class InvalidRedirectURI(ValueError):
    """A redirect URI that may not be registered."""


def _loopback_parts(uri: str):
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return None
    if parts.scheme != "http" or "@" in parts.netloc:
        return None
    host = parts.netloc.rsplit(":", 1)[0] if not parts.netloc.startswith("[") else (
        parts.netloc.split("]")[0] + "]"
    )
    if host not in LOOPBACK_HOSTS:
        return None
    return host, parts.path, parts.query, parts.fragment


def redirect_uri_matches(registered: str, requested: str, *, native: bool = False) -> bool:
    """Exact match; for a native app (``native``), any port on a registered loopback IP."""
    if not isinstance(requested, str):
        return False
    if registered == requested:
        return True
    if not native:
        return False
    reg = _loopback_parts(registered)
    if reg is None:
        return False
    req = _loopback_parts(requested)
    return req is not None and req == reg


def validate_redirect_uri(uri: str, public: bool) -> str:
    """Refuse what must never be registered; return the URI unchanged."""
    if not uri or len(uri) > 2000 or any(c.isspace() for c in uri):
        raise InvalidRedirectURI("empty, too long or contains whitespace")
    try:
        parts = urlsplit(uri)
    except ValueError as exc:
        raise InvalidRedirectURI("malformed") from exc
    scheme = parts.scheme.lower()
    if not scheme or scheme in FORBIDDEN_SCHEMES:
        raise InvalidRedirectURI(f"scheme {parts.scheme!r} is not allowed")
    if "#" in uri:
        raise InvalidRedirectURI("fragments are not allowed")
    if "*" in uri:
        raise InvalidRedirectURI("wildcards are not allowed")
    if scheme in {"http", "https"}:
        if not parts.hostname or "@" in parts.netloc:
            raise InvalidRedirectURI("a host is required and userinfo is not allowed")
        if ".." in parts.path.split("/") or ";" in parts.path:
            raise InvalidRedirectURI("path traversal segments are not allowed")
        if scheme == "http" and parts.hostname not in {"127.0.0.1", "::1", "localhost"}:
            raise InvalidRedirectURI("http is only allowed for loopback addresses")
    elif not public:
        raise InvalidRedirectURI("custom schemes are only for native (public) clients")
    elif "." not in scheme:
        # RFC 8252 section 7.1: private-use schemes are reverse domain names.
        raise InvalidRedirectURI("custom schemes must be reverse domain names")
    return uri
