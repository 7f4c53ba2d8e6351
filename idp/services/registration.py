"""Self-registration at a tenant (seed 002): email + password, confirmed by a link.

* ``register`` answers the same for every valid submission: a new address gets
  an inactive account (email unverified, no membership yet) and a
  ``verify_email`` link; an address that already has an account gets the
  ``account_exists_notice`` instead and nothing changes (no enumeration). The
  password is hashed on every path, so the timing says nothing either.
* Pre-account takeover (issue 6): anyone can register any address, so neither a
  registration nor its link alone makes an account anyone's.

  - Registering a *pending* address again (inactive, unverified, with a
    password) changes nothing: not the password, not the earlier links. It
    mails one more link (same page, same status as a new registration). Every
    link stays valid until it expires or one of them is used; then all die.
  - Following a link never activates by itself. Its page asks for the password
    chosen at registration (``confirm_with_password``: each attempt counts on
    the account's failed-login counter, the login page's, so at most the
    lockout threshold of guesses) or lets the clicker choose a new one
    (``confirm_with_new_password``): the clicker holds the mailbox, so replacing
    the pending password is safe, and that is how the owner takes back an
    address someone pre-registered, or finishes after forgetting the password.
  - The membership of the link's tenant comes with the confirmation, never
    with an unconfirmed registration: a registration by someone else at
    another tenant does not make the owner a member there.
  - Company sign-up and invitations may finish a pending account too (their
    link proves the mailbox and the password is chosen after it); its
    registration links then stop working (``check_link`` wants a pending account).
* One account per address, whatever the races: ``users.email`` is unique; the
  loser of two concurrent inserts rolls back and retries as a re-registration.
* No automatic login after the confirmation: the person signs in (MFA included).
* At most ``IDP_REGISTRATION_EMAIL_LIMIT`` emails per address per hour; more
  submissions get the same answer and no email.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from idp.extensions import db
from idp.factors.password_hash import hash_password, verify_password
from idp.models import Membership, Tenant, User
from idp.services import account_tokens, accounts, audit, email_address
from idp.services.errors import FormError
from idp.services.links import external_url
from idp.services.password_policy import MAX_LENGTH, PasswordPolicy, violations

PURPOSE = "verify_email"
EMAIL_WINDOW = 3600


class RegistrationClosed(Exception):
    """The tenant does not allow self-registration."""


class RegistrationError(FormError):
    """Form problems of this journey (see FormError)."""


class VerificationError(account_tokens.LinkError):
    """The link cannot be used (see account_tokens.LinkError), or its account is no longer
    waiting for a confirmation."""


class WrongPassword(Exception):
    """Not the password chosen at registration (counted like a failed login)."""


class TooManyAttempts(Exception):
    """The account's failed-login count reached its lockout threshold: the password is
    not checked any more, choosing a new one still works."""


def verify_ttl() -> int:
    return current_app.config["IDP_VERIFY_TTL"]


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
    """Count one email to this address; False past the hourly limit. The count is kept in
    the counter's own transaction (it survives a rollback of the caller's)."""
    limit = current_app.config["IDP_REGISTRATION_EMAIL_LIMIT"]
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
    """Issue one more verify_email link (older ones stay valid) and queue the email. No commit."""
    from idp.mail import enqueue_message

    ttl = verify_ttl()
    raw, _row = account_tokens.issue(PURPOSE, ttl=ttl, user=user, email=user.email,
                                     tenant=tenant, supersede=False)
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
        db.session.flush()
        db.session.refresh(user, ["memberships"])


def _register_once(tenant: Tenant, email: str, password_hash: str, locale: str | None,
                   ip: str | None) -> str:
    """One attempt in one transaction; returns what happened (for the audit and tests)."""
    user = accounts.get_by_email(email)
    if user is None:
        # IntegrityError or DuplicateEmail here when another request won the race.
        user = accounts.create_user(email, password_hash=password_hash, email_verified=False,
                                    active=False, locale=locale)
        outcome = "created"
    elif is_pending(user):
        outcome = "pending"  # nothing changes but one more link: the first password stays
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
        except (IntegrityError, accounts.DuplicateEmail):
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


@dataclass(frozen=True)
class PendingLink:
    """A live verify_email link and the account still waiting for it."""

    user: User
    tenant: Tenant | None
    email: str


def check_link(raw: str | None) -> PendingLink:
    """The live link and its pending account, without using it (GET renders the page)."""
    row = account_tokens.peek_as(VerificationError, PURPOSE, raw)
    user = db.session.get(User, row.user_id) if row.user_id is not None else None
    if user is None or user.email != row.email or not is_pending(user):
        raise VerificationError("account changed or already confirmed")
    tenant = db.session.get(Tenant, row.tenant_id) if row.tenant_id is not None else None
    return PendingLink(user, tenant, row.email)


def link_policy(link: PendingLink) -> PasswordPolicy:
    """The policy a new password chosen on the link's page must meet."""
    return accounts.password_policy_for(link.user, [link.tenant] if link.tenant else [])


