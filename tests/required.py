"""Browser and interop tests may skip on a laptop without Chromium or node, never in CI.

With ``IDP_REQUIRE_BROWSER=1`` (``.ci/run`` sets it) a missing Chromium, Playwright,
axe-core, node or openid-client fails instead of skipping (``missing``), and any
other skip of a test marked ``browser`` or ``interop`` is reported as a failure
(the hook below, imported by tests/conftest.py), so CI cannot go green without them.
PostgreSQL-only tests still skip, with their reason, when PostgreSQL is absent.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

ENV = "IDP_REQUIRE_BROWSER"
REQUIRED_MARKERS = ("browser", "interop")


def required() -> bool:
    return os.environ.get(ENV, "").strip().lower() not in ("", "0", "false", "no")


def missing(reason: str, module_level: bool = False) -> NoReturn:
    """Skip for ``reason``; fail instead when browser and interop tests are required."""
    if required():
        pytest.fail(f"{reason} ({ENV}=1: browser and interop tests may not skip)",
                    pytrace=False)
    pytest.skip(reason, allow_module_level=module_level)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if (report.skipped and required() and not hasattr(report, "wasxfail")
            and any(item.get_closest_marker(name) for name in REQUIRED_MARKERS)):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped ({reason}), but {ENV}=1: browser and interop tests may not skip"
    return report
