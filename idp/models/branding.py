"""Tenant branding files: the uploaded logo, stored in the database so every node serves it."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models._types import Epoch, now


class TenantLogo(db.Model):
    """One logo per tenant: the bytes as validated and re-encoded (services/branding.py)."""

    __tablename__ = "tenant_logos"

    tenant_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(40), nullable=False)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    # SHA-256 of ``data``: the ETag, and the version in the logo's URL.
    digest: Mapped[str] = mapped_column(String(64), nullable=False)
    updated_at: Mapped[int] = mapped_column(Epoch, nullable=False, default=now)
