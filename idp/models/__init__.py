"""SQLAlchemy models, one module per domain. Importing this package registers them all."""

from idp.models.accounts import AccountToken, Membership, User
from idp.models.audit import AuditEvent
from idp.models.branding import TenantLogo
from idp.models.deferred import DeferredTask
from idp.models.factors import FactorResetRequest, RecoveryCode, TotpCredential, TrustedBrowser
from idp.models.mail import OutboxMessage
from idp.models.oauth import (
    Client,
    ClientAssertionJti,
    ClientTenant,
    Consent,
    Grant,
    RevokedJti,
    Token,
)
from idp.models.sessions import BrowserSession
from idp.models.tenants import Tenant
from idp.models.terms import TermsAcceptance, TermsDocument, TermsRequirement, TermsVersion
from idp.models.throttle import RateLimitCounter
from idp.models.webauthn import WebAuthnCredential

__all__ = [
    "AccountToken",
    "AuditEvent",
    "BrowserSession",
    "Client",
    "ClientAssertionJti",
    "ClientTenant",
    "Consent",
    "DeferredTask",
    "FactorResetRequest",
    "Grant",
    "Membership",
    "OutboxMessage",
    "RateLimitCounter",
    "RecoveryCode",
    "RevokedJti",
    "Tenant",
    "TenantLogo",
    "TermsAcceptance",
    "TermsDocument",
    "TermsRequirement",
    "TermsVersion",
    "Token",
    "TotpCredential",
    "TrustedBrowser",
    "User",
    "WebAuthnCredential",
]
