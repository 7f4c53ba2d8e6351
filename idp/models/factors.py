"""Second factors a person sets up: the authenticator app (TOTP), recovery codes, the
requests to an admin to reset them ("no access to the app"), trusted browsers.

Nothing secret is stored in the clear: the TOTP key is encrypted (factors/totp.py),
recovery codes and trusted-browser tokens are kept as hashes.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models._types import Epoch, JSONType, now


class TotpCredential(db.Model):
    """One authenticator app per person. ``last_step`` is the last 30-second step a code was
    accepted for: a code is good once, on every worker (a conditional UPDATE moves it)."""

    __tablename__ = "totp_credentials"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         nullable=False, unique=True)
    secret_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    last_step: Mapped[int] = mapped_column(Epoch, nullable=False, default=0, server_default="0")
    created_at: Mapped[int] = mapped_column(Epoch, nullable=False, default=now)
    last_used_at: Mapped[int | None] = mapped_column(Epoch)


class RecoveryCode(db.Model):
    """A single-use recovery code: only its HMAC-SHA-256 (factors/recovery_code.py)."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         nullable=False, index=True)
    code_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    created_at: Mapped[int] = mapped_column(Epoch, nullable=False, default=now)
    used_at: Mapped[int | None] = mapped_column(Epoch)


RESET_STATUSES = ("pending", "approved", "denied")


class FactorResetRequest(db.Model):
    """"No access to the app": a person asks their tenant's admins to reset their factors."""

    __tablename__ = "factor_reset_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         nullable=False, index=True)
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"),
                                                  index=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    created_at: Mapped[int] = mapped_column(Epoch, nullable=False, default=now)
    resolved_at: Mapped[int | None] = mapped_column(Epoch)
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class TrustedBrowser(db.Model):
    """A browser where the second factor is skipped until ``expires_at``: the cookie holds a
    random token, the row its SHA-256 (services/trusted_browsers.py)."""

    __tablename__ = "trusted_browsers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         nullable=False, index=True)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    # The second factors of the sign-in that trusted it ({"id", "amr", "at"}): a sign-in
    # from this browser counts them again, so amr/acr say what was really done, and when.
    factors: Mapped[list] = mapped_column(JSONType, nullable=False, default=list)
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[int] = mapped_column(Epoch, nullable=False, default=now)
    expires_at: Mapped[int] = mapped_column(Epoch, nullable=False)
    last_used_at: Mapped[int | None] = mapped_column(Epoch)
