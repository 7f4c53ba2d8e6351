"""Apply French translations from a JSON file {msgid: msgstr} to the French catalog.

`make i18n-update` runs it after merging new strings. Translations live in
translations/fr.json and translations/fr.d/*.json (one file per area, so work
on separate areas does not collide), and survive catalog rebuilds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent
PO = ROOT / "fr" / "LC_MESSAGES" / "messages.po"
SOURCE = ROOT / "fr.json"


def main() -> int:
    translations = json.loads(SOURCE.read_text(encoding="utf-8"))
    for extra in sorted((ROOT / "fr.d").glob("*.json")):
        translations.update(json.loads(extra.read_text(encoding="utf-8")))
    with PO.open("rb") as handle:
        catalog = read_po(handle, locale="fr")
    missing = []
    for message in catalog:
        if not message.id:
            continue
        key = message.id if isinstance(message.id, str) else message.id[0]
        if key in translations:
            value = translations[key]
            message.string = tuple(value) if isinstance(message.id, tuple) else value
            message.flags.discard("fuzzy")
        elif not message.string:
            missing.append(key)
    with PO.open("wb") as handle:
        write_po(handle, catalog, sort_output=True, no_location=True, ignore_obsolete=True)
    for key in missing:
        print(f"missing French: {key!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
