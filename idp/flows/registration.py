"""Self-registration at a tenant, and the tenant's branded entry pages (seed 002).

Flow ``registration`` (server-side session), started once the form is accepted::

    (form accepted) --> sent --resend--> sent

The form itself needs no flow: it is one POST. The ``sent`` page keeps the
address the person typed so "Resend" needs nothing typed again; the link
itself (``/verify-email``) works in any browser, flow or not.

Branding: ``branding(tenant)`` gives the header (name, logo), the support
contact and an optional button colour from ``Tenant.settings`` (keys
``brand_name``, ``logo_url``, ``support_email``, ``support_phone``,
``brand_color``: the same keys the emails use). A colour is used only if white
text on it keeps a 4.5:1 contrast; a logo only from this site or over https
(its origin is then added to the page's ``img-src``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit

from idp.flows import base as flows
from idp.models import Tenant
from idp.services import registration

FLOW_TYPE = "registration"
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_HOST = re.compile(r"^[a-z0-9.-]{1,253}(:\d{1,5})?$")
_PHONE = re.compile(r"^\+?[0-9 ().-]{4,30}$")


class State(Enum):
    SENT = "sent"


TRANSITIONS = {State.SENT.value: (State.SENT.value,)}


def start(tenant: Tenant, email: str) -> flows.Flow:
    flow = flows.start(FLOW_TYPE, State.SENT, {"slug": tenant.slug})
    flow.data["email"] = email
    flows.save(flow)
    return flow


def load(flow_id: str | None, tenant: Tenant) -> flows.Flow:
    flow = flows.load(flow_id, FLOW_TYPE)
    if flow.params.get("slug") != tenant.slug:
        raise flows.FlowError("flow of another tenant")
    return flow


def resend(flow: flows.Flow, tenant: Tenant) -> str:
    flow.move(State.SENT, TRANSITIONS)
    outcome = registration.resend(tenant, flow.data.get("email"))
    flow.data["resent"] = int(flow.data.get("resent") or 0) + 1
    flows.save(flow)
    return outcome


# ----------------------------------------------------------------------------- branding


@dataclass(frozen=True)
class Branding:
    name: str
    logo_url: str | None
    logo_origin: str | None  # for the CSP, when the logo is on another https site
    support_email: str | None
    support_phone: str | None
    color: str | None


def _luminance(color: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def readable_on_white_text(color: str) -> bool:
    """White text on this colour (and this colour on white) reaches WCAG AA 4.5:1."""
    return 1.05 / (_luminance(color) + 0.05) >= 4.5


def _logo(value: object) -> tuple[str | None, str | None]:
    url = str(value or "").strip()
    if not url or len(url) > 2000 or any(c.isspace() or ord(c) < 32 or c in "\"'<>\\"
                                          for c in url):
        return None, None
    if url.startswith("/") and not url.startswith("//"):
        return url, None
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.netloc and _HOST.match(parts.netloc.lower()) \
            and "@" not in parts.netloc:
        return url, f"https://{parts.netloc.lower()}"
    return None, None


def branding(tenant: Tenant) -> Branding:
    from idp.mail.headers import MailError, validate_address

    settings = tenant.settings if isinstance(tenant.settings, dict) else {}
    name = str(settings.get("brand_name") or tenant.name)[:120]
    logo_url, logo_origin = _logo(settings.get("logo_url"))
    support = settings.get("support_email")
    try:
        support = validate_address(support) if support else None
    except MailError:
        support = None
    phone = str(settings.get("support_phone") or "")
    color = str(settings.get("brand_color") or "")
    return Branding(
        name=name, logo_url=logo_url, logo_origin=logo_origin, support_email=support,
        support_phone=phone if _PHONE.match(phone) else None,
        color=color.lower() if _COLOR.match(color) and readable_on_white_text(color) else None)


def brand_css(brand: Branding) -> str:
    """The tenant's colour on buttons and links: a stylesheet, since the CSP forbids inline styles."""
    if not brand.color:
        return "/* no brand colour */\n"
    c = brand.color
    return (f".primary, .primary:hover {{ background: {c}; border-color: {c}; }}\n"
            f".secondary {{ color: {c}; border-color: {c}; }}\n"
            f"a {{ color: {c}; }}\n")
