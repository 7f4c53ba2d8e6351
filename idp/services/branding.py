"""Tenant branding: name, logo, colour and support contact of a tenant's pages and emails.

Everything lives in ``Tenant.settings`` except the logo's bytes (table
``tenant_logos``, so every node serves the same file):

    brand_name      the name in the header (else ``Tenant.name``)
    brand_names     {"fr": "..."}: the name in another language (pages, ``org_name``)
    brand_color     "#rrggbb", used for buttons (white text on it) and links (on white)
    support_email   an address; support_url an https URL; support_phone a number
    logo            {"type": "image/png", "digest": "<sha256>"} of the uploaded logo
    logo_url        an https (or same-site) logo hosted elsewhere: used when none is uploaded

Rules (each refused with a clear message when set, and ignored again when read,
so a value edited in the database cannot break a page; logos: services/logos.py):

* A colour must reach WCAG AA 4.5:1 against the page background (#f3f5f8, the
  darkest light background it is used on): it colours links on that background and
  on the white card, and is the background of white button text (more than 4.5:1
  then, white being lighter).
* A logo is a PNG, JPEG, WebP or SVG file proven by services/logos.py.

Which tenant's branding a sign-in shows (``tenant_for_authorization``): the tenant
chosen in the flow, else the ``organization`` of the request when the client
serves that tenant, else the client's own tenant, else the deployment's name.
An ``organization`` the client does not serve is ignored (the client's branding,
or none, is shown): a request cannot dress a client in another tenant's colours.
This reveals no more than ``/t/<slug>/``, which every tenant has.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select

from idp.extensions import db
from idp.models import Client, Tenant, TenantLogo
from idp.services.clients import serves
from idp.services.locale import localised_name
from idp.services.logos import Logo
from idp.services.tenants import get_by_slug

COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
_HOST = re.compile(r"^[a-z0-9.-]{1,253}(:\d{1,5})?$")
_PHONE = re.compile(r"^\+?[0-9 ().-]{4,30}$")
WHITE = "#ffffff"
PAGE_BACKGROUND = "#f3f5f8"  # style.css: body (the card is white); the darker of the two
MIN_CONTRAST = 4.5  # WCAG 2.1 AA, normal text (1.4.3)
MAX_NAME = 120

class BrandingError(ValueError):
    """A branding setting that cannot be used; the message says why (for the operator)."""


# ----------------------------------------------------------------------------- colour


def _luminance(color: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast_ratio(a: str, b: str) -> float:
    """WCAG 2.1 contrast ratio of two ``#rrggbb`` colours (1 to 21)."""
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def readable_brand_color(color: str) -> bool:
    """This colour as text on the page background and on the white card, and white text
    on it, all reach 4.5:1 (the page background is the darkest of those backgrounds)."""
    return (bool(COLOR_RE.match(color or ""))
            and contrast_ratio(color, PAGE_BACKGROUND) >= MIN_CONTRAST)


def validate_color(value: str) -> str:
    """The colour, lower-case, or BrandingError saying which contrast it misses."""
    color = (value or "").strip()
    if not COLOR_RE.match(color):
        raise BrandingError(f"colour {value!r} must be written #RRGGBB (six hex digits)")
    ratio = contrast_ratio(color, PAGE_BACKGROUND)
    if ratio < MIN_CONTRAST:
        raise BrandingError(
            f"colour {color} has a contrast of {ratio:.2f}:1 with the page background "
            f"{PAGE_BACKGROUND} (and {contrast_ratio(color, WHITE):.2f}:1 with white); "
            "buttons show white text on it and links show it on those backgrounds, which "
            f"needs at least {MIN_CONTRAST}:1 (WCAG AA): choose a darker colour")
    return color.lower()


def _darker(color: str, factor: float = 0.82) -> str:
    """The hover shade: darker, so its contrast with white only grows."""
    return "#" + "".join(f"{int(int(color[i:i + 2], 16) * factor):02x}" for i in (1, 3, 5))


