"""Company sign-up (seed 004): a new tenant and its super-administrator.

1. ``request_signup``: email + confirmation. A new address gets a single-use
   ``company_signup`` link (``verify_email`` message); an address that already
   has an account gets ``account_exists_notice`` instead: one address never
   registers a second user or company (it can be invited into other
   companies). Same answer either way; at most IDP_REGISTRATION_EMAIL_LIMIT
   emails per address per hour.
2. ``check_company``: name, identification type and number, contact phone
   (``services.company_identity``); kept in the flow until the end.
3. ``complete``: names, password, language. One transaction uses the link,
   creates the tenant (slug from the name, unique), the user (active, email
   verified: following the link proved it) and a super_admin membership.
   The company details live in ``Tenant.settings``.

Companies created this way do not accept self-registration until their
super-administrator turns it on: people join a company by invitation.

Pre-account takeover (issue 6): the link proves the mailbox and the password is
chosen after it, so whoever asks for a sign-up, only the mailbox's holder
finishes it. Asking again never kills the links already sent (anyone could
otherwise break the owner's sign-up in progress); once one link finishes, every
link of the address dies. An address with a *pending* self-registration
(``registration.is_pending``: perhaps someone else's, with their password) is
treated as new: step 1 mails the link, and step 3 makes that account the
owner's (the password chosen here, email verified, its registration links
dead) instead of refusing the owner their own address.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from idp.extensions import db
from idp.factors.password_hash import hash_password
from idp.models import AccountToken, Membership, Tenant, User
from idp.services import account_tokens, accounts, audit, company_identity, email_address
from idp.services.errors import FormError
from idp.services.links import external_url
from idp.services.password_policy import PasswordPolicy, violations
from idp.services.registration import PURPOSE as VERIFY_PURPOSE
from idp.services.registration import _email_allowed, is_pending, send_exists_notice

PURPOSE = "company_signup"
LOCALES = ("en", "fr")
MAX_PERSON_NAME = 100


class SignupError(FormError):
    """Form problems of this journey (see FormError)."""


class SignupLinkError(account_tokens.LinkError):
    """The link cannot be used (see account_tokens.LinkError)."""


class EmailTaken(Exception):
    """The address got an account while the sign-up was in progress (its owner is asking)."""


@dataclass
class Company:
    company_name: str
    identification_type: str
    identification_number: str
    contact_phone: str

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def signup_ttl() -> int:
    return current_app.config["IDP_SIGNUP_TTL"]


def password_policy() -> PasswordPolicy:
    """A new company has no policy of its own yet: the default one."""
    return PasswordPolicy()


# ----------------------------------------------------------------------------- step 1


def check_email(email: str | None, confirm: str | None) -> str:
    try:
        normalized = email_address.normalize(email)
    except email_address.InvalidEmail as exc:
        raise SignupError({"email": exc.reason}) from exc
    try:
        confirmed = email_address.normalize(confirm)
    except email_address.InvalidEmail:
        confirmed = None
    if confirmed != normalized:
        raise SignupError({"confirm_email": "mismatch"})
    return normalized


def request_signup(email: str | None, confirm: str | None, *, locale: str | None = None,
                   ip: str | None = None, counter=None) -> str:
    """Mail the link (or the notice). Commits. Returns link_sent, exists or throttled."""
    normalized = check_email(email, confirm)
    if not _email_allowed(normalized, counter):
        db.session.rollback()
        return "throttled"
    user = accounts.get_by_email(normalized)
    if user is not None and not is_pending(user):
        send_exists_notice(user, None)
        audit.record("company_signup_existing", user_id=user.id, ip=ip)
        db.session.commit()
        return "exists"
    from idp.mail import enqueue_message

    ttl = signup_ttl()
    raw, _row = account_tokens.issue(PURPOSE, ttl=ttl, email=normalized,
                                     data={"locale": locale} if locale else None,
                                     supersede=False)
    enqueue_message("verify_email", normalized, locale=locale,
                    link=external_url("company_signup.resume", token=raw),
                    expires_hours=max(1, ttl // 3600))
    audit.record("company_signup_requested", ip=ip)
    db.session.commit()
    return "link_sent"


def check_link(raw: str | None) -> AccountToken:
    """The live sign-up link, without using it."""
    return account_tokens.peek_as(SignupLinkError, PURPOSE, raw)


def live_link(token_id: int) -> AccountToken:
    """The link a flow in progress was started from, if still usable."""
    with account_tokens.raised_as(SignupLinkError):
        return account_tokens.peek_id(PURPOSE, token_id)


# ----------------------------------------------------------------------------- step 2


def check_company(name: str | None, id_type: str | None, id_number: str | None,
                  phone: str | None) -> Company:
    errors: dict[str, str] = {}
    clean = company_identity.clean_name(name, company_identity.MAX_COMPANY_NAME)
    if clean is None:
        errors["company_name"] = "missing" if not (name or "").strip() else "invalid"
    number = None
    if id_type not in company_identity.ID_TYPES:
        errors["identification_type"] = "missing" if not id_type else "invalid"
    else:
        try:
            number = company_identity.normalize_identification(id_type, id_number)
        except company_identity.InvalidIdentification as exc:
            errors["identification_number"] = "missing" if not (id_number or "").strip() \
                else exc.reason
    e164 = None
    try:
        e164 = company_identity.normalize_phone(phone)
    except company_identity.InvalidPhone:
        errors["contact_phone"] = "missing" if not (phone or "").strip() else "invalid"
    if errors:
        raise SignupError(errors)
    return Company(clean, id_type, number, e164)


# ----------------------------------------------------------------------------- step 3


def check_person(email: str, given_name: str | None, family_name: str | None,
                 password: str | None, confirm: str | None, locale: str | None) -> dict:
    errors: dict[str, str] = {}
    problems: list[str] = []
    names = {}
    for field, value in (("given_name", given_name), ("family_name", family_name)):
        clean = company_identity.clean_name(value, MAX_PERSON_NAME)
        if clean is None:
            errors[field] = "missing" if not (value or "").strip() else "invalid"
        names[field] = clean
    if locale not in LOCALES:
        errors["locale"] = "invalid"
    password = password if isinstance(password, str) else ""
    confirm = confirm if isinstance(confirm, str) else ""
    if not password or not confirm:
        errors["password"], problems = "missing", ["missing"]
    elif password != confirm:
        errors["password"], problems = "mismatch", ["mismatch"]
    else:
        problems = violations(password, password_policy(), email)
        if problems:
            errors["password"] = "policy"
    if errors:
        raise SignupError(errors, problems)
    return {**names, "locale": locale}


def _slug_taken(slug: str) -> bool:
    return db.session.scalar(select(Tenant.id).where(Tenant.slug == slug)) is not None


def unique_slug(name: str) -> str:
    base = company_identity.slugify(name)
    for candidate in [base] + [f"{base}-{n}" for n in range(2, 10)]:
        if not _slug_taken(candidate):
            return candidate
    return f"{base}-{secrets.token_hex(3)}"


def complete(token_id: int, company: Company, person: dict, password: str, *,
             ip: str | None = None) -> tuple[User, Tenant]:
    """Create the company and its super-administrator, using the link once. Commits.

    Raises SignupLinkError (link used, superseded or expired meanwhile) or
    EmailTaken (the address got an account meanwhile). The person was checked
    with ``check_person`` first.
    """
    password_hash = hash_password(password)
    for attempt in range(3):
        try:
            user, tenant = _complete_once(token_id, company, person, password_hash, ip)
            db.session.commit()
            accounts.clear_failures(user.id)  # a taken-over pending account's count
            return user, tenant
        except (SignupLinkError, EmailTaken):
            db.session.rollback()
            raise
        except (IntegrityError, accounts.DuplicateEmail):
            db.session.rollback()  # a concurrent sign-up took the slug or the address
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _complete_once(token_id: int, company: Company, person: dict, password_hash: str,
                   ip: str | None) -> tuple[User, Tenant]:
    row = live_link(token_id)
    email = row.email
    pending = db.session.scalar(select(User).where(User.email == email).with_for_update())
    if pending is not None and not is_pending(pending):
        raise EmailTaken(email)
    now = int(time.time())
    with account_tokens.raised_as(SignupLinkError):
        account_tokens.use(row)
    account_tokens.revoke(PURPOSE, email=email)  # the address's other sign-up links die
    settings = {**company.as_dict(), "created_via": "company_signup"}
    tenant = Tenant(slug=unique_slug(company.company_name), name=company.company_name,
                    self_registration=False, settings=settings, created_at=now)
    db.session.add(tenant)
    db.session.flush()
    fields = dict(email_verified=True, active=True, given_name=person["given_name"],
                  family_name=person["family_name"], locale=person["locale"],
                  password_hash=password_hash, last_login_at=now)
    if pending is None:
        user = accounts.create_user(email, tenant=tenant, role="super_admin", **fields)
    else:
        # A self-registration never confirmed (maybe someone else's): the owner's now.
        user = pending
        for name, value in fields.items():
            setattr(user, name, value)
        user.password_changed_at = now
        user.locked_at = None
        account_tokens.revoke(VERIFY_PURPOSE, user=user)
        audit.record("pending_registration_taken_over", user_id=user.id, ip=ip)
        db.session.add(Membership(user_id=user.id, tenant_id=tenant.id, role="super_admin"))
    audit.record("company_signup", tenant_id=tenant.id, user_id=user.id, ip=ip)
    db.session.flush()
    return user, tenant
