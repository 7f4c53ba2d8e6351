"""Header safety: no CR, LF or other control character ever reaches a header.

Addresses are validated and refused when suspicious (a recipient is never
"repaired" into another one); free text such as a subject or a display name is
cleaned: control and line-separator characters become spaces. The message is
then built with ``email.policy.SMTP``, which refuses CR/LF on its own too.
"""

from __future__ import annotations

import re
import unicodedata
from email.headerregistry import Address
from email.utils import parseaddr

MAX_ADDRESS_LENGTH = 254
MAX_SUBJECT_LENGTH = 250
_ADDRESS_FORBIDDEN = set('<>()[]\\,;:"')
_SPACES = re.compile(r"\s+")


class MailError(ValueError):
    """A message that cannot be built: unknown kind, bad address, missing context."""


def _is_control(char: str) -> bool:
    # Cc: C0/C1 controls (CR, LF, NUL, ...); Zl/Zp: U+2028/U+2029 line and paragraph separators.
    return unicodedata.category(char) in ("Cc", "Zl", "Zp")


def clean_text(value: object, max_length: int = MAX_SUBJECT_LENGTH) -> str:
    """Free text for a header: one line, controls replaced by spaces, spaces collapsed."""
    text = "".join(" " if _is_control(c) else c for c in str(value or ""))
    text = _SPACES.sub(" ", text).strip()
    return text[:max_length].rstrip()


def validate_address(value: object, *, dotted_domain: bool = True) -> str:
    """A bare ``local@domain`` address, or MailError. Never rewritten into another address.

    ``dotted_domain=False`` accepts ``no-reply@localhost`` (sender addresses only).
    """
    address = str(value or "").strip()
    if not address or len(address) > MAX_ADDRESS_LENGTH:
        raise MailError("invalid email address")
    if any(_is_control(c) or c.isspace() or c in _ADDRESS_FORBIDDEN for c in address):
        raise MailError("invalid email address: forbidden character")
    local, sep, domain = address.rpartition("@")
    if not sep or not local or not domain or "@" in local \
            or (dotted_domain and "." not in domain) \
            or domain.startswith((".", "-")) or domain.endswith((".", "-")) or ".." in domain:
        raise MailError("invalid email address")
    try:
        Address(addr_spec=address)
    except (ValueError, IndexError) as exc:
        raise MailError("invalid email address") from exc
    return address


def parse_mailbox(value: str) -> tuple[str, str]:
    """Split ``"Name <addr>"`` (IDP_MAIL_FROM) into a clean display name and a valid address."""
    if any(c in (value or "") for c in "\r\n"):
        raise MailError("invalid mailbox: line break")
    name, address = parseaddr(value or "")
    return clean_text(name, 120), validate_address(address, dotted_domain=False)


def mailbox(display_name: str | None, address: str) -> Address:
    """An ``Address`` header value built from cleaned parts."""
    return Address(display_name=clean_text(display_name, 120),
                   addr_spec=validate_address(address, dotted_domain=False))


def mask_email(address: str) -> str:
    """``j***@example.com``: enough for the owner to recognise, not enough to harvest."""
    local, sep, domain = (address or "").partition("@")
    if not sep:
        return "***"
    return f"{local[:1]}***@{domain}"
