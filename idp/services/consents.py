"""Consents: what a person allowed a client to receive (scopes and single claims)."""

from __future__ import annotations

import time
from collections.abc import Iterable

from sqlalchemy import select

from idp.extensions import db
from idp.models import Consent


def find(user_id: int, client_id: str) -> Consent | None:
    return db.session.scalar(select(Consent).where(
        Consent.user_id == user_id, Consent.client_id == client_id))


def grant(user_id: int, client_id: str, scopes: Iterable[str], claims: Iterable[str]) -> Consent:
    """Add to what the person allowed before. Adds to the session; the caller commits."""
    consent = find(user_id, client_id)
    if consent is None:
        consent = Consent(user_id=user_id, client_id=client_id, scope="", claims="")
        db.session.add(consent)
    consent.scope = " ".join(sorted(set(consent.scope.split()) | set(scopes)))
    consent.claims = " ".join(sorted(set(consent.claims.split()) | set(claims)))
    consent.granted_at = int(time.time())
    return consent
