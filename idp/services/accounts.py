"""Accounts: creation, lookup, password authentication, lockout and setting a password.

Lockout (seed 004): consecutive failed logins are counted per account, across
IPs, with the shared throttle counter (key ``acct:<user_id>``, database or
Redis, so every worker and node sees the same count). Reaching the strictest
threshold of the user's tenants sets ``locked_at`` and emails a reset link; a
password reset clears both. Every failed login, whatever the reason, does the
same work (one password hash, one counter hit), so the answer and its timing
do not tell an unknown address from a locked, disabled or unverified account.
"""

from __future__ import annotations

import hashlib
import time

from flask import current_app
from sqlalchemy import select

from idp.extensions import db
from idp.factors.password import hash_password, needs_rehash, verify_password
from idp.models import Membership, Tenant, User
from idp.models.accounts import ROLES
from idp.services.password_policy import PasswordPolicy, violations

MAX_EMAIL_LENGTH = 254
LOCKOUT_THRESHOLD_RANGE = (3, 100)


class AccountError(ValueError):
    pass


class WeakPassword(AccountError):
    """The new password breaks the policy; ``problems`` lists the rule codes, in page order."""

    def __init__(self, problems: list[str]):
        super().__init__("password policy: " + ", ".join(problems))
        self.problems = problems


class InvalidCredentials(Exception):
    """One exception for every failed login reason: no enumeration.

    ``user_id`` is for the audit log only, never for the person signing in.
    """

    def __init__(self, user_id: int | None = None):
        super().__init__("invalid credentials")
        self.user_id = user_id


def normalize_email(email: str) -> str:
    """The stored form (IDNA domains in ASCII); malformed input is only trimmed and lowered,
    so a lookup of it finds nothing but costs the same."""
    from idp.services.email_address import InvalidEmail, normalize

    try:
        return normalize(email)
    except InvalidEmail:
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


def tenants_of(user: User) -> list[Tenant]:
    return [m.tenant for m in user.memberships if m.tenant is not None]


def password_policy_for(user: User | None = None, tenants=()) -> PasswordPolicy:
    """The strictest policy of the user's tenants (and any given ones), else the default."""
    every = list(tenants) + (tenants_of(user) if user is not None else [])
    policies = [PasswordPolicy.for_tenant(t) for t in every] or [PasswordPolicy()]
    return PasswordPolicy(
        min_length=max(p.min_length for p in policies),
        require_upper=any(p.require_upper for p in policies),
        require_lower=any(p.require_lower for p in policies),
        require_digit=any(p.require_digit for p in policies),
        require_symbol=any(p.require_symbol for p in policies))


def set_password(user: User, password: str, policy: PasswordPolicy | None = None) -> None:
    """Check the policy server side, then hash (argon2id) and store; clears a lock."""
    policy = policy or password_policy_for(user)
    problems = violations(password if isinstance(password, str) else "", policy, user.email)
    if problems:
        raise WeakPassword(problems)
    user.password_hash = hash_password(password)
    user.password_changed_at = int(time.time())
    user.locked_at = None


# ----------------------------------------------------------------------------- lockout


def lockout_threshold(user: User) -> int:
    """The strictest ``lockout_threshold`` of the user's tenants, else IDP_LOCKOUT_THRESHOLD."""
    low, high = LOCKOUT_THRESHOLD_RANGE
    values = [current_app.config["IDP_LOCKOUT_THRESHOLD"]]
    for tenant in tenants_of(user):
        value = (tenant.settings or {}).get("lockout_threshold")
        if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
            values.append(value)
    return min(values)


def failure_key(user_id: int) -> str:
    return f"acct:{user_id}"


def _counter(counter=None):
    from idp.services.throttle import counter_for

    return counter if counter is not None else counter_for(current_app)


def clear_failures(user_id: int, counter=None) -> None:
    """Forget the consecutive failures (after a success or a reset). Commits (database counter)."""
    _counter(counter).reset(failure_key(user_id), current_app.config["IDP_LOCKOUT_WINDOW"])


def _record_failure(user: User | None, email: str, ip: str | None, counter) -> None:
    """Count a failed login; lock the account on reaching its threshold (once)."""
    window = current_app.config["IDP_LOCKOUT_WINDOW"]
    if user is None:
        # Same work as for a real account, under a key no account can have.
        key = "acct:?" + hashlib.sha256(email.encode("utf-8", "replace")).hexdigest()[:32]
        _counter(counter).hit(key, 1, window)
        return
    threshold = lockout_threshold(user)
    decision = _counter(counter).hit(failure_key(user.id), threshold, window)
    if decision.count >= threshold and user.locked_at is None and user.active \
            and user.password_hash:
        lock_account(user, ip=ip)
        db.session.commit()


def lock_account(user: User, *, ip: str | None = None, actor_id: int | None = None) -> None:
    """Lock and email how to unlock (a reset link). Adds to the session; the caller commits."""
    from idp.services import audit, recovery

    user.locked_at = int(time.time())
    tenant = next(iter(tenants_of(user)), None)
    audit.record("account_locked", tenant_id=tenant.id if tenant else None, user_id=user.id,
                 actor_id=actor_id, ip=ip)
    recovery.send_locked_notice(user, tenant)


def authenticate(email: str, password: str, *, ip: str | None = None, counter=None) -> User:
    """Return the user, or raise InvalidCredentials for any reason at the same cost.

    Unknown, wrong password, locked, disabled, unverified: one exception, one
    hash, one counter hit. A success clears the account's failure count.
    """
    normalized = normalize_email(email)
    user = get_by_email(normalized) if is_plausible_email(normalized) else None
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.active or not user.email_verified \
            or user.locked_at is not None:
        _record_failure(user, normalized, ip, counter)
        raise InvalidCredentials(user.id if user is not None else None)
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = int(time.time())
    clear_failures(user.id, counter)
    return user


def memberships_for_client(user: User, client_tenant_id: int | None) -> list[Membership]:
    """Memberships this user may use at a client: its own tenant, or any for shared clients."""
    query = select(Membership).where(Membership.user_id == user.id)
    if client_tenant_id is not None:
        query = query.where(Membership.tenant_id == client_tenant_id)
    return list(db.session.scalars(query.order_by(Membership.id)))
