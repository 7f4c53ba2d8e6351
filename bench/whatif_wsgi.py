"""gunicorn entry point with bench/whatif.py's candidate optimisations applied, for A/B runs
over HTTP (``bench/run.py --whatif NAMES``). Nothing under idp/ is changed.

IDP_BENCH_WHATIF: ``all`` (the compatible set below) or comma-separated candidate names.
"""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH)]

import whatif  # noqa: E402

from wsgi import app  # noqa: E402

# stateless_client_credentials before refresh_core_claim: both replace save_token, and the
# refresh one falls back to the previous one for other grants.
SERVER_ALL = ["client_cache", "stateless_client_credentials", "refresh_core_claim",
              "cached_ensure_sync", "lean_api_headers", "one_pass_param_check",
              "direct_es256_sign", "static_documents_wsgi", "introspect_once"]

_names = os.environ.get("IDP_BENCH_WHATIF", "all")
APPLIED = SERVER_ALL if _names == "all" else [n for n in _names.split(",") if n]
_stack = ExitStack()  # entered for the life of the worker, never exited
for _name in APPLIED:
    _stack.enter_context(whatif.CANDIDATES[_name](app))
