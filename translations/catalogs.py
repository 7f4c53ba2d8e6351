"""Catalog maintenance: `update` merges new strings, `check` fails on any missing translation.

The `.po` files are the one source of the translations: translators edit them with
Poedit, Weblate or a text editor. English is the source language, so `update` fills
the English catalog with the source strings; French is translated in its `.po`.
`check` extracts the strings from the code afresh, so a string added without running
`update` fails too, and it refuses a header that the standard `pybabel compile`
would skip (marked fuzzy) or that still carries the template's placeholders.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ("en", "fr")
POT = ROOT / "translations" / "messages.pot"
PROJECT = "idp"
CONTACT = "the idp maintainers (README.md, translations)"
TEAMS = {"en": "English", "fr": "French"}
PLACEHOLDERS = ("PROJECT", "ORGANIZATION", "FIRST AUTHOR", "EMAIL@ADDRESS", "YEAR-MO-DA",
                "FULL NAME", "LL@li.org")


def _version() -> str:
    for line in (ROOT / "setup.cfg").read_text(encoding="utf-8").splitlines():
        if line.startswith("version"):
            return line.split("=", 1)[1].strip()
    return "0"


def set_header(catalog, locale: str) -> None:
    """A real header, never fuzzy: `pybabel compile` skips a catalog marked fuzzy."""
    catalog.project = PROJECT
    catalog.version = _version()
    catalog.copyright_holder = "the idp authors"
    catalog.msgid_bugs_address = CONTACT
    catalog.last_translator = f"idp {TEAMS[locale]} translators"
    catalog.language_team = f"{TEAMS[locale]}, {CONTACT}"
    catalog.revision_date = catalog.creation_date
    catalog.fuzzy = False
    catalog.header_comment = (f"# {TEAMS[locale]} translations for {PROJECT}.\n"
                              f"# Copyright (C) the idp authors.\n"
                              f"# This file is distributed under the same license as {PROJECT}.\n#")


def header_problems(path: Path, locale: str) -> list[str]:
    text = path.read_text(encoding="utf-8")
    head = text.split("\n\n", 1)[0]
    problems = []
    if "#, fuzzy" in head:
        problems.append(f"{locale}: header marked fuzzy (pybabel compile would skip the catalog)")
    for placeholder in PLACEHOLDERS:
        if placeholder in head:
            problems.append(f"{locale}: header still has the placeholder {placeholder!r}")
    return problems


def extract(target: Path) -> None:
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "--quiet", "extract",  # noqa: S603
                    "-F", str(ROOT / "babel.cfg"), "-k", "_l", "--no-location",
                    "--sort-output", "-o", str(target), str(ROOT / "idp"), str(ROOT / "templates")],
                   check=True, cwd=ROOT)


def _po_path(locale: str) -> Path:
    return ROOT / "translations" / locale / "LC_MESSAGES" / "messages.po"


def update() -> None:
    extract(POT)
    for locale in LOCALES:
        with POT.open("rb") as handle:
            template = read_po(handle)  # fresh per locale: update() shares message objects
        path = _po_path(locale)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            with path.open("rb") as handle:
                catalog = read_po(handle, locale=locale)
        else:
            from babel.messages.catalog import Catalog

            catalog = Catalog(locale=locale)
        catalog.update(template, no_fuzzy_matching=True)
        set_header(catalog, locale)
        if locale == "en":
            for message in catalog:
                if isinstance(message.id, tuple):  # plural: singular and plural forms
                    if not all(message.string or ()):
                        message.string = (message.id[0], message.id[1])
                elif message.id and not message.string:
                    message.string = message.id
                message.flags.discard("fuzzy")
        with path.open("wb") as handle:
            write_po(handle, catalog, omit_header=False, sort_output=True, no_location=True,
                     ignore_obsolete=True)


def check() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        pot = Path(tmp) / "messages.pot"
        extract(pot)
        with pot.open("rb") as handle:
            template = read_po(handle)
    problems = []
    for locale in LOCALES:
        path = _po_path(locale)
        if not path.exists():
            problems.append(f"{locale}: catalog missing ({path})")
            continue
        problems.extend(header_problems(path, locale))
        with path.open("rb") as handle:
            catalog = read_po(handle, locale=locale)
        for message in template:
            if not message.id:
                continue
            found = catalog.get(message.id, message.context)
            if found is None:
                problems.append(f"{locale}: not in catalog: {message.id!r}")
            elif not found.string or (isinstance(found.string, tuple) and not all(found.string)):
                problems.append(f"{locale}: untranslated: {message.id!r}")
            elif found.fuzzy:
                problems.append(f"{locale}: fuzzy: {message.id!r}")
            elif locale != "en" and found.string == message.id and any(
                    c.isalpha() for c in message.id):
                problems.append(f"{locale}: same as English: {message.id!r}")
    for line in problems:
        print(line)
    print(f"i18n-check: {len(template) - 1} strings, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "check"
    if command == "update":
        update()
    else:
        sys.exit(check())
