"""The catalogs work with the standard tools: `pybabel compile`, and a plain `pip install .`.

A catalog whose header is marked fuzzy is skipped by `pybabel compile -d translations`
(without --use-fuzzy); a deployment compiled that way then sends the bilingual welcome
email in English twice. These tests compile and package the catalogs the standard way.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "translations"
FRENCH_LINE = "Bienvenue"  # the French welcome email opens with it


def _catalog(locale: str):
    with (TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=locale)


@pytest.mark.parametrize("locale", ["en", "fr"])
def test_catalog_header_is_real_and_not_fuzzy(locale):
    catalog = _catalog(locale)
    assert catalog.fuzzy is False
    assert catalog.project == "idp"
    head = (TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po").read_text().split("\n\n")[0]
    for placeholder in ("PROJECT VERSION", "ORGANIZATION", "EMAIL@ADDRESS", "YEAR-MO-DA"):
        assert placeholder not in head


def test_the_po_files_are_the_one_source():
    assert not (TRANSLATIONS / "fr.json").exists()
    assert not (TRANSLATIONS / "fr.d").exists()
    assert not (TRANSLATIONS / "fill_fr.py").exists()
    assert "--use-fuzzy" not in (ROOT / "Makefile").read_text()


def _welcome_in(translations_dir: Path, tmp_path: Path) -> str:
    """Render the bilingual welcome email from a fresh app reading `translations_dir`."""
    from idp import create_app
    from idp.extensions import babel
    from idp.mail.messages import render_message

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.db'}",
                      "BABEL_TRANSLATION_DIRECTORIES": str(translations_dir),
                      "IDP_ENABLE_MAIL_WORKER": False})
    with app.test_request_context():
        # Flask-Babel caches catalogs per (locale, domain), whatever the directories.
        babel.domain_instance.cache.clear()
        message = render_message("welcome", to="new@example.com", locale="fr",
                                 link="https://idp.example/invite/x", expires_hours=72)
        babel.domain_instance.cache.clear()
    return message.text


def test_standard_pybabel_compile_gives_a_french_welcome(tmp_path):
    target = tmp_path / "translations"
    for po in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"):
        destination = target / po.relative_to(TRANSLATIONS)
        destination.parent.mkdir(parents=True)
        shutil.copy(po, destination)
    done = subprocess.run([sys.executable, "-m", "babel.messages.frontend", "compile", "-d",
                           str(target)], capture_output=True, text=True, check=True)
    assert "fuzzy" not in done.stderr + done.stdout
    assert (target / "fr" / "LC_MESSAGES" / "messages.mo").is_file()
    assert (target / "en" / "LC_MESSAGES" / "messages.mo").is_file()
    text = _welcome_in(target, tmp_path)
    assert "Welcome to" in text and FRENCH_LINE in text
    # Without the French catalog the same email is English twice: the check can fail.
    english_only = tmp_path / "english-only"
    shutil.copytree(target, english_only)
    (english_only / "fr" / "LC_MESSAGES" / "messages.mo").unlink()
    assert FRENCH_LINE not in _welcome_in(english_only, tmp_path)


def test_wheel_alone_serves_french(tmp_path):
    """`pip install .` carries templates, compiled catalogs and migrations in the package."""
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "-w", str(wheels), str(ROOT)],
                   check=True, capture_output=True, text=True)
    wheel = next(wheels.glob("idp-*.whl"))
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(site)
    for name in ("idp/_resources/translations/fr/LC_MESSAGES/messages.mo",
                 "idp/_resources/templates/mail/welcome.txt",
                 "idp/_resources/migrations/env.py"):
        assert name in names
    script = textwrap.dedent("""
        from idp import create_app
        from idp.config import RESOURCE_DIR
        from idp.mail.messages import render_message
        assert RESOURCE_DIR.name == "_resources", RESOURCE_DIR
        app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "IDP_ENABLE_MAIL_WORKER": False})
        with app.test_request_context():
            print(render_message("welcome", to="a@example.com", locale="fr",
                                 link="https://idp.example/x", expires_hours=72).text)
    """)
    work = tmp_path / "work"
    work.mkdir()
    env = dict(os.environ, PYTHONPATH=str(site), IDP_INSTANCE_DIR=str(work / "instance"))
    done = subprocess.run([sys.executable, "-c", script], cwd=work, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert FRENCH_LINE in done.stdout
