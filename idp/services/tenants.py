"""Tenants: creation and lookup."""

from __future__ import annotations

import re

from sqlalchemy import select

from idp.extensions import db
from idp.models import Tenant

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


class TenantError(ValueError):
    pass


def get_by_slug(slug: str) -> Tenant | None:
    return db.session.scalar(select(Tenant).where(Tenant.slug == slug))


def create_tenant(slug: str, name: str, self_registration: bool = True) -> Tenant:
    if not SLUG_RE.match(slug or ""):
        raise TenantError("slug must be lower-case letters, digits and dashes (1-63)")
    if not name or len(name) > 200:
        raise TenantError("name is required (at most 200 characters)")
    if get_by_slug(slug):
        raise TenantError(f"tenant {slug!r} already exists")
    tenant = Tenant(slug=slug, name=name, self_registration=self_registration, settings={})
    db.session.add(tenant)
    db.session.flush()
    return tenant
