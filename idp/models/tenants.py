"""Tenants: the companies and service providers that own users and portals."""

from __future__ import annotations

from sqlalchemy import Boolean, Integer, String, true
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models._types import Epoch, JSONType, now


class Tenant(db.Model):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    self_registration: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    # Branding and policies (password policy, lockout threshold, MFA policy...).
    settings: Mapped[dict] = mapped_column(JSONType, nullable=False, default=dict)
    # A disabled tenant signs nobody in and its refresh tokens stop working
    # (`idp tenant update SLUG --disable`); its data stays.
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True,
                                         server_default=true())
    created_at: Mapped[int] = mapped_column(Epoch, nullable=False, default=now)

    def __repr__(self) -> str:
        return f"<Tenant {self.slug}>"
