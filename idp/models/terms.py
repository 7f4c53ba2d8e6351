"""Terms documents (a tenant's or the platform's), their versions, who requires them, and
each person's acceptance of a version (services/terms.py)."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from idp.extensions import db
from idp.models._types import Epoch, now


class TermsDocument(db.Model):
    """A named document ("partner-terms"); ``tenant_id`` None: a platform-wide document."""

    __tablename__ = "terms_documents"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    created_at: Mapped[int] = mapped_column(Epoch, nullable=False, default=now)

    tenant = relationship("Tenant")


class TermsVersion(db.Model):
    """One published version, in English and French: sanitised HTML rendered once from the
    Markdown at publish time (the source is kept beside it), or an address to read it at."""

    __tablename__ = "terms_versions"
    __table_args__ = (UniqueConstraint("document_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(
        ForeignKey("terms_documents.id", ondelete="CASCADE"), nullable=False, index=True)
    version: Mapped[str] = mapped_column(String(50), nullable=False)
    markdown_en: Mapped[str | None] = mapped_column(Text)
    markdown_fr: Mapped[str | None] = mapped_column(Text)
    html_en: Mapped[str | None] = mapped_column(Text)
    html_fr: Mapped[str | None] = mapped_column(Text)
    url_en: Mapped[str | None] = mapped_column(String(2000))
    url_fr: Mapped[str | None] = mapped_column(String(2000))
    published_at: Mapped[int] = mapped_column(Epoch, nullable=False, default=now)

    document: Mapped[TermsDocument] = relationship()


class TermsRequirement(db.Model):
    """Who requires a document: a tenant (``tenant_id``), a client (``client_id``), or,
    with neither, every sign-in. Its latest version is the one asked for."""

    __tablename__ = "terms_requirements"
    __table_args__ = (UniqueConstraint("document_id", "tenant_id", "client_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(
        ForeignKey("terms_documents.id", ondelete="CASCADE"), nullable=False, index=True)
    tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[str | None] = mapped_column(
        ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), index=True)
    created_at: Mapped[int] = mapped_column(Epoch, nullable=False, default=now)


class TermsAcceptance(db.Model):
    """A person accepted a version: when, from where (IP, user agent), for which client and
    tenant. Never asked again for that version."""

    __tablename__ = "terms_acceptances"
    __table_args__ = (UniqueConstraint("user_id", "version_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    document_id: Mapped[int] = mapped_column(
        ForeignKey("terms_documents.id", ondelete="CASCADE"), nullable=False, index=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("terms_versions.id", ondelete="CASCADE"), nullable=False, index=True)
    # Where it was accepted; kept (no foreign key) when the client or tenant goes away.
    client_id: Mapped[str | None] = mapped_column(String(64))
    tenant_id: Mapped[int | None] = mapped_column(Integer)
    accepted_at: Mapped[int] = mapped_column(Epoch, nullable=False, default=now)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(500))
