"""People and their memberships in tenants."""

from __future__ import annotations

import uuid

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint, event, inspect
from sqlalchemy.orm import Mapped, mapped_column, relationship

from idp.extensions import db
from idp.models._types import Epoch, JSONType, now

ROLES = ("super_admin", "admin", "member")


def new_subject() -> str:
    """A stable, opaque subject: never the email, never the row id."""
    return str(uuid.uuid4())


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sub: Mapped[str] = mapped_column(String(64), unique=True, nullable=False, default=new_subject)
    # Stored lower-cased; one globally unique address per person.
    email: Mapped[str] = mapped_column(String(320), unique=True, nullable=False)
    email_verified: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    given_name: Mapped[str | None] = mapped_column(String(100))
    family_name: Mapped[str | None] = mapped_column(String(100))
    locale: Mapped[str | None] = mapped_column(String(10))
    phone_number: Mapped[str | None] = mapped_column(String(32))
    phone_number_verified: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[int] = mapped_column(Epoch, nullable=False, default=now)
    # When the person's own information last changed (OIDC's updated_at claim): moved by
    # _profile_changed below, not by a login's or a lockout's bookkeeping.
    updated_at: Mapped[int] = mapped_column(Epoch, nullable=False, default=now)
    password_changed_at: Mapped[int | None] = mapped_column(Epoch)
    # Lockout (services/accounts.py): when the current or last lock began and when it ends
    # by itself; ``lockouts`` counts the locks in a row (each one lasts twice the previous);
    # a successful login after a lock, or a password reset, clears all three.
    locked_at: Mapped[int | None] = mapped_column(Epoch)
    locked_until: Mapped[int | None] = mapped_column(Epoch)
    lockouts: Mapped[int] = mapped_column(Integer, nullable=False, default=0,
                                          server_default="0")
    last_login_at: Mapped[int | None] = mapped_column(Epoch)

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    @property
    def name(self) -> str | None:
        parts = [p for p in (self.given_name, self.family_name) if p]
        return " ".join(parts) or None

    def __repr__(self) -> str:
        return f"<User {self.id}>"


# The columns that are the person's information (the profile, email and phone claims).
PROFILE_COLUMNS = ("email", "email_verified", "given_name", "family_name", "locale",
                   "phone_number", "phone_number_verified")


@event.listens_for(User, "before_update")
def _profile_changed(_mapper, _connection, user: User) -> None:
    """``updated_at`` moves with the profile, so that a relying party that compares it
    refreshes what it holds only when there is something new."""
    state = inspect(user)
    if state.attrs.updated_at.history.has_changes():
        return  # set by the caller
    if any(state.attrs[name].history.has_changes() for name in PROFILE_COLUMNS):
        user.updated_at = now()


class Membership(db.Model):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "tenant_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False, index=True
    )
    role: Mapped[str] = mapped_column(String(20), nullable=False, default="member")
    created_at: Mapped[int] = mapped_column(Epoch, nullable=False, default=now)

    user: Mapped[User] = relationship(back_populates="memberships")
    tenant = relationship("Tenant")


TOKEN_PURPOSES = ("invite", "verify_email", "reset_password", "email_change", "company_signup")


class AccountToken(db.Model):
    """A single-use link sent by email: invitation, verification, reset, email change.

    Only the SHA-256 of the token is stored. A newer token of the same purpose
    for the same user supersedes the older ones, except for registration and
    company sign-up links, which all stay valid until one is used
    (services/account_tokens.py).
    """

    __tablename__ = "account_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    purpose: Mapped[str] = mapped_column(String(32), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    # The address the link was sent to (sign-up before an account exists, email change).
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    data: Mapped[dict] = mapped_column(JSONType, nullable=False, default=dict)
    created_at: Mapped[int] = mapped_column(Epoch, nullable=False, default=now)
    expires_at: Mapped[int] = mapped_column(Epoch, nullable=False)
    used_at: Mapped[int | None] = mapped_column(Epoch)
