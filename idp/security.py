"""Browser security headers and proxy trust.

Every response gets a CSP with a per-request nonce, ``frame-ancestors 'none'``,
nosniff and a Referrer-Policy; HSTS when the issuer is https. Proxy headers are
trusted only for the configured number of hops (IDP_TRUSTED_PROXIES), never by
default: a forged X-Forwarded-For must not change what the server believes.
"""

from __future__ import annotations

import secrets

from flask import Flask, Response, g, request
from werkzeug.middleware.proxy_fix import ProxyFix


def csp_nonce() -> str:
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def content_security_policy(nonce: str) -> str:
    return ("default-src 'none'; "
            f"script-src 'self' 'nonce-{nonce}'; "
            "style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; "
            "base-uri 'none'; frame-ancestors 'none'")


HSTS = "max-age=31536000; includeSubDomains"


def machine_security_headers(https: bool) -> list[tuple[str, str]]:
    """What ``set_security_headers`` adds to a machine endpoint's JSON answer, for the
    answers given before Flask (idp/oauth/lean.py)."""
    headers = [("Content-Security-Policy", content_security_policy(secrets.token_urlsafe(16))),
               ("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"),
               ("Referrer-Policy", "no-referrer"), ("Cross-Origin-Opener-Policy", "same-origin")]
    if https:
        headers.append(("Strict-Transport-Security", HSTS))
    return headers


def set_security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", content_security_policy(csp_nonce()))
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    # Pages that carry codes or tokens in their URL must not leak them.
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if request.path.startswith(("/login", "/consent", "/select-tenant", "/logout", "/oauth/")):
        response.headers.setdefault("Cache-Control", "no-store")
    if g.get("https"):
        response.headers["Strict-Transport-Security"] = HSTS
    return response


def allow_image_origins(response: Response, origins) -> Response:
    """Let this page load images from these https origins too (a tenant's logo on its own
    site), and from nowhere else."""
    origins = sorted(set(origins or ()))
    if origins:
        set_security_headers(response)
        policy = response.headers["Content-Security-Policy"]
        response.headers["Content-Security-Policy"] = policy.replace(
            "img-src 'self' data:", "img-src 'self' data: " + " ".join(origins), 1)
    return response


def init_app(app: Flask) -> None:
    hops = app.config["IDP_TRUSTED_PROXIES"]
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=0, x_port=0)

    @app.before_request
    def _https_flag():
        g.https = app.config["IDP_HTTPS"]

    app.after_request(set_security_headers)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