# ----------------------------------------------------------------------------- settings


def _plain_url(value: object) -> str | None:
    """The URL if it is one line with nothing that could leave an HTML attribute."""
    url = str(value or "").strip()
    if not url or len(url) > 2000 or any(c.isspace() or ord(c) < 32 or c in "\"'<>\\"
                                          for c in url):
        return None
    return url


def _https_origin(url: str) -> str | None:
    """``https://host[:port]`` of an https URL with a plain host (no user part), else None."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.netloc and "@" not in parts.netloc \
            and _HOST.match(parts.netloc.lower()):
        return f"https://{parts.netloc.lower()}"
    return None


def _support_url(value: object) -> str | None:
    url = _plain_url(value)
    return url if url and _https_origin(url) else None


def validate_support_url(value: str) -> str:
    url = _support_url(value)
    if url is None:
        raise BrandingError(f"support URL {value!r} must be an https:// address")
    return url


def validate_support_email(value: str) -> str:
    from idp.mail.headers import MailError, validate_address

    try:
        return validate_address(value)
    except MailError as exc:
        raise BrandingError(f"support email {value!r} is not a valid address") from exc


def logo_of(tenant: Tenant) -> TenantLogo | None:
    return db.session.scalar(select(TenantLogo).where(TenantLogo.tenant_id == tenant.id))


def update(tenant: Tenant, *, name: str | None = None, names: dict[str, str] | None = None,
           logo: Logo | None = None, remove_logo: bool = False, color: str | None = None,
           support_email: str | None = None, support_url: str | None = None) -> None:
    """Validate and store branding settings (no commit). "" clears a text setting."""
    settings = dict(tenant.settings or {})
    if name is not None:
        cleaned = " ".join(name.split())
        if len(cleaned) > MAX_NAME or any(ord(c) < 32 for c in cleaned):
            raise BrandingError(f"the brand name must be one line of at most {MAX_NAME} "
                                "characters")
        _set(settings, "brand_name", cleaned)
    if names is not None:
        current = dict(settings.get("brand_names") or {})
        for locale, value in names.items():
            cleaned = " ".join(value.split())
            if len(cleaned) > MAX_NAME:
                raise BrandingError(f"the {locale} name is longer than {MAX_NAME} characters")
            current[locale] = cleaned
        settings["brand_names"] = {k: v for k, v in current.items() if v}
    if color is not None:
        _set(settings, "brand_color", validate_color(color) if color else "")
    if support_email is not None:
        _set(settings, "support_email",
             validate_support_email(support_email) if support_email else "")
    if support_url is not None:
        _set(settings, "support_url", validate_support_url(support_url) if support_url else "")
    row = logo_of(tenant)
    if remove_logo:
        settings.pop("logo", None)
        if row is not None:
            db.session.delete(row)
    elif logo is not None:
        if row is None:
            row = TenantLogo(tenant_id=tenant.id)
            db.session.add(row)
        row.content_type, row.data, row.digest = logo.content_type, logo.data, logo.digest
        settings["logo"] = {"type": logo.content_type, "digest": logo.digest}
    tenant.settings = settings  # a new dict, so the JSON column is written


def _set(settings: dict, key: str, value: str) -> None:
    if value:
        settings[key] = value
    else:
        settings.pop(key, None)


# ----------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Branding:
    name: str
    logo_url: str | None  # a path on this site, or an https URL
    logo_origin: str | None  # for the CSP, when the logo is on another https site
    support_email: str | None
    support_phone: str | None
    support_url: str | None
    color: str | None
    slug: str | None = None


def _external_logo(value: object) -> tuple[str | None, str | None]:
    url = _plain_url(value)
    if url and url.startswith("/") and not url.startswith("//"):
        return url, None
    origin = _https_origin(url) if url else None
    return (url, origin) if origin else (None, None)


def logo_path(tenant: Tenant) -> str | None:
    """The uploaded logo's address on this site, versioned by its digest (or None)."""
    logo = (tenant.settings or {}).get("logo") if isinstance(tenant.settings, dict) else None
    digest = str((logo or {}).get("digest") or "") if isinstance(logo, dict) else ""
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        return None
    return f"/t/{tenant.slug}/logo?v={digest[:16]}"


