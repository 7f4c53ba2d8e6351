"""Liveness, readiness and Prometheus metrics (request counts and latencies).

Readiness means the database schema is at the latest migration and the signing
keys are loaded. Until a process has seen that once, it answers every request but
/healthz, /readyz and /metrics with 503, so a node started before ``idp init``
serves nothing half-working.

/metrics is off (404) unless ``IDP_METRICS_TOKEN`` is set; then it needs
``Authorization: Bearer <token>`` (401 otherwise). Latencies per endpoint are an
oracle (they told which emails have accounts), so they are not public.

Metrics are per process: with several gunicorn workers each scrape sees one
worker. That is enough for rates and latency shapes; a multi-process
aggregation is left for when an operator needs it.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections import defaultdict

from flask import Blueprint, Flask, Response, abort, current_app, g, request
from sqlalchemy.exc import SQLAlchemyError

bp = Blueprint("ops", __name__)
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self):
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.buckets: dict[str, list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
        self.sums: dict[str, float] = defaultdict(float)

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(endpoint, method, status)] += 1
            counts = self.buckets[endpoint]
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    counts[i] += 1
            counts[-1] += 1
            self.sums[endpoint] += seconds

    def render(self) -> str:
        lines = ["# HELP idp_http_requests_total HTTP requests by endpoint, method and status.",
                 "# TYPE idp_http_requests_total counter"]
        with self._lock:
            for (endpoint, method, status), count in sorted(self.requests.items()):
                lines.append(f'idp_http_requests_total{{endpoint="{endpoint}",method="{method}",'
                             f'status="{status}"}} {count}')
            lines += ["# HELP idp_http_request_duration_seconds Request latency.",
                      "# TYPE idp_http_request_duration_seconds histogram"]
            for endpoint, counts in sorted(self.buckets.items()):
                for bound, count in zip(BUCKETS, counts, strict=False):
                    lines.append(f'idp_http_request_duration_seconds_bucket{{endpoint="{endpoint}",'
                                 f'le="{bound}"}} {count}')
                lines.append(f'idp_http_request_duration_seconds_bucket{{endpoint="{endpoint}",'
                             f'le="+Inf"}} {counts[-1]}')
                lines.append(f'idp_http_request_duration_seconds_sum{{endpoint="{endpoint}"}} '
                             f'{self.sums[endpoint]:.6f}')
                lines.append(f'idp_http_request_duration_seconds_count{{endpoint="{endpoint}"}} '
                             f'{counts[-1]}')
        return "\n".join(lines) + "\n"


@bp.route("/healthz")
def healthz():
    return {"status": "ok"}


UNGUARDED = ("/healthz", "/readyz", "/metrics")


def readiness_problems(app: Flask, log: bool = False) -> dict[str, str]:
    """What keeps this process from serving (empty when ready); ``log`` says why in the log."""
    from idp.oauth.keys import ALGORITHMS
    from idp.schema import schema_state

    problems = {}
    try:
        state = schema_state(app)
        if not state.up_to_date:
            problems["database"] = ("not initialised" if not state.current
                                    else "not at the latest migration")
            if log:
                app.logger.warning("not ready: %s", state.describe())
    except SQLAlchemyError as exc:
        problems["database"] = "unreachable"
        if log:
            app.logger.warning("not ready: the database cannot be reached: %s", exc)
    keys = app.extensions["idp_keys"]
    try:
        for alg in ALGORITHMS:
            keys.signing_key(alg)
    except Exception as exc:  # noqa: BLE001 - a missing, partial or unreadable key set
        problems["signing_keys"] = "missing"
        if log:
            app.logger.warning("not ready: no signing key loaded (%r)", exc)
    return problems


@bp.route("/readyz")
def readyz():
    problems = readiness_problems(current_app, log=True)
    if problems:
        return {"status": "unavailable", "problems": problems}, 503
    return {"status": "ok"}


@bp.route("/metrics")
def metrics():
    token = current_app.config["IDP_METRICS_TOKEN"]
    if not token:
        abort(404)
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.encode()):
        return ({"error": "invalid_token"}, 401,
                {"WWW-Authenticate": 'Bearer realm="metrics"', "Cache-Control": "no-store"})
    body = g.metrics.render()
    cache = current_app.extensions.get("idp_state_cache")  # PostgreSQL only
    if cache is not None:
        body += cache.render()
    return Response(body, mimetype="text/plain; version=0.0.4",
                    headers={"Cache-Control": "no-store"})


def init_app(app: Flask) -> None:
    registry = Metrics()
    app.extensions["idp_metrics"] = registry

    @app.before_request
    def _start_timer():
        g.request_started = time.perf_counter()
        g.metrics = registry

    ready = threading.Event()  # set once: a ready process stays ready
    app.extensions["idp_ready"] = ready  # the lean machine paths wait for it too

    @app.before_request
    def _refuse_until_ready():
        if ready.is_set() or request.path.startswith(UNGUARDED):
            return None
        if readiness_problems(app):
            abort(503)
        ready.set()
        return None

    @app.after_request
    def _observe(response):
        started = g.get("request_started")
        if started is not None:
            endpoint = request.endpoint or "unmatched"
            registry.observe(endpoint, request.method, response.status_code,
                             time.perf_counter() - started)
        return response

    app.register_blueprint(bp)