def _attempt_allowed(user: User, counter=None) -> bool:
    """Count one password attempt on the account's failed-login counter (shared with the
    login page, across IPs); False past the account's lockout threshold. The count
    is kept in the counter's own transaction; a success clears it."""
    decision = accounts._counter(counter).hit(
        accounts.failure_key(user.id), accounts.lockout_threshold(user),
        current_app.config["IDP_LOCKOUT_WINDOW"])
    return decision.allowed


def _locked_pending_user(link: PendingLink) -> User:
    """The account, row-locked so two links used at once activate it once; still pending."""
    user = db.session.scalar(select(User).where(User.id == link.user.id).with_for_update()
                             .execution_options(populate_existing=True))
    if user is None or user.email != link.email or not is_pending(user):
        db.session.rollback()
        raise VerificationError("account changed or already confirmed")
    return user


def _activate(raw: str, user: User, link: PendingLink, ip: str | None) -> None:
    """Use this link, kill the others, activate with the membership of the link's tenant.
    No commit."""
    try:
        account_tokens.consume_as(VerificationError, PURPOSE, raw)
    except VerificationError:
        db.session.rollback()
        raise
    account_tokens.revoke(PURPOSE, user=user)
    user.email_verified = True
    user.active = True
    tenant_id = link.tenant.id if link.tenant is not None else None
    _ensure_membership(user, tenant_id)
    audit.record("email_verified", tenant_id=tenant_id, user_id=user.id, ip=ip)


def confirm_with_password(raw: str | None, password: str | None, *, ip: str | None = None,
                          counter=None) -> PendingLink:
    """Finish with the password chosen at registration. Commits.

    Raises VerificationError (link), TooManyAttempts (before checking) or WrongPassword.
    """
    link = check_link(raw)
    if not _attempt_allowed(link.user, counter):
        raise TooManyAttempts(link.user.id)
    typed = password if isinstance(password, str) and len(password) <= MAX_LENGTH else ""
    if not verify_password(link.user.password_hash, typed):
        audit.record("registration_wrong_password", user_id=link.user.id, ip=ip)
        db.session.commit()
        raise WrongPassword(link.user.id)
    user = _locked_pending_user(link)
    _activate(raw, user, link, ip)
    db.session.commit()
    accounts.clear_failures(user.id, counter)
    return link


def confirm_with_new_password(raw: str | None, password: str, *, ip: str | None = None,
                              counter=None) -> PendingLink:
    """Finish by choosing a new password (the clicker holds the mailbox). Commits.

    Raises VerificationError (link) or accounts.WeakPassword (nothing changed, the
    link still works). The password_changed notice is queued, as after a reset.
    """
    link = check_link(raw)
    policy = link_policy(link)
    user = _locked_pending_user(link)
    try:
        accounts.set_password(user, password, policy)
    except accounts.WeakPassword:
        db.session.rollback()
        raise
    _activate(raw, user, link, ip)
    accounts.finish_password_change(user, "registration_password_chosen", ip=ip)
    db.session.commit()
    accounts.clear_failures(user.id, counter)
    return link
