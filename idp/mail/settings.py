"""Mail settings beyond idp/config.py, read from ``IDP_*`` variables with safe defaults.

``IDP_SMTP_URL``, ``IDP_MAIL_FROM`` and ``IDP_ENABLE_MAIL_WORKER`` (env
``IDP_MAIL_WORKER``) live in idp/config.py; the tuning knobs below are the
mail subsystem's own. Values given to ``create_app(config)`` win.
"""

from __future__ import annotations

from flask import Flask

from idp.config import _env, _env_int

DEFAULTS = {
    # A PEM file of CA certificates to trust for STARTTLS / smtps (else the system store).
    "IDP_SMTP_CA_FILE": lambda: _env("SMTP_CA_FILE"),
    "IDP_SMTP_TIMEOUT": lambda: float(_env("SMTP_TIMEOUT", "20") or 20),
    # Retries: exponential backoff from BASE seconds, capped at MAX, then give up.
    "IDP_MAIL_MAX_ATTEMPTS": lambda: _env_int("MAIL_MAX_ATTEMPTS", 30),
    "IDP_MAIL_RETRY_BASE": lambda: _env_int("MAIL_RETRY_BASE", 30),
    "IDP_MAIL_RETRY_MAX": lambda: _env_int("MAIL_RETRY_MAX", 3600),
    # A claimed message belongs to its worker this long; then another worker may retry it.
    "IDP_MAIL_LEASE": lambda: _env_int("MAIL_LEASE", 600),
    "IDP_MAIL_BATCH": lambda: _env_int("MAIL_BATCH", 10),
    "IDP_MAIL_POLL_INTERVAL": lambda: float(_env("MAIL_POLL_INTERVAL", "5") or 5),
    # Sent and console messages are deleted after this many days (0 keeps them).
    "IDP_MAIL_RETENTION_DAYS": lambda: _env_int("MAIL_RETENTION_DAYS", 30),
    # Branding fallbacks when a tenant sets none (Tenant.settings wins).
    "IDP_SUPPORT_EMAIL": lambda: _env("SUPPORT_EMAIL"),
    "IDP_MAIL_LOGO_URL": lambda: _env("MAIL_LOGO_URL"),
}


def apply_defaults(app: Flask) -> None:
    for key, default in DEFAULTS.items():
        if key not in app.config:
            app.config[key] = default()


def setting(config, key: str):
    """A mail setting from ``config``, falling back to its default."""
    if key in config:
        return config[key]
    return DEFAULTS[key]()
