"""Accounts created by an operator and completed by the person (seeds 000, 001).

``invite_user`` creates an inactive account (no password, email unverified)
with its membership, and queues the bilingual welcome email whose "Complete
Registration" link (purpose ``invite``, IDP_INVITE_TTL, 72 h by default) opens
the set-password page. ``complete_invitation`` checks the tenant's password
policy, uses the link once, activates the account, marks the email verified
(following the link proved it) and queues the password_changed notice. It does
not sign the person in: they sign in like everyone else, second factor included.

An address that already has an account never gets a second one: the account
gains the membership and its owner a notice (or, if the account was never
activated, a fresh welcome link). Never activated includes a self-registration
still waiting for its confirmation, perhaps made by someone else with their own
password (issue 6): the invitee's link sets the password and that one is gone.

Nothing here commits except ``complete_invitation``; callers commit the account
and its outbox rows together.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select

from idp.extensions import db
from idp.models import AccountToken, Tenant, User
from idp.models.accounts import ROLES
from idp.services import account_tokens, accounts, audit, memberships
from idp.services.links import external_url

PURPOSE = "invite"


class InvitationError(account_tokens.LinkError):
    """The invitation cannot be sent or completed; ``expired`` tells an old link apart."""


@dataclass
class Invitation:
    user: User
    created: bool  # False: the address already had an account
    link: str | None = None  # the Complete Registration link, when one was sent


def _welcome(user: User, tenant: Tenant | None) -> str:
    """Issue a fresh invite link (older ones die) and queue the welcome email."""
    from idp.mail import enqueue_message

    ttl = current_app.config["IDP_INVITE_TTL"]
    raw, _row = account_tokens.issue(PURPOSE, ttl=ttl, user=user, tenant=tenant)
    link = external_url("invitation.complete", token=raw)
    enqueue_message("welcome", user.email, locale=user.locale, tenant=tenant,
                    link=link, expires_hours=max(1, ttl // 3600), user_email=user.email,
                    name=user.given_name)
    return link


def invite_user(tenant: Tenant, email: str, role: str = "member", invited_by: User | None = None,
                *, given_name: str | None = None, family_name: str | None = None,
                locale: str | None = None) -> Invitation:
    """Create (or reuse) the account, add the membership, queue the email. The caller commits."""
    if role not in ROLES:
        raise accounts.AccountError(f"role must be one of {', '.join(ROLES)}")
    email = accounts.valid_email(email)
    actor_id = invited_by.id if invited_by is not None else None
    existing = accounts.get_by_email(email)
    if existing is None:
        user = accounts.create_user(email, None, tenant=tenant, role=role, email_verified=False,
                                    active=False, given_name=given_name,
                                    family_name=family_name, locale=locale)
        link = _welcome(user, tenant)
        audit.record("user_invited", tenant_id=tenant.id, user_id=user.id, actor_id=actor_id,
                     role=role)
        return Invitation(user, True, link)
    _add_membership(existing, tenant, role)
    audit.record("user_invited", tenant_id=tenant.id, user_id=existing.id, actor_id=actor_id,
                 role=role, existing=True)
    if _pending(existing):
        return Invitation(existing, False, _welcome(existing, tenant))
    if existing.active:
        _notice(existing, tenant)
    return Invitation(existing, False)


def awaiting_activation(user: User) -> bool:
    """An account invited (or self-registered) and never activated: inviting it again sends
    a fresh welcome link instead of refusing."""
    return _pending(user)


def _pending(user: User) -> bool:
    """Never activated: inactive, email never verified, never signed in (invited and not
    completed, or self-registered and not confirmed). A disabled account is not pending."""
    return not user.active and not user.email_verified and user.last_login_at is None


def _add_membership(user: User, tenant: Tenant, role: str) -> None:
    memberships.add(user, tenant, role)


def _notice(user: User, tenant: Tenant) -> None:
    """The owner of an existing account learns they were added: sign in or reset."""
    from idp.mail import enqueue_message

    enqueue_message("added_to_tenant", user.email, locale=user.locale, tenant=tenant,
                    login_link=external_url("flows.login"),
                    reset_link=external_url("recovery.forgot"))


def resend_invitation(user: User, tenant: Tenant | None = None) -> str:
    """A new Complete Registration link (the older ones die). The caller commits."""
    if not _pending(user):
        raise InvitationError("the invitation was already completed")
    if tenant is None:
        last = db.session.scalar(select(AccountToken).where(
            AccountToken.user_id == user.id, AccountToken.purpose == PURPOSE)
            .order_by(AccountToken.id.desc()).limit(1))
        tenant = db.session.get(Tenant, last.tenant_id) if last and last.tenant_id else None
        tenant = tenant or next(iter(accounts.tenants_of(user)), None)
    audit.record("invitation_resent", tenant_id=tenant.id if tenant else None, user_id=user.id)
    return _welcome(user, tenant)


def check_link(raw: str | None) -> tuple[User, Tenant | None]:
    """The invited account (and tenant) behind a live link, without using it."""
    row = account_tokens.peek_as(InvitationError, PURPOSE, raw)
    user = db.session.get(User, row.user_id) if row.user_id is not None else None
    if user is None or not _pending(user):
        raise InvitationError("no pending account")
    tenant = db.session.get(Tenant, row.tenant_id) if row.tenant_id is not None else None
    return user, tenant


def complete_invitation(raw: str | None, password: str, *, ip: str | None = None) -> User:
    """Set the first password and activate the account. Commits.

    Raises InvitationError (bad link) or accounts.WeakPassword (nothing changed,
    the link still works). No session is created here.
    """
    user, tenant = check_link(raw)
    accounts.set_password(user, password, accounts.password_policy_for(user, [tenant] if tenant
                                                                       else []))
    try:
        account_tokens.consume_as(InvitationError, PURPOSE, raw)
    except InvitationError:
        db.session.rollback()
        raise
    user.active = True
    user.email_verified = True
    accounts.finish_password_change(user, "invitation_completed", ip=ip)
    db.session.commit()
    accounts.clear_failures(user.id)
    return user


def policy_for_link(user: User, tenant: Tenant | None):
    """The policy the set-password page shows: the one complete_invitation checks."""
    return accounts.password_policy_for(user, [tenant] if tenant else [])
