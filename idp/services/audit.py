"""Recording sign-ins and administrative actions."""

from __future__ import annotations

from idp.extensions import db
from idp.models import AuditEvent


def record(event: str, *, tenant_id: int | None = None, user_id: int | None = None,
           actor_id: int | None = None, ip: str | None = None, **data) -> AuditEvent:
    """Add an audit event to the current transaction (the caller commits)."""
    entry = AuditEvent(event=event, tenant_id=tenant_id, user_id=user_id,
                       actor_id=actor_id, ip=ip, data=data)
    db.session.add(entry)
    return entry
