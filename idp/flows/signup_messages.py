"""What the sign-up, registration and email-change pages say about a field's problem.

Services return codes per field (``{"email": "non_ascii_local"}``); these
functions turn them into translated sentences, looked up at request time.
"""

from __future__ import annotations

from flask_babel import gettext as _

_GENERIC = {
    "missing": lambda: _("This field is required."),
    "invalid": lambda: _("This value is not valid."),
}


def _email(code: str) -> str:
    return {
        "malformed": lambda: _("Enter a valid email address, such as name@example.com."),
        "non_ascii_local": lambda: _(
            "Use an address without accents or other special characters before the @: "
            "many mail servers cannot deliver to such addresses."),
        "too_long": lambda: _("This email address is too long."),
        "same": lambda: _("This is already your email address."),
        "mismatch": lambda: _("The two email addresses do not match."),
    }.get(code, _GENERIC["invalid"])()


_ID_FORMATS = {
    "siren": lambda: _("A SIREN number has 9 digits, such as 732 829 320."),
    "siret": lambda: _("A SIRET number has 14 digits, such as 732 829 320 00074."),
    "vat": lambda: _("Enter the VAT number with its country prefix, such as FR44732829320."),
    "duns": lambda: _("A D-U-N-S number has 9 digits."),
    "other": lambda: _("Use 2 to 50 letters, digits, spaces, dots, dashes or slashes."),
}


def field_errors(errors: dict[str, str], id_type: str | None = None) -> dict[str, str]:
    """Translated message per field."""
    messages: dict[str, str] = {}
    for field, code in errors.items():
        if field in ("email", "new_email"):
            message = _email(code) if code != "missing" else _("Enter your email address.")
        elif field == "confirm_email":
            message = _email("mismatch")
        elif field == "company_name":
            message = _("Enter the name of the company.") if code == "missing" else _(
                "Enter a company name of at most 200 characters, on one line.")
        elif field == "identification_type":
            message = _("Choose an identification type.")
        elif field == "identification_number":
            if code == "missing":
                message = _("Enter the identification number.")
            elif code == "checksum":
                message = _("This number is not valid: check it for a typing mistake.")
            else:
                message = _ID_FORMATS.get(id_type or "", _GENERIC["invalid"])()
        elif field == "contact_phone":
            message = _("Enter a contact phone number.") if code == "missing" else _(
                "Enter the number in international format, with the country code, "
                "such as +33 6 12 34 56 78.")
        elif field == "given_name":
            message = _("Enter your first name.") if code == "missing" else _(
                "Enter a first name of at most 100 characters, on one line.")
        elif field == "family_name":
            message = _("Enter your last name.") if code == "missing" else _(
                "Enter a last name of at most 100 characters, on one line.")
        elif field == "locale":
            message = _("Choose a language.")
        elif field == "password" and code == "wrong":
            message = _("This password is not correct.")
        else:
            continue  # password problems are listed by _password_fields.html
        messages[field] = message
    return messages


def link_message(expired: bool) -> str:
    if expired:
        return _("This link has expired.")
    return _("This link is not valid: it was already used, replaced by a newer one, or "
             "copied incompletely.")
