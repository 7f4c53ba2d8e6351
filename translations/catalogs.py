"""Catalog maintenance: `update` merges new strings, `check` fails on any missing translation.

English is the source language, so `update` fills the English catalog with the
source strings; French must be translated by a person. `check` extracts the
strings from the code afresh, so a string added without running `update` fails too.
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
