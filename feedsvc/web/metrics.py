"""GET /metrics (Prometheus text format), for a metrics token or a loopback client, and the per-request
hooks that feed it and the access log."""
from __future__ import annotations

import ipaddress
import time

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from sqlalchemy.engine import Engine

from feedsvc.config import token_matches
from feedsvc.ops import access_log, desk_counters, metrics
from feedsvc.render import profiles, skips
from feedsvc.web import app_signals
from feedsvc.web.render_cache import RenderCache

bp = Blueprint("metrics", __name__)
_REGISTRY = "feedsvc.metrics_registry"


def init_app(app: Flask, engine: Engine, cache: RenderCache) -> None:
    """Count `cache`'s hits, misses and build times, start the access log's writer, and make the
    registry /metrics shows (the mirror's lag is read through `engine`); count the entries this app's
    renders skip and the items its profile feeds leave out."""
    metrics.instrument_render_cache(cache)
    app_signals.connect(app, skips.skipped, metrics.count_skip)
    app_signals.connect(app, profiles.left_out, metrics.count_left_out)
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
    if metrics.route_class() == "feed":   # public feeds only: partner feeds are counted per key (partners.py)
        desk_counters.counters(current_app).count(request.path, response.status_code,
                                                   request.headers.get("User-Agent"), request.remote_addr)
    return response


def _refusal(status: int, message: str) -> Response:
    response = Response(message + "\n", status, mimetype="text/plain", headers={"Cache-Control": "no-store"})
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="feedsvc-metrics"'
    return response


def _loopback(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:  # a Unix socket: no address
        return False
    return (getattr(ip, "ipv4_mapped", None) or ip).is_loopback


def refuse_unauthorised() -> Response | None:
    """With FEEDSVC_METRICS_TOKENS, a bearer token of them; without, a loopback client (as the app sees it:
    behind a proxy, FEEDSVC_TRUSTED_PROXY_HOPS makes that the client's address, not the proxy's)."""
    digests = current_app.config["METRICS_TOKEN_DIGESTS"]
    if not digests:
        if _loopback(request.remote_addr):
            return None
        return _refusal(403, "/metrics answers loopback clients only unless FEEDSVC_METRICS_TOKENS is set")
    # Not request.authorization: it raises on a Basic value that is not ASCII (a 500 for any client).
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _refusal(401, "a bearer token is required (Authorization: Bearer <token>)")
    if not token_matches(token.strip(), digests):
        return _refusal(403, "this token is not one of FEEDSVC_METRICS_TOKENS")
    return None


@bp.get("/metrics")
def exposition():
    refused = refuse_unauthorised()
    if refused is not None:
        return refused
    return Response(metrics.exposition(registry()), content_type=CONTENT_TYPE_LATEST,
                    headers={"Cache-Control": "no-store"})
