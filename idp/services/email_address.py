"""Email addresses typed by people: the one validator and normal form of every address we store.

Every way an account gets an address goes through ``normalize`` (registration,
company sign-up, invitations, ``accounts.create_user`` and so the CLI, email
change); lookups use ``accounts.normalize_email`` (the same form, lenient on
malformed input). ``idp.mail.headers.validate_address`` only guards mail headers.

Decision (see docs/registration.md):

* The address is trimmed and NFC-normalised, then split at its only ``@``.
* The local part must be plain ASCII ``dot-atom`` (RFC 5322 without quoting or
  comments). Non-ASCII local parts (``josé@...``) need SMTPUTF8, which many
  receiving servers still refuse, so they are refused with a clear message
  rather than accepted and never delivered.
* Internationalised domain names are accepted and stored in their ASCII
  (A-label, punycode) form, per IDNA 2008 with UTS #46 mapping:
  ``jose@exämple.fr`` is stored as ``jose@xn--exmple-cua.fr``. SMTP needs
  that form anyway, and one form per address keeps ``users.email`` unique.
* The whole address is lower-cased (as ``accounts.normalize_email`` does), at
  most 64 characters before the ``@`` and 254 in all. IP literals, single-label
  domains and numeric top-level domains are refused.
"""

from __future__ import annotations

import functools
import re
import unicodedata

import idna

MAX_LOCAL = 64
MAX_ADDRESS = 254
# RFC 5322 atext, without quoting; dots only between atoms.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
LOCAL_RE = re.compile(rf"^{_ATOM}(?:\.{_ATOM})*$")
LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class InvalidEmail(ValueError):
    """Why an address is refused: ``malformed``, ``non_ascii_local`` or ``too_long``."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def normalize(raw: str | None) -> str:
    """The stored form of an address, or InvalidEmail."""
    address = unicodedata.normalize("NFC", (raw or "").strip())
    if not address:
        raise InvalidEmail("malformed")
    if len(address) > 4 * MAX_ADDRESS:
        raise InvalidEmail("too_long")
    local, sep, domain = address.rpartition("@")
    if not sep or not local or not domain:
        raise InvalidEmail("malformed")
    if not local.isascii():
        raise InvalidEmail("non_ascii_local" if "@" not in local else "malformed")
    if not LOCAL_RE.match(local):
        raise InvalidEmail("malformed")
    if len(local) > MAX_LOCAL:
        raise InvalidEmail("too_long")
    ascii_domain = _ascii_domain(domain)
    normalized = f"{local.lower()}@{ascii_domain}"
    if len(normalized) > MAX_ADDRESS:
        raise InvalidEmail("too_long")
    return normalized


def is_valid(raw: str | None) -> bool:
    """Whether ``normalize`` accepts the address (for a lookup guard; forms want the reason)."""
    try:
        normalize(raw)
    except InvalidEmail:
        return False
    return True


@functools.lru_cache(maxsize=1024)
def _ascii_domain(domain: str) -> str:
    """The domain's A-label form (IDNA 2008, UTS 46), or InvalidEmail. Remembered: the
    IDNA mapping is most of the cost of normalising an address, and domains recur."""
    if domain.startswith("[") or any(c.isspace() for c in domain):
        raise InvalidEmail("malformed")
    if len(domain) > 253:
        raise InvalidEmail("too_long")
    try:
        ascii_domain = idna.encode(domain, uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError, ValueError) as exc:
        raise InvalidEmail("malformed") from exc
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(LABEL_RE.match(label) for label in labels):
        raise InvalidEmail("malformed")
    if labels[-1].isdigit():
        raise InvalidEmail("malformed")
    return ascii_domain


def display(address: str) -> str:
    """The address as a person reads it: the domain in Unicode (U-labels) when it is IDN."""
    local, sep, domain = (address or "").rpartition("@")
    if not sep or "xn--" not in domain:
        return address
    try:
        return f"{local}@{idna.decode(domain)}"
    except (idna.IDNAError, UnicodeError, ValueError):
        return address
