"""Company details typed at sign-up (seed 004): identification numbers, phone, slug.

Identification types and what is checked (spaces, dots and dashes are ignored):

* ``siren``: French company number, 9 digits with a valid Luhn checksum.
* ``siret``: French establishment number, 14 digits, Luhn (La Poste's
  establishments, SIREN 356000000, use a digit sum divisible by 5 instead).
* ``vat``: EU (plus GB, XI and CH) VAT number: country prefix and the
  country's format; French numbers also check their key against the SIREN.
* ``duns``: Dun & Bradstreet number, 9 digits (no public checksum).
* ``other``: 2 to 50 letters, digits, spaces, ``-``, ``.`` or ``/``.

Phone numbers are kept in E.164 form (``+33612345678``): a ``+`` or ``00``
prefix and the country code are required; spaces, dots, dashes, brackets and
a ``(0)`` trunk prefix are tolerated and dropped.
"""

from __future__ import annotations

import re
import unicodedata

ID_TYPES = ("siren", "siret", "vat", "duns", "other")
MAX_COMPANY_NAME = 200

# Country prefix -> pattern of the rest (VIES formats).
VAT_FORMATS = {
    "AT": r"U\d{8}", "BE": r"[01]\d{9}", "BG": r"\d{9,10}", "CY": r"\d{8}[A-Z]",
    "CZ": r"\d{8,10}", "DE": r"\d{9}", "DK": r"\d{8}", "EE": r"\d{9}", "EL": r"\d{9}",
    "ES": r"[A-Z0-9]\d{7}[A-Z0-9]", "FI": r"\d{8}", "FR": r"[A-HJ-NP-Z0-9]{2}\d{9}",
    "HR": r"\d{11}", "HU": r"\d{8}", "IE": r"\d{7}[A-W][A-I]?|\d[A-Z+*]\d{5}[A-W]",
    "IT": r"\d{11}", "LT": r"\d{9}|\d{12}", "LU": r"\d{8}", "LV": r"\d{11}", "MT": r"\d{8}",
    "NL": r"\d{9}B\d{2}", "PL": r"\d{10}", "PT": r"\d{9}", "RO": r"[1-9]\d{1,9}",
    "SE": r"\d{10}01", "SI": r"\d{8}", "SK": r"\d{10}",
    "GB": r"\d{9}|\d{12}|GD\d{3}|HA\d{3}", "XI": r"\d{9}|\d{12}|GD\d{3}|HA\d{3}",
    "CH": r"E\d{9}(?:MWST|TVA|IVA)?",
}
_SEPARATORS = re.compile(r"[\s.\-]")
_OTHER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ./-]{0,48}[A-Za-z0-9]$")
_PHONE_SEPARATORS = re.compile(r"[\s.\-()/]")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


class InvalidIdentification(ValueError):
    """``type`` (unknown type), ``format`` (wrong shape) or ``checksum``."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class InvalidPhone(ValueError):
    pass


def luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _siren(number: str) -> str:
    if not re.fullmatch(r"\d{9}", number):
        raise InvalidIdentification("format")
    if not luhn_ok(number):
        raise InvalidIdentification("checksum")
    return number


def _siret(number: str) -> str:
    if not re.fullmatch(r"\d{14}", number):
        raise InvalidIdentification("format")
    if number.startswith("356000000"):  # La Poste
        if sum(int(c) for c in number) % 5:
            raise InvalidIdentification("checksum")
    elif not luhn_ok(number):
        raise InvalidIdentification("checksum")
    return number


def _vat(number: str) -> str:
    number = number.upper()
    country, rest = number[:2], number[2:]
    if country == "GR":
        country = "EL"
    pattern = VAT_FORMATS.get(country)
    if pattern is None or not re.fullmatch(pattern, rest):
        raise InvalidIdentification("format")
    if country == "FR" and rest[:2].isdigit():
        siren = rest[2:]
        if int(rest[:2]) != (12 + 3 * (int(siren) % 97)) % 97:
            raise InvalidIdentification("checksum")
    return country + rest


def _duns(number: str) -> str:
    if not re.fullmatch(r"\d{9}", number):
        raise InvalidIdentification("format")
    return number


def normalize_identification(id_type: str | None, raw: str | None) -> str:
    """The stored form of an identification number, or InvalidIdentification."""
    raw = (raw or "").strip()
    if id_type not in ID_TYPES:
        raise InvalidIdentification("type")
    if not raw or len(raw) > 100:
        raise InvalidIdentification("format")
    if id_type == "other":
        if not _OTHER_RE.match(raw):
            raise InvalidIdentification("format")
        return re.sub(r"\s+", " ", raw)
    compact = _SEPARATORS.sub("", raw)
    return {"siren": _siren, "siret": _siret, "vat": _vat, "duns": _duns}[id_type](compact)


def normalize_phone(raw: str | None) -> str:
    """E.164 (``+33612345678``) or InvalidPhone."""
    value = (raw or "").strip()
    if not value or len(value) > 40:
        raise InvalidPhone("phone")
    value = value.replace("(0)", "")
    value = _PHONE_SEPARATORS.sub("", value)
    if value.startswith("00"):
        value = "+" + value[2:]
    if not _E164.match(value):
        raise InvalidPhone("phone")
    return value


def clean_name(raw: str | None, max_length: int) -> str | None:
    """A name typed by a person: one line, no control characters, spaces collapsed.

    None when empty or too long (the caller says which).
    """
    text = unicodedata.normalize("NFC", raw or "")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in text):
        return None
    text = re.sub(r"\s+", " ", text).strip()
    if not text or len(text) > max_length:
        return None
    return text


def slugify(name: str, max_length: int = 50) -> str:
    """``Société Générale & Fils`` -> ``societe-generale-fils`` (never empty)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    slug = slug[:max_length].strip("-")
    return slug or "company"
