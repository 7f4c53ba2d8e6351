"""Terms and conditions: publishing versions, what a sign-in must accept, acceptances.

A document belongs to a tenant or to the platform (``tenant_id`` None: "partner" terms
that several tenants require). A requirement names who asks for it: a tenant (every
sign-in into that tenant), a client (every sign-in into that client), or nobody in
particular (every sign-in). The latest version of each required document must be
accepted once; a new version is asked again.

The Markdown is rendered to sanitised HTML once, at publish time (services/markdown.py),
and stored beside its source: the page shows exactly the text that was published (a
library upgrade cannot change what a version said), and nothing is parsed on the
sign-in path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import and_, exists, false, func, or_, select
from sqlalchemy.exc import IntegrityError

from idp.extensions import db
from idp.models import (
    Client,
    Tenant,
    TermsAcceptance,
    TermsDocument,
    TermsRequirement,
    TermsVersion,
    User,
)
from idp.services import audit, markdown

NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$")
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,49}$")
LANGUAGES = ("en", "fr")
MAX_TEXT = 200_000


class TermsError(ValueError):
    """A publication refused (bad name, duplicate version, unknown client...)."""


class NotPending(Exception):
    """The version is not one this person must accept now (another tenant's, stale,
    already accepted)."""


@dataclass
class Text:
    """One language of a version: its Markdown source, or the address it is read at."""

    markdown: str | None = None
    url: str | None = None


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.netloc or len(url) > 2000:
        raise TermsError(f"terms URL must be an https:// address: {url!r}")
    return url


def publish(name: str, version: str, texts: dict[str, Text], *, tenant: Tenant | None,
            platform: bool = False, client: Client | None = None) -> TermsVersion:
    """Publish ``version`` of document ``name`` and make the document required.

    The document is the tenant's, or the platform's with ``platform``. It is required by
    the client when one is given, else by the tenant, else (a platform document and no
    tenant) by every sign-in. Adds to the session; the caller commits."""
    if not NAME_RE.match(name or ""):
        raise TermsError("document name must be lower-case letters, digits and dashes (1-100)")
    if not VERSION_RE.match(version or ""):
        raise TermsError("version must be letters, digits, '.', '_' or '-' (1-50)")
    if not platform and tenant is None:
        raise TermsError("a tenant's document needs --tenant (or --platform)")
    if client is not None and not platform and client.tenant_id not in (None, tenant.id):
        raise TermsError(f"client {client.client_id!r} belongs to another tenant")
    fields: dict[str, str | None] = {}
    for language in LANGUAGES:
        text = texts.get(language) or Text()
        if bool(text.markdown) == bool(text.url):
            raise TermsError(f"give the {language} text as a Markdown file or a URL (one)")
        if text.markdown is not None and len(text.markdown) > MAX_TEXT:
            raise TermsError(f"the {language} text is longer than {MAX_TEXT} characters")
        fields[f"markdown_{language}"] = text.markdown
        fields[f"html_{language}"] = markdown.render(text.markdown) if text.markdown else None
        fields[f"url_{language}"] = _check_url(text.url) if text.url else None
    owner = None if platform else tenant.id
    document = db.session.scalar(select(TermsDocument).where(
        TermsDocument.name == name, TermsDocument.tenant_id.is_(None) if owner is None
        else TermsDocument.tenant_id == owner))
    if document is None:
        document = TermsDocument(tenant_id=owner, name=name)
        db.session.add(document)
        db.session.flush()
    elif db.session.scalar(select(TermsVersion.id).where(
            TermsVersion.document_id == document.id, TermsVersion.version == version)):
        raise TermsError(f"version {version!r} of {name!r} is already published")
    published = TermsVersion(document_id=document.id, version=version, **fields)
    db.session.add(published)
    _require(document, tenant_id=None if client is not None else (tenant.id if tenant else None),
             client_id=client.client_id if client is not None else None)
    db.session.flush()
    return published


def _require(document: TermsDocument, *, tenant_id: int | None, client_id: str | None) -> None:
    """Add the requirement unless it exists (NULLs never collide in a unique constraint)."""
    found = db.session.scalar(select(TermsRequirement.id).where(
        TermsRequirement.document_id == document.id,
        TermsRequirement.tenant_id.is_(None) if tenant_id is None
        else TermsRequirement.tenant_id == tenant_id,
        TermsRequirement.client_id.is_(None) if client_id is None
        else TermsRequirement.client_id == client_id))
    if found is None:
        db.session.add(TermsRequirement(document_id=document.id, tenant_id=tenant_id,
                                        client_id=client_id))


def _required_documents(tenant_id: int | None, client_id: str):
    """The documents this sign-in needs: the chosen tenant's, the client's, everyone's. A
    client's requirement of a tenant's own document (a shared client) holds only for a
    sign-in into that tenant: another tenant's people never see it."""
    everyone = and_(TermsRequirement.tenant_id.is_(None), TermsRequirement.client_id.is_(None))
    tenant = TermsRequirement.tenant_id == tenant_id if tenant_id is not None else false()
    owner = TermsDocument.tenant_id.is_(None)
    if tenant_id is not None:
        owner = or_(owner, TermsDocument.tenant_id == tenant_id)
    client = and_(TermsRequirement.client_id == client_id, owner)
    return (select(TermsRequirement.document_id)
            .join(TermsDocument, TermsDocument.id == TermsRequirement.document_id)
            .where(or_(everyone, tenant, client)))


