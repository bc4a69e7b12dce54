"""GET /metrics (Prometheus text format) and the per-request hooks that feed it and the access log."""
from __future__ import annotations

import time

from flask import Blueprint, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST

from feedsvc.ops import access_log, metrics

bp = Blueprint("metrics", __name__)


@bp.record_once
def _setup(state) -> None:
    cache = state.app.extensions.get("feedsvc.render_cache")
    if cache is not None:
        metrics.instrument_render_cache(cache)
    access_log.install(state.app.config["ACCESS_LOG_FLUSH_MS"])


@bp.before_app_request
def _start_clock() -> None:
    g.metrics_started = time.perf_counter()


@bp.after_app_request
def _count(response):
    started = g.pop("metrics_started", None)
    if request.environ.get("feedsvc.internal"):
        return response  # the static mirror's exporter fetching through the app is not traffic
    elapsed = time.perf_counter() - started if started is not None else 0.0
    metrics.observe(response, elapsed, log=current_app.config["ACCESS_LOG"])
    return response


@bp.get("/metrics")
def exposition():
    return Response(metrics.exposition(current_app._get_current_object()), content_type=CONTENT_TYPE_LATEST,
                    headers={"Cache-Control": "no-store"})
