"""Observability: Prometheus metrics at /metrics and one structured JSON log line per request.

Metrics (prometheus-client, the maintained client library):
- feedsvc_http_requests_total{route,status}: every request by route class (feed, partner_feed,
  opml, directory, sitemap, page, embed, api, ...) and status;
- feedsvc_http_request_duration_seconds{route}: wall time in the app, as a histogram;
- feedsvc_feed_not_modified_ratio: the share of feed and OPML requests answered 304, worked out at
  scrape time from the counters above (so it is the share since the workers started);
- feedsvc_render_seconds{document} and feedsvc_render_cache_total{document,result=hit|miss}:
  how long building a document takes and how often the render cache spared it;
- feedsvc_entries_skipped_total{document_kind}: articles left out of a document being built because
  they cannot be rendered (feedsvc/render/skips.py); any value above 0 names records to fix;
- feedsvc_profile_items_left_out_total{profile,rule}: items an aggregator profile's feed left out
  because they break its rule (feedsvc/render/profiles.py), counted at each build;
- feedsvc_mirror_lag_seconds / feedsvc_mirror_last_update_lag_seconds: how far the static mirror
  (MIRROR_DIR, written by `flask export --watch`) is behind the store; only when MIRROR_DIR is set.

gunicorn forks several workers, each with its own counters. When PROMETHEUS_MULTIPROC_DIR is set
(deploy/gunicorn.conf.py sets it and empties it at start) every worker writes its values to files
there and /metrics adds them up across workers; without it (development server, tests) /metrics
shows this process's values. prometheus_client decides between the two when it is first imported,
so the variable must be set before the app is loaded.

The log line itself is written by feedsvc/ops/access_log.py.
"""
from __future__ import annotations

import collections
import functools
import os
import time

from flask import request
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy.engine import Engine

from feedsvc.ops import access_log

# Route class of a request, by endpoint first and then by blueprint; a bounded set of label values.
ENDPOINT_CLASSES = {
    "feeds.site_feed": "feed", "feeds.scope_feed": "feed", "feeds.opml_document": "opml",
    "feeds.directory": "directory", "metrics.exposition": "metrics", "health.healthz": "health",
}
BLUEPRINT_CLASSES = {
    "feeds": "feed", "partner_feeds": "partner_feed", "profile_feeds": "profile_feed",
    "discovery": "sitemap", "pages": "page", "amp": "amp",
    "embed": "embed", "api": "api", "media": "media", "websub": "websub",
}
NOT_MODIFIED_ROUTES = ("feed", "partner_feed", "profile_feed", "opml")

REQUESTS = Counter("feedsvc_http_requests", "HTTP requests answered, by route class and status",
                   ["route", "status"])
DURATION = Histogram("feedsvc_http_request_duration_seconds", "Time in the app per request, by route class",
                     ["route"], buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5))
RENDER_SECONDS = Histogram("feedsvc_render_seconds", "Time to build and compress one document on a cache miss",
                           ["document"], buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))
RENDER_CACHE = Counter("feedsvc_render_cache", "Render cache lookups, by document kind and result",
                       ["document", "result"])
ENTRIES_SKIPPED = Counter("feedsvc_entries_skipped", "Articles left out of a document because they cannot be "
                          "rendered, by document kind", ["document_kind"])


PROFILE_LEFT_OUT = Counter("feedsvc_profile_items_left_out", "Items left out of an aggregator profile's feed "
                           "because they break one of its rules, by profile and rule", ["profile", "rule"])


def count_skip(document_kind: str, **_) -> None:
    """Hears render.skips.skipped (connected per app by web/metrics.init_app)."""
    ENTRIES_SKIPPED.labels(document_kind).inc()


def count_left_out(profile: str, items: list, **_) -> None:
    """Hears render.profiles.left_out (connected per app by web/metrics.init_app)."""
    for rule, count in collections.Counter(item.rule for item in items).items():
        PROFILE_LEFT_OUT.labels(profile, rule).inc(count)


def route_class() -> str:
    if request.url_rule is None:
        return "unmatched"
    endpoint = request.endpoint or ""
    if endpoint in ENDPOINT_CLASSES:
        return ENDPOINT_CLASSES[endpoint]
    return BLUEPRINT_CLASSES.get(request.blueprint or "", "other")


# ---- the render cache ---------------------------------------------------------------------------

def instrument_render_cache(cache) -> None:
    """Count hits and misses and time each build of a RenderCache, without changing what it returns."""
    if getattr(cache, "_feedsvc_instrumented", False):
        return
    plain_get = cache.get

    @functools.wraps(plain_get)
    def get(key, validator, build):
        document = str(key[0]) if isinstance(key, tuple) and key else "other"
        built = False

        def timed_build():
            nonlocal built
            started = time.perf_counter()
            try:
                return build()
            finally:
                built = True
                RENDER_SECONDS.labels(document).observe(time.perf_counter() - started)

        rendered = plain_get(key, validator, timed_build)
        RENDER_CACHE.labels(document, "miss" if built else "hit").inc()
        return rendered

    cache.get = get
    cache._feedsvc_instrumented = True


