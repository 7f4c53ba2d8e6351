""""No access to the app" (seed 003): a person asks their organisation's admins to reset
their second factors.

``request_reset`` stores one request per tenant in play (user, tenant, time, status
``pending``) and emails that tenant's admins (memberships with role admin or
super_admin) through the outbox; a person in no tenant has nobody to ask (the request
is stored without a tenant for the platform's operators). Requests are limited per
account (IDP_FACTOR_RESET_LIMIT in IDP_FACTOR_RESET_WINDOW seconds, the shared
throttle) and a pending one is not repeated: asking again answers the pending request.

``resolve_request`` is for the console: an admin of the request's tenant approves
(every factor the person set up is removed, through each registered factor's
``remove``, so passkeys join by being registered) or denies it; the person is emailed
when their factors were reset. The request's tenant scopes it: another tenant's admin
gets ``NotFound``.
"""

from __future__ import annotations

import time
from typing import Any

from flask import current_app
from sqlalchemy import select

from idp.extensions import db
from idp.factors.base import NotEnrollable
from idp.factors.registry import FACTORS
from idp.models import FactorResetRequest, Membership, Tenant, User
from idp.services import audit, trusted_browsers
from idp.services.factor_notices import notify
from idp.services.throttle import counter_for

ADMIN_ROLES = ("admin", "super_admin")


class FactorResetError(Exception):
    pass


class Throttled(FactorResetError):
    def __init__(self, retry_after: int):
        super().__init__("too many requests")
        self.retry_after = retry_after


class NotFound(FactorResetError):
    """No such request for this admin's tenants (or it is already resolved)."""


def admins_of(tenant: Tenant) -> list[User]:
    return list(db.session.scalars(
        select(User).join(Membership, Membership.user_id == User.id)
        .where(Membership.tenant_id == tenant.id, Membership.role.in_(ADMIN_ROLES),
               User.active.is_(True)).order_by(User.id)))


def pending_for(user: Any) -> list[FactorResetRequest]:
    return list(db.session.scalars(
        select(FactorResetRequest).where(FactorResetRequest.user_id == user.id,
                                         FactorResetRequest.status == "pending")
        .order_by(FactorResetRequest.id)))


def request_reset(user: Any, tenants: list[Tenant], *, ip: str | None = None,
                  now: int | None = None) -> list[FactorResetRequest]:
    """One pending request per tenant; the admins are emailed (the caller commits)."""
    now = int(time.time() if now is None else now)
    existing = pending_for(user)
    wanted = [t.id for t in tenants] or [None]
    if existing and {r.tenant_id for r in existing} >= set(wanted):
        return existing  # already asked: no new email
    config = current_app.config
    decision = counter_for(current_app).hit(f"factor-reset:acct:{user.id}",
                                            config["IDP_FACTOR_RESET_LIMIT"],
                                            config["IDP_FACTOR_RESET_WINDOW"], now=now)
    if not decision.allowed:
        raise Throttled(decision.retry_after)
    from idp.mail import enqueue_message

    created = []
    asked = {r.tenant_id for r in existing}
    for tenant in tenants or [None]:
        if (tenant.id if tenant else None) in asked:
            continue
        row = FactorResetRequest(user_id=user.id, tenant_id=tenant.id if tenant else None,
                                 status="pending", created_at=now)
        db.session.add(row)
        created.append(row)
        audit.record("factor_reset_requested", tenant_id=row.tenant_id, user_id=user.id, ip=ip)
        for admin in admins_of(tenant) if tenant is not None else []:
            if admin.id == user.id:
                continue
            enqueue_message("factor_reset_request", admin.email, locale=admin.locale,
                            tenant=tenant, person_email=user.email, when=now)
    db.session.flush()
    return existing + created


def reset_factors(user: Any) -> list[str]:
    """Remove every second factor the person set up (and their trusted browsers); the ids
    removed."""
    removed = []
    for factor in FACTORS.values():
        if not factor.second or not factor.is_enrolled(user):
            continue
        try:
            factor.remove(user)
        except NotEnrollable:
            continue
        removed.append(factor.id)
    trusted_browsers.revoke_all(user.id)  # they stood for the factors just removed
    db.session.flush()
    return removed


def resolve_request(request_id: int, admin_user: Any, approve: bool, *,
                    ip: str | None = None) -> FactorResetRequest:
    """An admin of the request's tenant approves (factors reset) or denies (the caller
    commits). Scoped by tenant: NotFound for anyone else."""
    row = db.session.get(FactorResetRequest, request_id)
    if row is None or row.status != "pending" or row.tenant_id is None:
        raise NotFound(request_id)
    is_admin = db.session.scalar(select(Membership.id).where(
        Membership.user_id == admin_user.id, Membership.tenant_id == row.tenant_id,
        Membership.role.in_(ADMIN_ROLES)))
    if not is_admin or admin_user.id == row.user_id:
        raise NotFound(request_id)
    person = db.session.get(User, row.user_id)
    row.status = "approved" if approve else "denied"
    row.resolved_at = int(time.time())
    row.resolved_by = admin_user.id
    removed: list[str] = []
    if approve and person is not None:
        removed = reset_factors(person)
        for other in pending_for(person):
            if other.id != row.id:  # one reset answers every tenant's request
                other.status, other.resolved_at, other.resolved_by = (
                    "approved", row.resolved_at, admin_user.id)
        notify(person, "factors_reset")
    audit.record("factor_reset_resolved", tenant_id=row.tenant_id, user_id=row.user_id,
                 actor_id=admin_user.id, ip=ip, approved=approve, removed=removed)
    db.session.flush()
    return row
