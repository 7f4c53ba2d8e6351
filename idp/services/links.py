"""Links sent by email are built from the configured issuer, never from the Host header.

A forged Host header on a forgot-password request must not produce a reset
link pointing at an attacker's site (OWASP forgot-password cheat sheet).
"""

from __future__ import annotations

from flask import current_app, url_for


def external_url(endpoint: str, **values) -> str:
    return current_app.config["IDP_ISSUER"] + url_for(endpoint, _external=False, **values)
