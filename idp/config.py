"""Settings, all read from ``IDP_*`` environment variables with safe defaults.

Everything a deployment changes lives here so the rest of the code reads one
``current_app.config`` and tests can pass overrides to ``create_app``. Each
default is written once, here: code reads ``current_app.config["IDP_..."]``,
never ``.get(key, default)``.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

SOURCE_DIR = Path(__file__).resolve().parent.parent
# Templates, catalogs and migrations sit at the top of a checkout (DESIGN.md's layout); an
# installed wheel carries them inside the package instead (setup.py copies them there).
_BUNDLED = Path(__file__).resolve().parent / "_resources"
RESOURCE_DIR = _BUNDLED if _BUNDLED.is_dir() else SOURCE_DIR
# instance/ and keys/ default to the checkout when run from one, else the working directory.
DATA_DIR = SOURCE_DIR if (SOURCE_DIR / "setup.cfg").is_file() else Path.cwd()


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(f"IDP_{name}")
    return value if value not in (None, "") else default


def _env_int(name: str, default: int) -> int:
    value = _env(name)
    return int(value) if value is not None else default


def _env_float(name: str, default: float) -> float:
    value = _env(name)
    return float(value) if value is not None else default


def _env_bool(name: str, default: bool) -> bool:
    value = _env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _secret_key(instance_dir: Path) -> str:
    """Use IDP_SECRET_KEY, else a random key persisted under instance/.

    Persisting it keeps CSRF tokens valid across restarts and workers of one
    node; multi-node deployments must set IDP_SECRET_KEY.
    """
    configured = _env("SECRET_KEY")
    if configured:
        return configured
    path = instance_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def load_config() -> dict:
    instance_dir = Path(_env("INSTANCE_DIR", str(DATA_DIR / "instance")))
    issuer = (_env("ISSUER", "http://localhost:5000") or "").rstrip("/")
    https = urlsplit(issuer).scheme == "https"
    database_url = _env("DATABASE_URL", f"sqlite:///{instance_dir / 'idp.sqlite3'}")
    return {
        "INSTANCE_DIR": str(instance_dir),
        "SECRET_KEY": _secret_key(instance_dir),
        "IDP_ISSUER": issuer,
        "IDP_HTTPS": https,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_TRACK_MODIFICATIONS": False,
        "IDP_KEYS_DIR": _env("KEYS_DIR", str(DATA_DIR / "keys")),
        "IDP_SMTP_URL": _env("SMTP_URL"),
        "IDP_MAIL_FROM": _env("MAIL_FROM", "IdP <no-reply@localhost>"),
        "IDP_REDIS_URL": _env("REDIS_URL"),
        "IDP_GOOGLE_CLIENT_ID": _env("GOOGLE_CLIENT_ID"),
        "IDP_GOOGLE_CLIENT_SECRET": _env("GOOGLE_CLIENT_SECRET"),
        "IDP_GOOGLE_ISSUER": _env("GOOGLE_ISSUER", "https://accounts.google.com"),
        "IDP_BRAND_NAME": _env("BRAND_NAME", "Identity"),
        "IDP_HOST": _env("HOST", "127.0.0.1"),
        "IDP_PORT": _env_int("PORT", 5000),
        # Where `make run` serves the demo portal (demo/), which `idp init --demo` registers.
        "IDP_DEMO_PORT": _env_int("DEMO_PORT", 8080),
        # Lifetimes, in seconds.
        "IDP_CODE_TTL": _env_int("CODE_TTL", 600),
        # How long a process may use its copy of a client's registration (0: no cache).
        "IDP_CLIENT_CACHE_TTL": _env_int("CLIENT_CACHE_TTL", 5),
        # PostgreSQL: introspection and userinfo keep what they read of a token until the
        # database reports a write that changes it (idp/services/state_cache.py); 0 reads
        # every time. MAX_AGE bounds an entry's life when triggers were off for a write.
        "IDP_TOKEN_STATE_CACHE": _env_bool("TOKEN_STATE_CACHE", True),
        "IDP_TOKEN_STATE_CACHE_MAX_AGE": _env_float("TOKEN_STATE_CACHE_MAX_AGE", 30.0),
        "IDP_ACCESS_TOKEN_TTL": _env_int("ACCESS_TOKEN_TTL", 3600),
        "IDP_ID_TOKEN_TTL": _env_int("ID_TOKEN_TTL", 3600),
        "IDP_REFRESH_IDLE_TTL": _env_int("REFRESH_IDLE_TTL", 30 * 24 * 3600),
        "IDP_REFRESH_ABSOLUTE_TTL": _env_int("REFRESH_ABSOLUTE_TTL", 365 * 24 * 3600),
        "IDP_SESSION_TTL": _env_int("SESSION_TTL", 12 * 3600),
        "IDP_FLOW_TTL": _env_int("FLOW_TTL", 30 * 60),
        "IDP_BACKCHANNEL_TIMEOUT": _env_float("BACKCHANNEL_TIMEOUT", 3.0),
        # Account lifecycle links (seconds): invitation (welcome email) and password reset.
        "IDP_INVITE_TTL": _env_int("INVITE_TTL", 72 * 3600),
        "IDP_RESET_TTL": _env_int("RESET_TTL", 3600),
        # Sign-up links (seconds): registration confirmation, company sign-up, email change.
        "IDP_VERIFY_TTL": _env_int("VERIFY_TTL", 24 * 3600),
        "IDP_SIGNUP_TTL": _env_int("SIGNUP_TTL", 24 * 3600),
        "IDP_EMAIL_CHANGE_TTL": _env_int("EMAIL_CHANGE_TTL", 24 * 3600),
        # Emails per address per hour from registration / sign-up / email change; more get none.
        "IDP_REGISTRATION_EMAIL_LIMIT": _env_int("REGISTRATION_EMAIL_LIMIT", 5),
        "IDP_EMAIL_CHANGE_LIMIT": _env_int("EMAIL_CHANGE_LIMIT", 5),
        # Changing the email address needs a login (or the password typed again) this recent.
        "IDP_STEP_UP_MAX_AGE": _env_int("STEP_UP_MAX_AGE", 600),
        # Lockout: failed logins per account, counted across IPs in a sliding window (s);
        # a tenant may lower the threshold (Tenant.settings["lockout_threshold"]). A lock
        # lasts IDP_LOCKOUT_DURATION, each further lock in a row twice as long, at most
        # IDP_LOCKOUT_MAX_DURATION (seconds); it ends by itself.
        "IDP_LOCKOUT_THRESHOLD": _env_int("LOCKOUT_THRESHOLD", 6),
        "IDP_LOCKOUT_WINDOW": _env_int("LOCKOUT_WINDOW", 24 * 3600),
        "IDP_LOCKOUT_DURATION": _env_int("LOCKOUT_DURATION", 15 * 60),
        "IDP_LOCKOUT_MAX_DURATION": _env_int("LOCKOUT_MAX_DURATION", 24 * 3600),
        # Per-IP limits on the POSTs that check a password or send mail: N per sliding
        # window (s).
        "IDP_LOGIN_IP_LIMIT": _env_int("LOGIN_IP_LIMIT", 30),
        "IDP_LOGIN_IP_WINDOW": _env_int("LOGIN_IP_WINDOW", 300),
        "IDP_FORGOT_IP_LIMIT": _env_int("FORGOT_IP_LIMIT", 10),
        "IDP_FORGOT_IP_WINDOW": _env_int("FORGOT_IP_WINDOW", 900),
        "IDP_LINK_IP_LIMIT": _env_int("LINK_IP_LIMIT", 20),
        "IDP_LINK_IP_WINDOW": _env_int("LINK_IP_WINDOW", 900),
        # The sign-up POSTs (register, resend, company sign-up).
        "IDP_REGISTER_IP_LIMIT": _env_int("REGISTER_IP_LIMIT", 20),
        "IDP_REGISTER_IP_WINDOW": _env_int("REGISTER_IP_WINDOW", 900),
        # Reset emails per address per hour; more requests get the same answer, no email.
        "IDP_FORGOT_EMAIL_LIMIT": _env_int("FORGOT_EMAIL_LIMIT", 5),
        # The emailed sign-in code (factors/email_code.py): lifetime (s), wrong tries before
        # the sign-in starts over, seconds between two sends, sends per account and per IP
        # in a sliding window (s).
        "IDP_LOGIN_CODE_TTL": _env_int("LOGIN_CODE_TTL", 600),
        "IDP_LOGIN_CODE_TRIES": _env_int("LOGIN_CODE_TRIES", 5),
        "IDP_LOGIN_CODE_COOLDOWN": _env_int("LOGIN_CODE_COOLDOWN", 60),
        "IDP_LOGIN_CODE_ACCOUNT_LIMIT": _env_int("LOGIN_CODE_ACCOUNT_LIMIT", 5),
        "IDP_LOGIN_CODE_IP_LIMIT": _env_int("LOGIN_CODE_IP_LIMIT", 20),
        "IDP_LOGIN_CODE_WINDOW": _env_int("LOGIN_CODE_WINDOW", 900),
        # Passkeys (services/passkeys.py): seconds a WebAuthn challenge stays good (the
        # browser's timeout too).
        "IDP_WEBAUTHN_TIMEOUT": _env_int("WEBAUTHN_TIMEOUT", 300),
        # Answers to a typed-code second factor (emailed code, authenticator app, recovery
        # code) per account in a sliding window (s), whatever the sign-in (factors/attempts.py).
        "IDP_FACTOR_ACCOUNT_TRIES": _env_int("FACTOR_ACCOUNT_TRIES", 10),
        "IDP_FACTOR_ACCOUNT_WINDOW": _env_int("FACTOR_ACCOUNT_WINDOW", 900),
        # "No access to the app": requests to the admins per account in a window (s).
        "IDP_FACTOR_RESET_LIMIT": _env_int("FACTOR_RESET_LIMIT", 2),
        "IDP_FACTOR_RESET_WINDOW": _env_int("FACTOR_RESET_WINDOW", 24 * 3600),
        # Setting up an authenticator app: the key shown waits this long (s) for a first code.
        "IDP_TOTP_ENROL_TTL": _env_int("TOTP_ENROL_TTL", 900),
        # Requests per trusted proxy hop; 0 means X-Forwarded-* are ignored.
        "IDP_TRUSTED_PROXIES": _env_int("TRUSTED_PROXIES", 0),
        # /metrics answers only `Authorization: Bearer <this>`; unset: 404 (off).
        "IDP_METRICS_TOKEN": _env("METRICS_TOKEN"),
        "IDP_ENABLE_MAIL_WORKER": _env_bool("MAIL_WORKER", True),
        # Mail delivery. A PEM file of CA certificates to trust for STARTTLS / smtps (else the
        # system store); the SMTP timeout (s).
        "IDP_SMTP_CA_FILE": _env("SMTP_CA_FILE"),
        "IDP_SMTP_TIMEOUT": _env_float("SMTP_TIMEOUT", 20.0),
        # Retries: exponential backoff from BASE seconds, capped at MAX, then give up.
        "IDP_MAIL_MAX_ATTEMPTS": _env_int("MAIL_MAX_ATTEMPTS", 30),
        "IDP_MAIL_RETRY_BASE": _env_int("MAIL_RETRY_BASE", 30),
        "IDP_MAIL_RETRY_MAX": _env_int("MAIL_RETRY_MAX", 3600),
        # A claimed message belongs to its worker this long; then another worker may retry it.
        "IDP_MAIL_LEASE": _env_int("MAIL_LEASE", 600),
        "IDP_MAIL_BATCH": _env_int("MAIL_BATCH", 10),
        "IDP_MAIL_POLL_INTERVAL": _env_float("MAIL_POLL_INTERVAL", 5.0),
        # Sent and console messages are deleted after this many days (0 keeps them).
        "IDP_MAIL_RETENTION_DAYS": _env_int("MAIL_RETENTION_DAYS", 30),
        # Branding fallbacks when a tenant sets none (Tenant.settings wins).
        "IDP_SUPPORT_EMAIL": _env("SUPPORT_EMAIL"),
        "IDP_MAIL_LOGO_URL": _env("MAIL_LOGO_URL"),
        # Uploaded tenant logos (`idp tenant update --logo`): bytes and pixels a side at most.
        "IDP_LOGO_MAX_BYTES": _env_int("LOGO_MAX_BYTES", 256 * 1024),
        "IDP_LOGO_MAX_SIDE": _env_int("LOGO_MAX_SIDE", 1024),
        "BABEL_DEFAULT_LOCALE": "en",
        "BABEL_TRANSLATION_DIRECTORIES": str(RESOURCE_DIR / "translations"),
        "IDP_LOCALES": ["en", "fr"],
        "WTF_CSRF_TIME_LIMIT": None,  # bound to the session (signed cookie or row) instead
        "WTF_CSRF_SSL_STRICT": False,  # Referer checks break under no-referrer
        "MAX_CONTENT_LENGTH": 64 * 1024,
        "MAX_FORM_MEMORY_SIZE": 64 * 1024,
    }
