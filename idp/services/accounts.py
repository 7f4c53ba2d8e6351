"""Accounts: creation, lookup, password authentication, lockout and setting a password.

Lockout (seed 004, issue 6): failed logins are counted per account, across
IPs, in a sliding window (IDP_LOCKOUT_WINDOW, 24 h) of the shared throttle
counter (key ``acct:<user_id>``, database or Redis, so every worker and node
sees the same count). Reaching the strictest threshold of the user's tenants
locks the account for IDP_LOCKOUT_DURATION (15 min), each further lock in a row
twice as long, capped at IDP_LOCKOUT_MAX_DURATION (24 h); the lock ends by
itself, and a success after it (or a password reset) ends the escalation. The
owner gets an email saying when it ends, with a reset link, built after the
response. Every failed login, whatever the reason, does the same work (one
password hash, one counter hit), so the answer and its timing do not tell an
unknown address from a locked, disabled or unverified account.
"""

from __future__ import annotations

import hashlib
import time

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from idp.extensions import db
from idp.factors.password_hash import hash_password, needs_rehash, verify_password
from idp.models import Membership, Tenant, User
from idp.models.accounts import ROLES
from idp.services import audit, deferred, email_address
from idp.services.links import external_url
from idp.services.password_policy import PasswordPolicy, violations

LOCKOUT_THRESHOLD_RANGE = (3, 100)


class AccountError(ValueError):
    pass


class DuplicateEmail(AccountError):
    """The address already has an account (one account per address)."""


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
    so a lookup of it finds nothing."""
    try:
        return email_address.normalize(email)
    except email_address.InvalidEmail:
        return (email or "").strip().lower()


def valid_email(email: str | None) -> str:
    """The stored form of an address for a new account or membership, else AccountError."""
    try:
        return email_address.normalize(email)
    except email_address.InvalidEmail as exc:
        raise AccountError("invalid email address") from exc


def get_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == normalize_email(email)))


def create_user(email: str, password: str | None = None, *, tenant: Tenant | None = None,
                role: str = "member", email_verified: bool = True, active: bool = True,
                given_name: str | None = None, family_name: str | None = None,
                locale: str | None = None, password_hash: str | None = None,
                last_login_at: int | None = None) -> User:
    """The one way a user is created (CLI, invitations, registration, company sign-up).

    ``password`` is hashed here; ``password_hash`` is one hashed already (the
    journeys hash on every path so their timing says nothing). Raises
    AccountError (DuplicateEmail for a taken address); a concurrent insert of the
    same address raises IntegrityError at the flush. Adds to the session; the
    caller commits.
    """
    email = valid_email(email)
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if get_by_email(email):
        raise DuplicateEmail("an account with this email already exists")
    if password is not None:
        password_hash = hash_password(password)
    user = User(email=email, email_verified=email_verified, active=active,
                given_name=given_name, family_name=family_name, locale=locale,
                password_hash=password_hash, last_login_at=last_login_at,
                password_changed_at=int(time.time()) if password_hash else None)
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
    unlock(user)


def finish_password_change(user: User, event: str, *, ip: str | None = None) -> None:
    """Everything that follows a new password: sessions, tokens and trusted browsers die,
    audit, notice.

    Adds to the session; the caller commits. Used by the reset, the invitation
    and the registration journeys.
    """
    from idp.mail import enqueue_message
    from idp.services.sessions import revoke_user_sessions
    from idp.services.tokens import revoke_user_tokens
    from idp.services.trusted_browsers import revoke_all as revoke_trusted_browsers

    unlock(user)
    revoke_user_sessions(user.id)
    revoke_user_tokens(user.id)
    revoke_trusted_browsers(user.id)
    tenant = next(iter(tenants_of(user)), None)
    audit.record(event, tenant_id=tenant.id if tenant else None, user_id=user.id, ip=ip)
    enqueue_message("password_changed", user.email, locale=user.locale, tenant=tenant,
                    when=int(time.time()), reset_link=external_url("recovery.forgot"))


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


def lock_duration(lockouts: int) -> int:
    """Seconds of the ``lockouts``-th lock in a row: IDP_LOCKOUT_DURATION, doubling, capped."""
    config = current_app.config
    base, cap = config["IDP_LOCKOUT_DURATION"], config["IDP_LOCKOUT_MAX_DURATION"]
    return min(cap, base * 2 ** min(max(lockouts, 1) - 1, 32))


def is_locked(user: User, now: float | None = None) -> bool:
    """Locked until ``locked_until``; the lock ends by itself."""
    now = time.time() if now is None else now
    return user.locked_until is not None and user.locked_until > now


def failure_key(user_id: int) -> str:
    return f"acct:{user_id}"


def _counter(counter=None):
    from idp.services.throttle import counter_for

    return counter if counter is not None else counter_for(current_app)


def clear_failures(user_id: int, counter=None) -> None:
    """Forget the recent failures (after a success or a reset): in the counter's own
    transaction, not the caller's (services/throttle.py)."""
    _counter(counter).reset(failure_key(user_id), current_app.config["IDP_LOCKOUT_WINDOW"])