def pending_terms(user: User, tenant_id: int | None, client: Client) -> list[TermsVersion]:
    """The latest version of each required document that this person has not accepted,
    in publication order (empty: nothing to ask)."""
    latest = (select(func.max(TermsVersion.id))
              .where(TermsVersion.document_id.in_(_required_documents(tenant_id,
                                                                      client.client_id)))
              .group_by(TermsVersion.document_id))
    accepted = exists().where(TermsAcceptance.user_id == user.id,
                              TermsAcceptance.version_id == TermsVersion.id)
    return list(db.session.scalars(select(TermsVersion).where(
        TermsVersion.id.in_(latest), ~accepted).order_by(TermsVersion.id)))


def accept(user: User, version_id: int | str | None, *, tenant_id: int | None, client: Client,
           ip: str | None, user_agent: str | None) -> TermsAcceptance:
    """Record that the person accepted one of their pending versions; NotPending for any
    other id (another tenant's document, an older version, one accepted already). The
    caller commits."""
    wanted = str(version_id or "")
    version = next((v for v in pending_terms(user, tenant_id, client) if str(v.id) == wanted),
                   None)
    if version is None:
        raise NotPending(wanted)
    acceptance = TermsAcceptance(user_id=user.id, document_id=version.document_id,
                                 version_id=version.id, client_id=client.client_id,
                                 tenant_id=tenant_id, ip=(ip or "")[:64] or None,
                                 user_agent=(user_agent or "")[:500] or None)
    try:
        with db.session.begin_nested():  # a concurrent accept of the same version: one row
            db.session.add(acceptance)
    except IntegrityError as exc:
        raise NotPending(wanted) from exc
    audit.record("terms_accepted", tenant_id=tenant_id, user_id=user.id, ip=ip,
                 document=version.document.name, version=version.version,
                 client_id=client.client_id)
    return acceptance


@dataclass
class Shown:
    """What the terms page shows of a version: its sanitised HTML, or a link to it."""

    language: str
    html: str | None
    url: str | None


def shown(version: TermsVersion, locale: str) -> Shown:
    """The version in the person's language (French or English; English otherwise)."""
    language = locale if locale in LANGUAGES else "en"
    return Shown(language, getattr(version, f"html_{language}"),
                 getattr(version, f"url_{language}"))


def listing() -> list[dict]:
    """Every document with its latest version and who requires it (``idp terms list``)."""
    rows = []
    documents = db.session.scalars(select(TermsDocument).order_by(TermsDocument.id))
    for document in documents:
        versions = list(db.session.scalars(select(TermsVersion).where(
            TermsVersion.document_id == document.id).order_by(TermsVersion.id)))
        required = []
        for requirement in db.session.scalars(select(TermsRequirement).where(
                TermsRequirement.document_id == document.id).order_by(TermsRequirement.id)):
            if requirement.client_id:
                required.append(f"client:{requirement.client_id}")
            elif requirement.tenant_id:
                slug = db.session.scalar(select(Tenant.slug).where(
                    Tenant.id == requirement.tenant_id))
                required.append(f"tenant:{slug}")
            else:
                required.append("everyone")
        accepted = db.session.scalar(select(func.count(TermsAcceptance.id)).where(
            TermsAcceptance.version_id == versions[-1].id)) if versions else 0
        rows.append({"document": document.name,
                     "owner": document.tenant.slug if document.tenant else "platform",
                     "latest": versions[-1].version if versions else None,
                     "versions": [v.version for v in versions],
                     "published_at": versions[-1].published_at if versions else None,
                     "required_by": required, "accepted_latest": accepted})
    return rows
