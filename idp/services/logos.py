"""Logo files: proven to be the image their bytes and their name say, or refused.

A logo is PNG, JPEG, WebP or SVG, at most ``max_bytes`` and ``max_side`` pixels a
side (``IDP_LOGO_MAX_BYTES``, ``IDP_LOGO_MAX_SIDE``). The type comes from the
bytes: Pillow decodes a raster image completely (a truncated or forged file
fails), then it is re-encoded, which drops metadata and anything appended to the
file (a PNG/HTML polyglot keeps only the PNG). The file name must agree with the
type, so a PNG named .svg is refused rather than guessed.

An SVG is refused, not cleaned, when it holds anything beyond plain drawing:
scripts, ``foreignObject``, images, links, animations, event handler attributes,
references to other documents (``href`` not starting with ``#``, ``url()`` to
elsewhere, ``@import``), a DOCTYPE or entities. A sanitiser must understand every
way SVG can run code or fetch a resource and rewrite the file without breaking
it; refusing needs only an allow-list, cannot produce a logo that looks different
from the one uploaded, and an operator can re-export a plain SVG. The logo is
also served with ``default-src 'none'`` and shown through ``<img>``, where SVG
scripts never run (flows/branding_views.py).
"""

from __future__ import annotations

import hashlib
import io
import re
import xml.etree.ElementTree as ET  # noqa: S405 - DOCTYPE and entities are refused first
from dataclasses import dataclass

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


class LogoError(ValueError):
    """A logo file that cannot be used; the message says why (for the operator)."""


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
        raise LogoError(f"the SVG's {where} loads other files or runs code")
    for target in _CSS_URL.findall(text):
        if not target.startswith("#"):
            raise LogoError(f"the SVG's {where} refers to another file ({target[:60]!r})")


def _local_name(name: str) -> tuple[str | None, str]:
    if name.startswith("{"):
        namespace, _, local = name[1:].partition("}")
        return namespace, local
    return None, name


def check_svg(data: bytes) -> None:
    """Refuse an SVG holding anything beyond plain drawing (see the module docstring)."""
    lowered = data.lower()
    if b"<!doctype" in lowered or b"<!entity" in lowered:
        raise LogoError("the SVG has a DOCTYPE or entities; export a plain SVG")
    if b"<?xml-stylesheet" in lowered:
        raise LogoError("the SVG loads a style sheet; export a plain SVG")
    try:
        root = ET.fromstring(data)  # noqa: S314 - no DTD can reach the parser (refused above)
    except ET.ParseError as exc:
        raise LogoError("the file is not a valid SVG image (it is not well-formed XML)") \
            from exc
    if root.tag != f"{{{SVG_NS}}}svg":
        raise LogoError("the file is not an SVG image (no <svg> root in the SVG namespace)")
    for element in root.iter():
        namespace, local = _local_name(str(element.tag))
        if namespace != SVG_NS or local not in SVG_ELEMENTS:
            raise LogoError(f"the SVG contains <{local}>, which a logo may not hold "
                                "(scripts, foreignObject, images, links and animations are "
                                "refused)")
        if local == "style":
            _check_css(element.text or "", "style element")
        for name, value in element.attrib.items():
            attr_ns, attr = _local_name(name)
            if attr.lower().startswith("on"):
                raise LogoError(f"the SVG has an event handler ({attr}); scripts are refused")
            if attr_ns not in (None, XLINK_NS, XML_NS) or (attr_ns == XML_NS and attr == "base"):
                raise LogoError(f"the SVG has an attribute {attr!r} from another vocabulary")
            if attr == "href" and not value.strip().startswith("#"):
                raise LogoError("the SVG refers to another document (href); only "
                                    "references inside the file (#id) are allowed")
            if "url(" in value.lower() or attr == "style":
                _check_css(value, f"{attr} attribute")
            if "javascript:" in value.lower():
                raise LogoError("the SVG contains a javascript: address")


def _raster(data: bytes, max_side: int) -> Logo:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data), formats=list(RASTER_TYPES)) as image:
            kind = image.format
            width, height = image.size
            if width > max_side or height > max_side:
                raise LogoError(f"the image is {width}x{height} pixels; a logo may be at "
                                    f"most {max_side}x{max_side}")
            image.load()  # decode every pixel: a truncated or forged file fails here
            out = io.BytesIO()
            options = {"quality": 90} if kind == "JPEG" else {}
            if kind == "WEBP":
                options = {"lossless": True}
            image.save(out, format=kind, **options)
    except LogoError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError,
            Image.DecompressionBombError) as exc:
        raise LogoError("the file is not a PNG, JPEG, WebP or SVG image") from exc
    return Logo(RASTER_TYPES[kind], out.getvalue())


def validate_logo(data: bytes, filename: str, *, max_bytes: int, max_side: int) -> Logo:
    """A logo proven to be what its bytes and its name say, or LogoError."""
    if not data:
        raise LogoError("the logo file is empty")
    if len(data) > max_bytes:
        raise LogoError(f"the logo is larger than {max_bytes // 1024} KiB, the most "
                            "accepted")
    extension = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    named = EXTENSIONS.get(extension)
    if named is None:
        raise LogoError("the logo's file name must end in .png, .jpg, .jpeg, .webp or .svg")
    if _is_svg_candidate(data):
        check_svg(data)
        logo = Logo(SVG_TYPE, data)
    else:
        logo = _raster(data, max_side)
    if logo.content_type != named:
        raise LogoError(f"the file is a {logo.content_type} image but its name ends in "
                            f"{extension}; rename it or export it again")
    return logo



def read_logo_file(path: str, *, max_bytes: int, max_side: int) -> Logo:
    """A logo file from disk (the operator's), checked like any upload."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)  # never more than that into memory
    except OSError as exc:
        raise LogoError(f"cannot read {path!r}: {exc.strerror or exc}") from exc
    return validate_logo(data, path.rsplit("/", 1)[-1], max_bytes=max_bytes, max_side=max_side)
