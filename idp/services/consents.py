"""Consents: what a person allowed a client to receive (scopes and single claims)."""

from __future__ import annotations

import time
from collections.abc import Iterable

from sqlalchemy import select

from idp.extensions import db
from idp.models import Client, Consent
from idp.models._types import row_id
from idp.services import audit, tokens


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


def of_user(user_id: int) -> list[tuple[Consent, Client]]:
    """What this person allowed, newest first, with each client (the account page)."""
    return [tuple(row) for row in db.session.execute(
        select(Consent, Client).join(Client, Client.client_id == Consent.client_id)
        .where(Consent.user_id == user_id).order_by(Consent.granted_at.desc(), Consent.id))]


def get_for_user(user_id: int, consent_id: int | str | None) -> tuple[Consent, Client] | None:
    """One of this person's consents by id; None for another person's or an unknown id."""
    key = row_id(consent_id)
    if key is None:
        return None
    row = db.session.execute(
        select(Consent, Client).join(Client, Client.client_id == Consent.client_id)
        .where(Consent.id == key, Consent.user_id == user_id)).first()
    return tuple(row) if row else None


def revoke(consent: Consent, ip: str | None = None) -> None:
    """Forget the consent and end what it allowed: that client's tokens for this person
    (refresh tokens included), so the client must ask again. The caller commits."""
    tokens.revoke_user_tokens(consent.user_id, consent.client_id)
    audit.record("consent_revoked", user_id=consent.user_id, ip=ip, client_id=consent.client_id)
    db.session.delete(consent)
