"""Packaging: templates, catalogs (compiled here) and migrations travel inside the wheel.

A checkout keeps them at the top level (DESIGN.md's layout); an installed package has no
top level, so the build copies them to ``idp/_resources/``, where ``idp.config`` looks
first. ``pip install .`` alone therefore serves French: the ``.mo`` files are compiled
from the ``.po`` catalogs the standard way (a catalog marked fuzzy stops the build
instead of being skipped).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
RESOURCES = ("templates", "translations", "migrations")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.py[co]", "catalogs.py", "*.pot", "*.mo")


def compile_catalogs(translations: Path) -> None:
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po in sorted(translations.glob("*/LC_MESSAGES/messages.po")):
        with po.open("rb") as handle:
            catalog = read_po(handle, locale=po.parent.parent.name)
        if catalog.fuzzy:
            raise SystemExit(f"{po} is marked fuzzy: pybabel compile would skip it")
        with po.with_suffix(".mo").open("wb") as handle:
            write_mo(handle, catalog)


class BuildWithResources(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout itself
        target = Path(self.build_lib) / "idp" / "_resources"
        for name in RESOURCES:
            shutil.copytree(ROOT / name, target / name, dirs_exist_ok=True, ignore=SKIP)
        compile_catalogs(target / "translations")


setup(cmdclass={"build_py": BuildWithResources})
