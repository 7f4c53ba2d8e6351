"""`make bench` cannot rot: the whole run, one second per scenario, beside the peer.

Not a timed test: it asserts that every scenario ran without errors and that the report
has every section, not any figure."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.interop  # make test installs wrk and the peer: CI may not skip it
@pytest.mark.skipif(shutil.which("wrk") is None or shutil.which("node") is None
                    or not (ROOT / "bench/node/node_modules/oidc-provider").exists(),
                    reason="wrk, node or bench/node/node_modules missing (make bench-node wrk)")
def test_the_bench_runs_one_second_per_scenario(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    report = tmp_path / "performance.md"
    done = subprocess.run(
        [sys.executable, "bench/run.py", "--duration", "1", "--warmup", "0.5",
         "--scale-users", "1200", "--scale-tokens", "3000", "--output", str(report)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = report.read_text()
    for section in ("## SQLite", "## Cost flat with size", "## Memory after the run (RSS)",
                    "## Profile of the token endpoint", "## What limits it"):
        assert section in text, section
    for label in ("client_credentials grant", "introspection of a JWT", "refresh grant",
                  "password sign-in POST"):
        assert label in text, label
    assert "worker" in text.split("## Memory after the run (RSS)")[1]
