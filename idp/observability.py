"""Liveness, readiness and Prometheus metrics (request counts and latencies).

Metrics are per process: with several gunicorn workers each scrape sees one
worker. That is enough for rates and latency shapes; a multi-process
aggregation is left for when an operator needs it.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict

from flask import Blueprint, Flask, Response, g, request
from sqlalchemy import text

from idp.extensions import db

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


@bp.route("/readyz")
def readyz():
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any database failure means not ready
        db.session.rollback()
        return {"status": "unavailable"}, 503
    return {"status": "ok"}


@bp.route("/metrics")
def metrics():
    return Response(g.metrics.render(), mimetype="text/plain; version=0.0.4")


def init_app(app: Flask) -> None:
    registry = Metrics()
    app.extensions["idp_metrics"] = registry

    @app.before_request
    def _start_timer():
        g.request_started = time.perf_counter()
        g.metrics = registry

    @app.after_request
    def _observe(response):
        started = g.get("request_started")
        if started is not None:
            endpoint = request.endpoint or "unmatched"
            registry.observe(endpoint, request.method, response.status_code,
                             time.perf_counter() - started)
        return response

    app.register_blueprint(bp)
