"""Accounts: creation, lookup and password authentication."""

from __future__ import annotations

import time

from sqlalchemy import select

from idp.extensions import db
from idp.factors.password import hash_password, needs_rehash, verify_password
from idp.models import Membership, Tenant, User
from idp.models.accounts import ROLES

MAX_EMAIL_LENGTH = 254


class AccountError(ValueError):
    pass


class InvalidCredentials(Exception):
    """One exception for every failed login reason: no enumeration."""


def normalize_email(email: str) -> str:
    return (email or "").strip().lower()


def is_plausible_email(email: str) -> bool:
    if not email or len(email) > MAX_EMAIL_LENGTH or any(c.isspace() for c in email):
        return False
    local, sep, domain = email.rpartition("@")
    return bool(sep and local and "." in domain and not domain.startswith(".")
                and not domain.endswith(".") and "@" not in local)


def get_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == normalize_email(email)))


def create_user(email: str, password: str | None = None, *, tenant: Tenant | None = None,
                role: str = "member", email_verified: bool = True, active: bool = True,
                given_name: str | None = None, family_name: str | None = None,
                locale: str | None = None) -> User:
    email = normalize_email(email)
    if not is_plausible_email(email):
        raise AccountError("invalid email address")
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if get_by_email(email):
        raise AccountError("an account with this email already exists")
    user = User(email=email, email_verified=email_verified, active=active,
                given_name=given_name, family_name=family_name, locale=locale)
    if password is not None:
        user.password_hash = hash_password(password)
        user.password_changed_at = int(time.time())
    db.session.add(user)
    db.session.flush()
    if tenant is not None:
        db.session.add(Membership(user_id=user.id, tenant_id=tenant.id, role=role))
        db.session.flush()
    return user


def authenticate(email: str, password: str) -> User:
    """Return the user, or raise InvalidCredentials for any reason at the same cost."""
    user = get_by_email(email) if is_plausible_email(normalize_email(email)) else None
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.active or not user.email_verified:
        raise InvalidCredentials()
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def memberships_for_client(user: User, client_tenant_id: int | None) -> list[Membership]:
    """Memberships this user may use at a client: its own tenant, or any for shared clients."""
    query = select(Membership).where(Membership.user_id == user.id)
    if client_tenant_id is not None:
        query = query.where(Membership.tenant_id == client_tenant_id)
    return list(db.session.scalars(query.order_by(Membership.id)))
