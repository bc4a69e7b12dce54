"""GET /metrics (Prometheus text format) and the per-request hooks that feed it and the access log."""
from __future__ import annotations

import time

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from sqlalchemy.engine import Engine

from feedsvc.ops import access_log, metrics
from feedsvc.web.render_cache import RenderCache

bp = Blueprint("metrics", __name__)
_REGISTRY = "feedsvc.metrics_registry"


def init_app(app: Flask, engine: Engine, cache: RenderCache) -> None:
    """Count `cache`'s hits, misses and build times, start the access log's writer, and make the
    registry /metrics shows (the mirror's lag is read through `engine`)."""
    metrics.instrument_render_cache(cache)
    access_log.install(app.config["ACCESS_LOG_FLUSH_MS"])
    app.extensions[_REGISTRY] = metrics.make_registry(engine, app.config)


def registry(app: Flask | None = None) -> CollectorRegistry:
    return (app or current_app).extensions[_REGISTRY]


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
    return Response(metrics.exposition(registry()), content_type=CONTENT_TYPE_LATEST,
                    headers={"Cache-Control": "no-store"})
