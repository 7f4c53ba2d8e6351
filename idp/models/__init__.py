"""SQLAlchemy models, one module per domain. Importing this package registers them all."""

from idp.models.accounts import Membership, User
from idp.models.audit import AuditEvent
from idp.models.oauth import Client, ClientAssertionJti, Consent, Grant, Token
from idp.models.sessions import BrowserSession
from idp.models.tenants import Tenant

__all__ = [
    "AuditEvent",
    "BrowserSession",
    "Client",
    "ClientAssertionJti",
    "Consent",
    "Grant",
    "Membership",
    "Tenant",
    "Token",
    "User",
]
