"""Rate limits on the feeds and on oEmbed (Flask-Limiter), per partner key or else per client address.

Two limits guard each bucket ("feeds": public and partner feeds together; "oembed"):
- the budget (RATELIMIT_PUBLIC per address, RATELIMIT_PARTNER per partner key), from which only
  answers other than 304 are deducted: a reader that polls politely with If-None-Match / If-Modified-Since
  and mostly hears "304 Not Modified" does not use it up;
- a ceiling of RATELIMIT_CONDITIONAL_FACTOR times the budget that counts every request, 304s included,
  so that conditional requests are cheap but not free.
Over either, the answer is 429 with Retry-After (seconds) and a JSON body saying which limit.

Counters live in memory by default, or in Redis when RATELIMIT_STORAGE is a redis:// URL (then all
gunicorn workers and hosts share them). If Redis stops answering, limits fall back to per-process
memory rather than failing feeds. Rate-limit headers are not sent on ordinary responses: feeds are
cached publicly, and a per-client header has no place in a shared cache.
"""
from __future__ import annotations

import math
import time
from functools import lru_cache

from flask import Flask, current_app, jsonify, request
from flask_limiter import Limit, Limiter, RateLimitExceeded
from limits import parse_many
from limits.storage import MemoryStorage
from sqlalchemy.exc import SQLAlchemyError

_LIMITER = "feedsvc.limiter"
# Blueprint (or endpoint) -> bucket. Public and partner feeds share one budget per client; listing
# pages (any cursor is a render) and the headline widget (rendered per request) share another.
BUCKETS = {"feeds": "feeds", "partner_feeds": "feeds", "embed.oembed_endpoint": "oembed",
           "pages.home": "pages", "pages.scope_listing": "pages", "embed.latest": "pages"}
REDIS_OPTIONS = {"socket_connect_timeout": 1, "socket_timeout": 1}  # a dead Redis must not stall a feed


def bucket() -> str | None:
    """The limited bucket of the current request, or None for routes without limits."""
    return BUCKETS.get(request.endpoint or "") or BUCKETS.get(request.blueprint or "")


def _partner():
    from feedsvc.web.partner_feeds import request_partner
    try:
        partner = request_partner()
    except SQLAlchemyError:
        return None  # the store is down: count by address; the view itself answers 503
    return partner if partner is not None and partner.active else None


def client_key() -> str:
    """Who is counted: a partner by its key (whichever way it was presented), anyone else by address.

    Behind a reverse proxy the address is the proxy's unless TRUSTED_PROXY_HOPS says how many to look past.
    """
    partner = _partner()
    return f"partner:{partner.id}" if partner else f"addr:{request.remote_addr or 'unknown'}"


def budget() -> str:
    return current_app.config["RATELIMIT_PARTNER" if _partner() else "RATELIMIT_PUBLIC"]


@lru_cache(maxsize=32)
def scaled(limits_text: str, factor: int) -> str:
    """'120/minute' scaled by 10 -> '1200 per 1 minute' (each of ';'-separated limits)."""
    return ";".join(f"{item.amount * factor} per {item.multiples} {item.GRANULARITY.name}"
                    for item in parse_many(limits_text))


def ceiling() -> str:
    return scaled(budget(), current_app.config["RATELIMIT_CONDITIONAL_FACTOR"])


def _unlimited() -> bool:
    return bucket() is None


def _deducts(response) -> bool:
    # A 304 costs nothing against the budget; a 429 was never served, so it costs nothing either.
    return response.status_code not in (304, 429)


def _limits() -> list[Limit]:
    common = {"key_function": client_key, "shared": True, "exempt_when": _unlimited}
    return [
        Limit(budget, scope=lambda _endpoint: bucket(), deduct_when=_deducts, **common),
        Limit(ceiling, scope=lambda _endpoint: f"{bucket()}:all", **common),
    ]


class SweptMemoryStorage(MemoryStorage):
    """limits' in-memory storage, with expired counters swept inline at most once a second.

    The stock MemoryStorage starts a threading.Timer (a new OS thread) on a counter update whenever
    its previous timer has run out, i.e. up to every 10 ms: under load a thread start every few
    requests, which cost more than the rest of a cached feed request and stalled whole wrk runs
    (`make bench`). Counting is unchanged — a fixed window's counter already expires when read
    (MemoryStorage.get); the sweep only frees the memory of keys nobody reads any more.
    """
    STORAGE_SCHEME = ["feedsvc-memory"]
    SWEEP_SECONDS = 1.0

    def __init__(self, uri: str | None = None, **options):
        super().__init__(uri, **options)
        self._swept_at = time.monotonic()

    def _MemoryStorage__schedule_expiry(self) -> None:   # replaces the base class's timer start
        now = time.monotonic()
        if now - self._swept_at >= self.SWEEP_SECONDS:
            self._swept_at = now
            self._MemoryStorage__expire_events()


def init_app(app: Flask) -> Limiter:
    storage = app.config["RATELIMIT_STORAGE"]
    if storage.startswith("memory://"):
        storage = "feedsvc-" + storage   # the same counters, without a timer thread per update
    limiter = Limiter(
        key_func=client_key,
        default_limits=_limits(),
        storage_uri=storage,
        storage_options=REDIS_OPTIONS if storage.startswith(("redis://", "rediss://")) else {},
        strategy="fixed-window",
        key_prefix=app.config["RATELIMIT_KEY_PREFIX"],
        headers_enabled=False,
        in_memory_fallback_enabled=True,
        swallow_errors=True,
    )
    limiter.init_app(app)
    app.extensions[_LIMITER] = limiter
    app.register_error_handler(RateLimitExceeded, too_many_requests)
    return limiter


def limiter(app: Flask | None = None) -> Limiter:
    """The rate limiter of `app` (by default the current one)."""
    return (app or current_app).extensions[_LIMITER]


def retry_after_seconds() -> int:
    """Seconds until the breached limit's window resets (at least 1)."""
    current = limiter().current_limit
    if current is None:
        return 60
    return max(1, math.ceil(current.window.reset_time - time.time()))


def too_many_requests(exc: RateLimitExceeded):
    retry = retry_after_seconds()
    who = "this partner key" if _partner() else "this address"
    response = jsonify({"error": "too many requests",
                        "message": f"{who} is over its limit of {exc.description} for {bucket() or 'this route'}; "
                                   f"retry after {retry} seconds. Conditional requests (If-None-Match, "
                                   "If-Modified-Since) that end in 304 do not count against the budget.",
                        "limit": exc.description, "retry_after": retry})
    response.status_code = 429
    response.headers["Retry-After"] = str(retry)
    response.headers["Cache-Control"] = "no-store"
    return response