def unlock(user: User) -> None:
    """End any lock and its escalation (a success, a reset). Adds to the session; no commit."""
    user.locked_at = user.locked_until = None
    user.lockouts = 0


def _record_failure(user: User | None, email: str, ip: str | None, counter, now: int) -> None:
    """Count a failed login in the sliding window; lock on reaching the threshold.

    Failures while locked count too, so the first failure after a lock ends
    locks again, for twice as long, until a success or a reset.
    """
    window = current_app.config["IDP_LOCKOUT_WINDOW"]
    if user is None:
        # Same work as for a real account, under a key no account can have.
        key = "acct:?" + hashlib.sha256(email.encode("utf-8", "replace")).hexdigest()[:32]
        _counter(counter).hit(key, 1, window, now=now)
        return
    threshold = lockout_threshold(user)
    decision = _counter(counter).hit(failure_key(user.id), threshold, window, now=now)
    if decision.count >= threshold and not is_locked(user, now) and user.active \
            and user.password_hash:
        lock_account(user, ip=ip, now=now)


def lock_account(user: User, *, ip: str | None = None, actor_id: int | None = None,
                 now: float | None = None) -> None:
    """Lock for the next duration of the escalation, audit, and email when it ends.

    Adds to the session; the caller commits. The email (a reset link, the
    rendering) is built after the response (services/deferred.py), so the
    attempt that locks costs what any failure costs.
    """
    now = int(time.time() if now is None else now)
    user.lockouts = (user.lockouts or 0) + 1
    user.locked_at = now
    user.locked_until = now + lock_duration(user.lockouts)
    tenant = next(iter(tenants_of(user)), None)
    audit.record("account_locked", tenant_id=tenant.id if tenant else None, user_id=user.id,
                 actor_id=actor_id, ip=ip, until=user.locked_until)
    deferred.defer("account_locked_notice", user_id=user.id, locked_until=user.locked_until)


def authenticate(email: str, password: str, *, ip: str | None = None, counter=None,
                 now: float | None = None) -> User:
    """Return the user, or raise InvalidCredentials for any reason at the same cost.

    Unknown, wrong password, locked, disabled, unverified: one exception, one
    hash, one counter hit. A success clears the failure count and any lock
    escalation. ``now`` (epoch seconds) is for tests.
    """
    now = int(time.time() if now is None else now)
    normalized = normalize_email(email)
    user = get_by_email(normalized) if email_address.is_valid(normalized) else None
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.active or not user.email_verified \
            or is_locked(user, now):
        _record_failure(user, normalized, ip, counter, now)
        raise InvalidCredentials(user.id if user is not None else None)
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = now
    if user.lockouts or user.locked_until is not None:
        unlock(user)
    clear_failures(user.id, counter)
    return user


def memberships_for_client(user: User, client_tenant_id: int | None) -> list[Membership]:
    """Memberships this user may use at a client: its own tenant, or any for shared clients."""
    query = select(Membership).options(joinedload(Membership.tenant)).where(
        Membership.user_id == user.id)
    if client_tenant_id is not None:
        query = query.where(Membership.tenant_id == client_tenant_id)
    return list(db.session.scalars(query.order_by(Membership.id)))
