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
so a value edited in the database cannot break a page):

* A colour must reach WCAG AA 4.5:1 against the page background (#f3f5f8, the
  darkest light background it is used on): it colours links on that background and
  on the white card, and is the background of white button text (more than 4.5:1
  then, white being lighter).
* A logo is PNG, JPEG, WebP or SVG, at most ``IDP_LOGO_MAX_BYTES`` and
  ``IDP_LOGO_MAX_SIDE`` pixels a side. The type comes from the bytes (Pillow
  decodes a raster image completely, then it is re-encoded, which drops metadata
  and anything appended to the file); the file name must agree with it, so a PNG
  named .svg is refused rather than guessed. An SVG is refused, not cleaned, when
  it holds anything beyond plain drawing: scripts, ``foreignObject``, event
  handler attributes, references to other documents (``href`` not starting with
  ``#``, ``url()`` to elsewhere, ``@import``), a DOCTYPE or entities. A sanitiser
  must understand every way SVG can run code or fetch a resource and rewrite the
  file without breaking it; refusing needs only an allow-list, cannot produce a
  logo that looks different from the one uploaded, and an operator can re-export
  a plain SVG. The logo is also served with ``default-src 'none'`` and shown
  through ``<img>``, where SVG scripts never run.

Which tenant's branding a sign-in shows (``tenant_for_authorization``): the tenant
chosen in the flow, else the ``organization`` of the request when the client
serves that tenant, else the client's own tenant, else the deployment's name.
An ``organization`` the client does not serve is ignored (the client's branding,
or none, is shown): a request cannot dress a client in another tenant's colours.
This reveals no more than ``/t/<slug>/``, which every tenant has.
"""

from __future__ import annotations

import hashlib
import io
import re
import xml.etree.ElementTree as ET  # noqa: S405 - DOCTYPE and entities are refused first
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select

from idp.extensions import db
from idp.models import Client, Tenant, TenantLogo
from idp.services.tenants import get_by_slug

COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
_HOST = re.compile(r"^[a-z0-9.-]{1,253}(:\d{1,5})?$")
_PHONE = re.compile(r"^\+?[0-9 ().-]{4,30}$")
WHITE = "#ffffff"
PAGE_BACKGROUND = "#f3f5f8"  # style.css: body (the card is white); the darker of the two
MIN_CONTRAST = 4.5  # WCAG 2.1 AA, normal text (1.4.3)
MAX_NAME = 120

RASTER_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
SVG_TYPE = "image/svg+xml"
EXTENSIONS = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
              ".webp": "image/webp", ".svg": SVG_TYPE}
FILE_NAMES = {"image/png": "logo.png", "image/jpeg": "logo.jpg", "image/webp": "logo.webp",
              SVG_TYPE: "logo.svg"}

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
XML_NS = "http://www.w3.org/XML/1998/namespace"
# Plain drawing only: no script, foreignObject, image, a (links), animate/set (which can
# rewrite href), iframe, feImage (fetches), use of other documents.
SVG_ELEMENTS = frozenset({
    "svg", "g", "defs", "title", "desc", "symbol", "use", "path", "rect", "circle",
    "ellipse", "line", "polyline", "polygon", "text", "tspan", "textPath", "linearGradient",
    "radialGradient", "stop", "clipPath", "mask", "pattern", "style", "filter",
    "feGaussianBlur", "feOffset", "feBlend", "feColorMatrix", "feComposite", "feFlood",
    "feMerge", "feMergeNode", "feMorphology",
})
_CSS_URL = re.compile(r"url\(\s*['\"]?\s*([^'\")\s]*)", re.IGNORECASE)


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


# ----------------------------------------------------------------------------- logo


@dataclass(frozen=True)
class Logo:
    content_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _is_svg_candidate(data: bytes) -> bool:
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"<")


def _check_css(text: str, where: str) -> None:
    lowered = text.lower()
    if "@import" in lowered or "javascript:" in lowered or "expression(" in lowered:
        raise BrandingError(f"the SVG's {where} loads other files or runs code")
    for target in _CSS_URL.findall(text):
        if not target.startswith("#"):
            raise BrandingError(f"the SVG's {where} refers to another file ({target[:60]!r})")


def _local_name(name: str) -> tuple[str | None, str]:
    if name.startswith("{"):
        namespace, _, local = name[1:].partition("}")
        return namespace, local
    return None, name


def check_svg(data: bytes) -> None:
    """Refuse an SVG holding anything beyond plain drawing (see the module docstring)."""
    lowered = data.lower()
    if b"<!doctype" in lowered or b"<!entity" in lowered:
        raise BrandingError("the SVG has a DOCTYPE or entities; export a plain SVG")
    if b"<?xml-stylesheet" in lowered:
        raise BrandingError("the SVG loads a style sheet; export a plain SVG")
    try:
        root = ET.fromstring(data)  # noqa: S314 - no DTD can reach the parser (refused above)
    except ET.ParseError as exc:
        raise BrandingError("the file is not a valid SVG image (it is not well-formed XML)") \
            from exc
    if root.tag != f"{{{SVG_NS}}}svg":
        raise BrandingError("the file is not an SVG image (no <svg> root in the SVG namespace)")
    for element in root.iter():
        namespace, local = _local_name(str(element.tag))
        if namespace != SVG_NS or local not in SVG_ELEMENTS:
            raise BrandingError(f"the SVG contains <{local}>, which a logo may not hold "
                                "(scripts, foreignObject, images, links and animations are "
                                "refused)")
        if local == "style":
            _check_css(element.text or "", "style element")
        for name, value in element.attrib.items():
            attr_ns, attr = _local_name(name)
            if attr.lower().startswith("on"):
                raise BrandingError(f"the SVG has an event handler ({attr}); scripts are refused")
            if attr_ns not in (None, XLINK_NS, XML_NS) or (attr_ns == XML_NS and attr == "base"):
                raise BrandingError(f"the SVG has an attribute {attr!r} from another vocabulary")
            if attr == "href" and not value.strip().startswith("#"):
                raise BrandingError("the SVG refers to another document (href); only "
                                    "references inside the file (#id) are allowed")
            if "url(" in value.lower() or attr == "style":
                _check_css(value, f"{attr} attribute")
            if "javascript:" in value.lower():
                raise BrandingError("the SVG contains a javascript: address")


def _raster(data: bytes, max_side: int) -> Logo:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data), formats=list(RASTER_TYPES)) as image:
            kind = image.format
            width, height = image.size
            if width > max_side or height > max_side:
                raise BrandingError(f"the image is {width}x{height} pixels; a logo may be at "
                                    f"most {max_side}x{max_side}")
            image.load()  # decode every pixel: a truncated or forged file fails here
            out = io.BytesIO()
            options = {"quality": 90} if kind == "JPEG" else {}
            if kind == "WEBP":
                options = {"lossless": True}
            image.save(out, format=kind, **options)
    except BrandingError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError,
            Image.DecompressionBombError) as exc:
        raise BrandingError("the file is not a PNG, JPEG, WebP or SVG image") from exc
    return Logo(RASTER_TYPES[kind], out.getvalue())


def validate_logo(data: bytes, filename: str, *, max_bytes: int, max_side: int) -> Logo:
    """A logo proven to be what its bytes and its name say, or BrandingError."""
    if not data:
        raise BrandingError("the logo file is empty")
    if len(data) > max_bytes:
        raise BrandingError(f"the logo is larger than {max_bytes // 1024} KiB, the most "
                            "accepted")
    extension = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    named = EXTENSIONS.get(extension)
    if named is None:
        raise BrandingError("the logo's file name must end in .png, .jpg, .jpeg, .webp or .svg")
    if _is_svg_candidate(data):
        check_svg(data)
        logo = Logo(SVG_TYPE, data)
    else:
        logo = _raster(data, max_side)
    if logo.content_type != named:
        raise BrandingError(f"the file is a {logo.content_type} image but its name ends in "
                            f"{extension}; rename it or export it again")
    return logo


# ----------------------------------------------------------------------------- settings


def _support_url(value: object) -> str | None:
    url = str(value or "").strip()
    if not url or len(url) > 2000 or any(c.isspace() or ord(c) < 32 or c in "\"'<>\\"
                                          for c in url):
        return None
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.netloc and "@" not in parts.netloc \
            and _HOST.match(parts.netloc.lower()):
        return url
    return None


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
    names = settings.get("brand_names") if isinstance(settings.get("brand_names"), dict) else {}
    for locale in locales:
        value = names.get(str(locale).replace("_", "-").split("-")[0].lower())
        if isinstance(value, str) and value.strip():
            return value.strip()[:MAX_NAME]
    return str(settings.get("brand_name") or tenant.name)[:MAX_NAME]


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


def _serves(client: Client, tenant: Tenant) -> bool:
    """Does this client serve the tenant's people? Its own tenant, or any for a shared one."""
    return client.tenant_id is None or client.tenant_id == tenant.id


def tenant_for_authorization(client: Client | None, organization: str | None = None,
                             chosen_tenant_id: int | None = None) -> Tenant | None:
    """Whose branding a sign-in for ``client`` shows (module docstring)."""
    if client is None:
        return None
    if chosen_tenant_id is not None:
        chosen = db.session.get(Tenant, chosen_tenant_id)
        if chosen is not None and _serves(client, chosen):
            return chosen
    if organization:
        wanted = get_by_slug(organization) if len(organization) <= 63 else None
        if wanted is not None and _serves(client, wanted):
            return wanted
    return db.session.get(Tenant, client.tenant_id) if client.tenant_id is not None else None


def read_logo_file(path: str, *, max_bytes: int, max_side: int) -> Logo:
    """A logo file from disk (the operator's), checked like any upload."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)  # never more than that into memory
    except OSError as exc:
        raise BrandingError(f"cannot read {path!r}: {exc.strerror or exc}") from exc
    return validate_logo(data, path.rsplit("/", 1)[-1], max_bytes=max_bytes, max_side=max_side)


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
