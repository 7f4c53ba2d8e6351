"""Which language a page (or a claim) is in: one rule, in one place.

Precedence, first match wins:

1. the language saved for the signed-in person (``User.locale``, set by the
   language switcher or the account page);
2. the language chosen with the switcher in this browser session (a person not
   signed in: kept in the session cookie);
3. ``ui_locales`` of the authorization request (space-separated BCP 47 tags,
   in order of preference; OIDC Core 3.1.2.1);
4. the browser's ``Accept-Language`` (by quality);
5. the default (``BABEL_DEFAULT_LOCALE``).

A person's own choice (1, 2) wins over what the application asks for (3), which
wins over the browser's default (4). Tags match on their language: ``fr-CA`` is
``fr``. Emails to a known person use 1 only (mail/messages.py: ``user.locale``),
never the language of whoever made the request.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def language_of(tag: object) -> str:
    """``fr-CA`` -> ``fr``; ``''`` for anything that is not a tag."""
    text = str(tag or "").strip().replace("_", "-")
    language = text.split("-", 1)[0].lower()
    return language if language.isascii() and language.isalpha() and len(language) <= 8 else ""


def supported_or_none(tag: object, supported: Sequence[str]) -> str | None:
    language = language_of(tag)
    return language if language in supported else None


def first_supported(tags: Iterable[object], supported: Sequence[str]) -> str | None:
    for tag in tags:
        language = supported_or_none(tag, supported)
        if language:
            return language
    return None


def _accepted(accept_languages: Iterable[tuple[str, float]], supported: Sequence[str]) \
        -> str | None:
    ranked = sorted(((q, i, tag) for i, (tag, q) in enumerate(accept_languages) if q > 0),
                    key=lambda item: (-item[0], item[1]))
    for _q, _i, tag in ranked:
        if tag == "*":
            return supported[0]
        language = supported_or_none(tag, supported)
        if language:
            return language
    return None


def choose(supported: Sequence[str], *, saved: str | None = None, chosen: str | None = None,
           ui_locales: str | None = None,
           accept_languages: Iterable[tuple[str, float]] = (), default: str = "en") -> str:
    """The page's language by the precedence in the module docstring."""
    return (supported_or_none(saved, supported)
            or supported_or_none(chosen, supported)
            or first_supported((ui_locales or "").split()[:20], supported)
            or _accepted(accept_languages, supported)
            or (default if default in supported else supported[0]))


# Each language's own name, as the switcher shows it (in that language, whatever the page's).
LANGUAGE_NAMES = {"en": "English", "fr": "Français"}


def save_choice(user, choice: str, supported: Sequence[str]) -> str | None:
    """The supported language ``choice`` names (saved on ``user`` when given; no commit),
    or None for anything else."""
    language = choice if choice in supported and choice in LANGUAGE_NAMES else None
    if language and user is not None:
        user.locale = language
    return language


MAX_CLAIMS_LOCALES = 100


def claims_locales(raw: object) -> str | None:
    """The request's ``claims_locales`` as stored with the grant: its language tags
    (space-separated, OIDC Core 5.2), the ones that are tags, at most 100 characters."""
    tags = [language_of(tag) for tag in str(raw or "").split()[:10]]
    kept = " ".join(dict.fromkeys(tag for tag in tags if tag))
    return kept[:MAX_CLAIMS_LOCALES] or None


def localised_name(settings: object, default: str, locales: object = ()) -> str:
    """A tenant's name in the first of ``locales`` (tags, or a space-separated string)
    it has one for (``settings["brand_names"]``), else ``default``."""
    names = settings.get("brand_names") if isinstance(settings, dict) else None
    tags = locales.split() if isinstance(locales, str) else list(locales or ())
    if isinstance(names, dict):
        for tag in tags:
            value = names.get(language_of(tag))
            if isinstance(value, str) and value.strip():
                return value.strip()
    return default
