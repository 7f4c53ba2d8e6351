"""The page language precedence (services/locale.py): saved, switcher, ui_locales, Accept-Language."""

from __future__ import annotations

import pytest

from idp.services.locale import choose, language_of, save_choice

SUPPORTED = ["en", "fr"]
FRENCH_BROWSER = [("fr-FR", 1.0), ("en", 0.5)]


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({}, "en"),
    ({"accept_languages": FRENCH_BROWSER}, "fr"),
    ({"accept_languages": [("de", 1.0), ("fr", 0.3), ("en", 0.2)]}, "fr"),
    ({"accept_languages": [("en", 0.2), ("fr", 0.9)]}, "fr"),  # by quality, not order
    ({"accept_languages": [("fr", 0)]}, "en"),  # q=0: not acceptable
    ({"accept_languages": [("de", 1.0)]}, "en"),
    ({"accept_languages": [("*", 1.0)]}, "en"),
    ({"ui_locales": "fr-CA en", "accept_languages": [("en", 1.0)]}, "fr"),
    ({"ui_locales": "de it", "accept_languages": FRENCH_BROWSER}, "fr"),  # none supported
    ({"ui_locales": "de en", "accept_languages": FRENCH_BROWSER}, "en"),
    ({"chosen": "en", "ui_locales": "fr", "accept_languages": FRENCH_BROWSER}, "en"),
    ({"saved": "fr", "chosen": "en", "ui_locales": "en", "accept_languages": [("en", 1.0)]},
     "fr"),
    ({"saved": "de", "chosen": "fr", "accept_languages": [("en", 1.0)]}, "fr"),
    ({"saved": "xx-<script>", "accept_languages": FRENCH_BROWSER}, "fr"),
    ({"default": "fr"}, "fr"),
])
def test_precedence_saved_then_switcher_then_ui_locales_then_accept_language(kwargs, expected):
    assert choose(SUPPORTED, **kwargs) == expected


def test_language_of_tags():
    assert language_of("fr-CA") == "fr" and language_of("FR_fr") == "fr"
    assert language_of("") == "" and language_of("1234") == "" and language_of("é") == ""


def test_save_choice_keeps_only_supported_languages():
    class Person:
        locale = None

    person = Person()
    assert save_choice(person, "de", SUPPORTED) is None and person.locale is None
    assert save_choice(person, "fr", SUPPORTED) == "fr" and person.locale == "fr"
    assert save_choice(None, "en", SUPPORTED) == "en"