def observe(response, elapsed: float, log: bool) -> None:
    """Count one request the Flask app answered and write its log line."""
    route = route_class()
    _count(route, response.status_code, elapsed)
    if log:
        path = request.full_path if request.query_string else request.path
        access_log.write(request.method, path, route, response.status_code, response.content_length, elapsed,
                         response.headers.get("Content-Encoding", "identity"),
                         "If-None-Match" in request.headers or "If-Modified-Since" in request.headers,
                         request.remote_addr, request.headers.get("User-Agent"), request.headers.get("Referer"))


def observe_replay(environ, replay, encoding: str, elapsed: float, log: bool, cache_counted: bool = False) -> None:
    """The same for a feed answered by feedsvc.web.middleware.fastpath (a render cache hit when it is a 200, unless the
    render cache counted it itself: `cache_counted`)."""
    status = int(replay.status[:3])
    _count("feed", status, elapsed)
    if status == 200 and not cache_counted:
        _cache_hits("feed").inc()
    if log:
        access_log.write(environ["REQUEST_METHOD"], environ["PATH_INFO"], "feed", status, replay.length, elapsed,
                         encoding if status == 200 else "identity",
                         "HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MODIFIED_SINCE" in environ,
                         environ.get("REMOTE_ADDR"), environ.get("HTTP_USER_AGENT"), environ.get("HTTP_REFERER"))


def _count(route: str, status: int, elapsed: float) -> None:
    requests, duration = _request_series(route, status)
    requests.inc()
    duration.observe(elapsed)


# A series looked up once: `labels()` checks and converts its values and takes a lock on every call,
# about 1.2 µs each, three times per replayed feed (in process, under gevent, 2026-12-07). Bounded:
# route classes times the statuses the app answers with.
@functools.lru_cache(maxsize=1024)
def _request_series(route: str, status: int):
    return REQUESTS.labels(route, str(status)), DURATION.labels(route)


@functools.lru_cache(maxsize=64)
def _cache_hits(document: str):
    return RENDER_CACHE.labels(document, "hit")


# ---- /metrics -----------------------------------------------------------------------------------

class DerivedCollector:
    """Figures computed at scrape time from the others: the 304 share and the mirror's lag."""

    def __init__(self, source, engine: Engine, config):
        # `config` is read at each scrape: MIRROR_DIR may be set after the app was made.
        self.source, self.engine, self.config = source, engine, config

    def collect(self):
        yield self._not_modified_ratio()
        yield from self._mirror_lag()

    def _not_modified_ratio(self):
        total = not_modified = 0.0
        for family in self.source.collect():
            if family.name != "feedsvc_http_requests":
                continue
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels.get("route") in NOT_MODIFIED_ROUTES:
                    total += sample.value
                    if sample.labels.get("status") == "304":
                        not_modified += sample.value
        gauge = GaugeMetricFamily("feedsvc_feed_not_modified_ratio",
                                  "Share of feed and OPML requests answered 304 Not Modified")
        gauge.add_metric([], not_modified / total if total else 0.0)
        return gauge

    def _mirror_lag(self):
        mirror_dir = self.config.get("MIRROR_DIR")
        if not mirror_dir:
            return
        from feedsvc.publish import mirror as export
        with self.engine.connect() as conn:
            lag, last = export.mirror_lag(conn, mirror_dir)
        behind = GaugeMetricFamily("feedsvc_mirror_lag_seconds",
                                   "Age of the oldest store change the static mirror does not show yet (0: current)")
        behind.add_metric([], lag)
        yield behind
        if last is not None:
            gauge = GaugeMetricFamily("feedsvc_mirror_last_update_lag_seconds",
                                      "How long after its store change the mirror's last update was complete")
            gauge.add_metric([], last)
            yield gauge


def make_registry(engine: Engine, config) -> CollectorRegistry:
    """This process's metrics, or every worker's files added up in multi-process mode, and the derived figures."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        reg = CollectorRegistry()
        multiprocess.MultiProcessCollector(reg)
        source = reg
    else:
        reg = source = REGISTRY
    combined = CollectorRegistry()
    combined.register(_Chain(reg))
    combined.register(DerivedCollector(source, engine, config))
    return combined


class _Chain:
    """Another registry's metrics, as one collector (so derived figures can sit beside them)."""

    def __init__(self, reg):
        self.reg = reg

    def collect(self):
        return self.reg.collect()


def exposition(registry: CollectorRegistry) -> bytes:
    """The Prometheus text format of every metric in `registry` (from `make_registry`)."""
    return generate_latest(registry)
