"""The CI rule of tests/required.py: with IDP_REQUIRE_BROWSER=1, browser and interop
tests fail instead of skipping; PostgreSQL-only and unmarked tests may still skip."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CONFTEST = "from tests.required import pytest_runtest_makereport  # noqa: F401\n"
TESTS = '''
import pytest

from tests.required import missing


@pytest.mark.browser
def test_browser_skipped_by_itself():
    pytest.skip("no chromium here")


@pytest.mark.interop
def test_interop_missing_node():
    missing("node is absent")


@pytest.fixture
def chromium():
    missing("/usr/bin/chromium is absent")


@pytest.mark.browser
def test_browser_fixture_missing(chromium):
    pass


@pytest.mark.postgres
def test_postgres_only():
    pytest.skip("PostgreSQL is not reachable")


def test_plain():
    pass
'''
MODULE_SKIP = '''
from tests.required import missing

missing("tests/node/node_modules is missing", module_level=True)


def test_never_collected():
    pass
'''


def _outcomes(tmp_path: Path, require: str | None) -> dict[str, int]:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_marked.py").write_text(TESTS)
    (tmp_path / "test_module_skip.py").write_text(MODULE_SKIP)
    env = {k: v for k, v in os.environ.items() if k != "IDP_REQUIRE_BROWSER"}
    env["PYTHONPATH"] = str(ROOT)
    if require is not None:
        env["IDP_REQUIRE_BROWSER"] = require
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-W", "ignore::pytest.PytestUnknownMarkWarning",
                           "--continue-on-collection-errors", "--rootdir", str(tmp_path),
                           str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    summary = done.stdout.strip().splitlines()[-1]
    counts = {name.rstrip("s"): int(n) for n, name in re.findall(r"(\d+) (\w+)", summary)}
    counts["exit"] = done.returncode
    return counts


@pytest.mark.parametrize("require", [None, "0"])
def test_without_the_rule_missing_browsers_skip(tmp_path, require):
    assert _outcomes(tmp_path, require) == {"passed": 1, "skipped": 5, "exit": 0}


def test_under_the_rule_missing_browsers_fail(tmp_path):
    counts = _outcomes(tmp_path, "1")
    # the marked tests fail (or error in their fixture), the module-level skip is a
    # collection error; the PostgreSQL-only test still skips
    assert counts == {"failed": 2, "error": 2, "passed": 1, "skipped": 1, "exit": 1}
