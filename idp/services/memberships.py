"""Memberships: who belongs to which tenant, and which tenants a client serves.

A client is *owned* by one tenant (``Client.tenant_id``) and serves it alone, or
*shared*: with every tenant, or with the tenants listed in ``oauth_client_tenants``.
The tenants a person may use at a client are their memberships in active tenants
that the client serves (``served_memberships``): the sign-in's picker offers
those and nothing else. A token bound to a tenant stays valid while the person is
still a member of that tenant and the tenant is active (``binding_valid``).
Nothing here commits; callers commit.
"""

from __future__ import annotations

from sqlalchemy import delete, select

from idp.extensions import db
from idp.models import Client, ClientTenant, Grant, Membership, Tenant, User
from idp.models.accounts import ROLES
from idp.services import accounts, audit, clients, tokens
from idp.services.clients import shared_with


class MembershipError(ValueError):
    """A membership cannot be added or removed (the message says why, for operators)."""


class AlreadyMember(MembershipError):
    pass


class NotMember(MembershipError):
    pass


class ExistingAccount(MembershipError):
    """Credentials were given for an address that already has an account: its owner keeps
    their own password, so nothing is changed."""


def find(user_id: int, tenant_id: int) -> Membership | None:
    return db.session.scalar(select(Membership).where(Membership.user_id == user_id,
                                                      Membership.tenant_id == tenant_id))


def add(user: User, tenant: Tenant, role: str = "member") -> tuple[Membership, bool]:
    """The membership of ``user`` in ``tenant``, created if missing; (row, created)."""
    if role not in ROLES:
        raise MembershipError(f"role must be one of {', '.join(ROLES)}")
    found = find(user.id, tenant.id)
    if found is not None:
        return found, False
    membership = Membership(user_id=user.id, tenant_id=tenant.id, role=role)
    db.session.add(membership)
    db.session.flush()
    db.session.refresh(user, ["memberships"])
    return membership, True


def add_existing_account(tenant: Tenant, email: str, role: str = "member", *,
                         password: str | None = None, invite: bool = False) -> Membership:
    """Put an existing account into another tenant (``idp user create`` for a known address).

    A password or an invitation for an existing account is refused (ExistingAccount) and
    nothing changes; so is a membership that already exists (AlreadyMember)."""
    user = accounts.get_by_email(email)
    if user is None:
        raise MembershipError("no account with this email address")
    if password is not None or invite:
        raise ExistingAccount(
            f"{user.email} already has an account: it keeps its own password; add the "
            "membership without --password or --invite")
    if role not in ROLES:
        raise MembershipError(f"role must be one of {', '.join(ROLES)}")
    if find(user.id, tenant.id) is not None:
        raise AlreadyMember(f"{user.email} is already a member of {tenant.slug}")
    membership, _created = add(user, tenant, role)
    audit.record("membership_added", tenant_id=tenant.id, user_id=user.id, role=role)
    return membership


def remove(tenant: Tenant, email: str) -> int:
    """End a membership; the grants (refresh tokens and their access tokens) the person
    holds for that tenant die with it. Returns how many grants were revoked."""
    user = accounts.get_by_email(email)
    membership = find(user.id, tenant.id) if user is not None else None
    if membership is None:
        raise NotMember(f"{accounts.normalize_email(email)} is not a member of {tenant.slug}")
    db.session.execute(delete(Membership).where(Membership.id == membership.id))
    grant_ids = list(db.session.scalars(select(Grant.id).where(
        Grant.user_id == user.id, Grant.tenant_id == tenant.id, Grant.revoked_at.is_(None))))
    for grant_id in grant_ids:
        tokens.revoke_grant(grant_id)
    audit.record("membership_removed", tenant_id=tenant.id, user_id=user.id,
                 revoked_grants=len(grant_ids))
    db.session.flush()
    db.session.expire(user, ["memberships"])
    return len(grant_ids)


def set_active(tenant: Tenant, active: bool) -> None:
    """Disable or enable a tenant: disabled, it signs nobody in and its refresh tokens fail."""
    if tenant.active != active:
        tenant.active = active
        audit.record("tenant_enabled" if active else "tenant_disabled", tenant_id=tenant.id)
    db.session.flush()


# ------------------------------------------------------------------ clients and tenants


def served_memberships(user: User, client: Client | None) -> list[Membership]:
    """The memberships ``user`` may use at ``client`` (any client: ``None``): active
    tenants the client serves, oldest membership first."""
    query = (select(Membership).join(Tenant, Tenant.id == Membership.tenant_id)
             .where(Membership.user_id == user.id, Tenant.active.is_(True)))
    if client is not None:
        if client.tenant_id is not None:
            query = query.where(Membership.tenant_id == client.tenant_id)
        else:
            listed = select(ClientTenant.tenant_id).where(ClientTenant.client_id == client.id)
            if shared_with(client):
                query = query.where(Membership.tenant_id.in_(listed))
    return list(db.session.scalars(query.order_by(Membership.id)))


def binding_valid(user_id: int | None, tenant_id: int | None) -> bool:
    """Is a token bound to this tenant still good? The person is still a member and the
    tenant is active (a token bound to no tenant, or to no person, stays good)."""
    if user_id is None or tenant_id is None:
        return True
    return db.session.scalar(
        select(Membership.id).join(Tenant, Tenant.id == Membership.tenant_id)
        .where(Membership.user_id == user_id, Membership.tenant_id == tenant_id,
               Tenant.active.is_(True))) is not None


def serves(client_id: str, tenant_id: int | None) -> bool:
    """``clients.serves`` for a client known by its client_id (a grant's, a token's);
    no tenant: nothing to serve."""
    if tenant_id is None:
        return True
    client = db.session.scalar(select(Client).where(Client.client_id == client_id))
    return client is not None and clients.serves(client, tenant_id)


def served_at(user: User, client_id: str | None) -> list[Membership]:
    """``served_memberships`` for a client known by its client_id (None: any client); an
    unknown client serves nothing."""
    if client_id is None:
        return served_memberships(user, None)
    client = db.session.scalar(select(Client).where(Client.client_id == client_id))
    return served_memberships(user, client) if client is not None else []