def display_name(tenant: Tenant, locales: list[str] | tuple[str, ...] = ()) -> str:
    """The tenant's name in the first of ``locales`` it has one for, else its brand name."""
    settings = tenant.settings if isinstance(tenant.settings, dict) else {}
    default = str(settings.get("brand_name") or tenant.name)
    return localised_name(settings, default, locales)[:MAX_NAME]


def branding(tenant: Tenant, locale: str | None = None) -> Branding:
    """What the pages of ``tenant`` show; settings that fail the rules are left out."""
    from idp.mail.headers import MailError, validate_address

    settings = tenant.settings if isinstance(tenant.settings, dict) else {}
    uploaded = logo_path(tenant)
    logo_url, logo_origin = (uploaded, None) if uploaded else _external_logo(
        settings.get("logo_url"))
    support = settings.get("support_email")
    try:
        support = validate_address(support) if support else None
    except MailError:
        support = None
    phone = str(settings.get("support_phone") or "")
    color = str(settings.get("brand_color") or "")
    return Branding(
        name=display_name(tenant, [locale] if locale else []), logo_url=logo_url,
        logo_origin=logo_origin, support_email=support,
        support_phone=phone if _PHONE.match(phone) else None,
        support_url=_support_url(settings.get("support_url")),
        color=color.lower() if readable_brand_color(color) else None, slug=tenant.slug)


def brand_css(brand: Branding) -> str:
    """The tenant's colour as CSS custom properties (style.css reads them): a stylesheet
    on this site, since the pages' CSP allows no inline style."""
    if not brand.color:
        return "/* no brand colour */\n"
    return (f":root {{ --brand: {brand.color}; --brand-hover: {_darker(brand.color)}; "
            "--brand-text: #ffffff; }\n")


def css_version(brand: Branding) -> str | None:
    return hashlib.sha256(brand.color.encode()).hexdigest()[:8] if brand.color else None


def tenant_for_authorization(client: Client | None, organization: str | None = None,
                             chosen_tenant_id: int | None = None) -> Tenant | None:
    """Whose branding a sign-in for ``client`` shows (module docstring)."""
    if client is None:
        return None
    if chosen_tenant_id is not None:
        chosen = db.session.get(Tenant, chosen_tenant_id)
        if chosen is not None and serves(client, chosen.id):
            return chosen
    if organization:
        wanted = get_by_slug(organization) if len(organization) <= 63 else None
        if wanted is not None and serves(client, wanted.id):
            return wanted
    return db.session.get(Tenant, client.tenant_id) if client.tenant_id is not None else None


def parse_display_name(item: str, supported: list[str] | tuple[str, ...]) -> tuple[str, str]:
    """``fr=Acme Flotte`` -> ("fr", "Acme Flotte"); "fr=" clears that language's name."""
    locale, sep, name = item.partition("=")
    locale = locale.strip().lower()
    if not sep or locale not in supported:
        raise BrandingError(f"--display-name {item!r}: write LANG=NAME, LANG one of "
                            f"{', '.join(supported)}")
    return locale, name


def summary(tenant: Tenant) -> dict:
    """The branding settings in effect, for the command line's JSON answer."""
    brand = branding(tenant)
    logo = (tenant.settings or {}).get("logo") or {}
    return {"name": brand.name, "names": dict((tenant.settings or {}).get("brand_names") or {}),
            "logo": logo.get("type"), "logo_url": brand.logo_url, "color": brand.color,
            "support_email": brand.support_email, "support_url": brand.support_url}
