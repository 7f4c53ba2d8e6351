"""Self-registration at a tenant (seed 002): email + password, confirmed by a link.

* ``register`` answers the same for every valid submission: a new address gets
  an inactive account (email unverified) with a member membership and a
  ``verify_email`` link; an address that already has an account gets the
  ``account_exists_notice`` instead and nothing changes (no enumeration). The
  password is hashed on every path, so the timing says nothing either.
* An account still awaiting its confirmation (inactive, unverified, with a
  password) is re-registered: the newest submission's password replaces the
  pending one and a new link supersedes the older ones. Keeping the first
  password would let someone who pre-registers a victim's address choose the
  password the victim later activates.
* One account per address, whatever the races: ``users.email`` is unique; the
  loser of two concurrent inserts rolls back and retries as a re-registration.
* ``verify`` uses the link once and activates the account. No automatic login.
* At most ``IDP_REGISTRATION_EMAIL_LIMIT`` emails per address per hour; more
  submissions get the same answer and no email.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from idp.extensions import db
from idp.factors.password import hash_password
from idp.models import AccountToken, Membership, Tenant, User
from idp.services import account_tokens, accounts, audit, email_address
from idp.services.errors import FormError
from idp.services.links import external_url
from idp.services.password_policy import PasswordPolicy, violations

PURPOSE = "verify_email"
EMAIL_WINDOW = 3600
DEFAULT_VERIFY_TTL = 24 * 3600
DEFAULT_EMAIL_LIMIT = 5


class RegistrationClosed(Exception):
    """The tenant does not allow self-registration."""


class RegistrationError(FormError):
    """Form problems of this journey (see FormError)."""


class VerificationError(account_tokens.LinkError):
    """The link cannot be used (see account_tokens.LinkError)."""


def verify_ttl() -> int:
    return int(current_app.config.get("IDP_VERIFY_TTL", DEFAULT_VERIFY_TTL))


def is_pending(user: User) -> bool:
    """Registered by the person, never confirmed: inactive, unverified, with a password."""
    return not user.active and not user.email_verified and bool(user.password_hash) \
        and user.last_login_at is None


def policy_for(tenant: Tenant) -> PasswordPolicy:
    return PasswordPolicy.for_tenant(tenant)


def check_form(tenant: Tenant, email: str | None, password: str | None,
               confirm: str | None) -> str:
    """The normalised address, or RegistrationError listing every problem of the form."""
    errors: dict[str, str] = {}
    problems: list[str] = []
    normalized = None
    try:
        normalized = email_address.normalize(email)
    except email_address.InvalidEmail as exc:
        errors["email"] = exc.reason
    password = password if isinstance(password, str) else ""
    confirm = confirm if isinstance(confirm, str) else ""
    if not password or not confirm:
        errors["password"] = "missing"
        problems = ["missing"]
    elif password != confirm:
        errors["password"] = "mismatch"
        problems = ["mismatch"]
    else:
        problems = violations(password, policy_for(tenant), normalized)
        if problems:
            errors["password"] = "policy"
    if errors:
        raise RegistrationError(errors, problems)
    return normalized


def _email_allowed(email: str, counter=None) -> bool:
    """Count one email to this address; False past the hourly limit. Commits (database counter)."""
    limit = int(current_app.config.get("IDP_REGISTRATION_EMAIL_LIMIT", DEFAULT_EMAIL_LIMIT))
    key = "register-mail:" + hashlib.sha256(email.encode()).hexdigest()[:32]
    return accounts._counter(counter).hit(key, limit, EMAIL_WINDOW).allowed


def _login_link(tenant: Tenant | None) -> str:
    if tenant is not None:
        return external_url("registration.tenant_login", slug=tenant.slug)
    return external_url("flows.login")


def _reset_link(tenant: Tenant | None) -> str:
    if "recovery.forgot" in current_app.view_functions:
        return external_url("recovery.forgot")
    return _login_link(tenant)


def send_verification(user: User, tenant: Tenant | None) -> str:
    """Issue a verify_email link (older ones die) and queue the email. No commit."""
    from idp.mail import enqueue_message

    ttl = verify_ttl()
    raw, _row = account_tokens.issue(PURPOSE, ttl=ttl, user=user, email=user.email,
                                     tenant=tenant)
    link = external_url("registration.verify", token=raw)
    enqueue_message("verify_email", user.email, locale=user.locale, tenant=tenant, link=link,
                    expires_hours=max(1, ttl // 3600), name=user.given_name)
    return link


def send_exists_notice(user: User, tenant: Tenant | None) -> None:
    """The owner of an address that tried to register again learns it; nothing else. No commit."""
    from idp.mail import enqueue_message

    enqueue_message("account_exists_notice", user.email, locale=user.locale, tenant=tenant,
                    login_link=_login_link(tenant), reset_link=_reset_link(tenant),
                    name=user.given_name)


def _ensure_membership(user: User, tenant_id: int | None) -> None:
    if tenant_id is None:
        return
    exists = db.session.scalar(select(Membership.id).where(
        Membership.user_id == user.id, Membership.tenant_id == tenant_id))
    if exists is None:
        db.session.add(Membership(user_id=user.id, tenant_id=tenant_id, role="member"))


def _register_once(tenant: Tenant, email: str, password_hash: str, locale: str | None,
                   ip: str | None) -> str:
    """One attempt in one transaction; returns what happened (for the audit and tests)."""
    now = int(time.time())
    user = accounts.get_by_email(email)
    if user is None:
        user = User(email=email, email_verified=False, active=False, locale=locale,
                    password_hash=password_hash, password_changed_at=now)
        db.session.add(user)
        db.session.flush()  # IntegrityError here when another request won the race
        db.session.add(Membership(user_id=user.id, tenant_id=tenant.id, role="member"))
        outcome = "created"
    elif is_pending(user):
        user.password_hash = password_hash
        user.password_changed_at = now
        if locale:
            user.locale = locale
        outcome = "pending"
    else:
        send_exists_notice(user, tenant)
        audit.record("registration_existing", tenant_id=tenant.id, user_id=user.id, ip=ip)
        return "exists"
    send_verification(user, tenant)
    audit.record("registration", tenant_id=tenant.id, user_id=user.id, ip=ip, outcome=outcome)
    return outcome


@dataclass(frozen=True)
class Registration:
    email: str  # normalised
    outcome: str  # created, pending, exists, throttled: never shown to the person


def register(tenant: Tenant, email: str | None, password: str | None, confirm: str | None, *,
             locale: str | None = None, ip: str | None = None, counter=None) -> Registration:
    """Register (or answer as if) and commit.

    Raises RegistrationClosed, or RegistrationError for a form that cannot be accepted.
    The page shown afterwards must not depend on the outcome.
    """
    if not tenant.self_registration:
        raise RegistrationClosed(tenant.slug)
    normalized = check_form(tenant, email, password, confirm)
    password_hash = hash_password(password)  # on every path: same cost for known addresses
    if not _email_allowed(normalized, counter):
        db.session.rollback()
        return Registration(normalized, "throttled")
    for attempt in range(3):
        try:
            outcome = _register_once(tenant, normalized, password_hash, locale, ip)
            db.session.commit()
            return Registration(normalized, outcome)
        except IntegrityError:
            db.session.rollback()  # a concurrent registration of this address won
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def resend(tenant: Tenant, email: str | None, *, counter=None) -> str:
    """A new link for an account still awaiting confirmation; otherwise nothing. Commits."""
    try:
        normalized = email_address.normalize(email)
    except email_address.InvalidEmail:
        return "invalid"
    if not _email_allowed(normalized, counter):
        db.session.rollback()
        return "throttled"
    user = accounts.get_by_email(normalized)
    if user is None or not is_pending(user):
        db.session.rollback()
        return "nothing"
    send_verification(user, tenant)
    db.session.commit()
    return "sent"


def check_link(raw: str | None) -> AccountToken:
    """The live verify_email link, without using it (GET renders a confirm button)."""
    return account_tokens.peek_as(VerificationError, PURPOSE, raw)


def verify(raw: str | None, *, ip: str | None = None) -> tuple[User, Tenant | None]:
    """Use the link once: the address is verified and the account active. Commits."""
    row = check_link(raw)
    user = db.session.get(User, row.user_id) if row.user_id is not None else None
    if user is None or user.email != row.email:
        raise VerificationError("account changed")
    try:
        account_tokens.consume(PURPOSE, raw)
    except account_tokens.LinkError as exc:
        db.session.rollback()
        raise VerificationError(str(exc)) from exc
    tenant = db.session.get(Tenant, row.tenant_id) if row.tenant_id is not None else None
    if not user.email_verified:
        user.email_verified = True
        user.active = True
    _ensure_membership(user, row.tenant_id)
    audit.record("email_verified", tenant_id=row.tenant_id, user_id=user.id, ip=ip)
    db.session.commit()
    return user, tenant
