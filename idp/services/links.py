"""Links sent by email are built from the configured issuer, never from the Host header.

A forged Host header on a forgot-password request must not produce a reset
link pointing at an attacker's site (OWASP forgot-password cheat sheet).
Outside a request (the ``idp`` command, a worker) the path is built from the
URL map alone, so the same link comes out.
"""

from __future__ import annotations

from flask import current_app, has_request_context, url_for


def external_url(endpoint: str, **values) -> str:
    issuer = current_app.config["IDP_ISSUER"]
    if has_request_context():
        return issuer + url_for(endpoint, _external=False, **values)
    adapter = current_app.url_map.bind("localhost")
    return issuer + adapter.build(endpoint, values, force_external=False)
