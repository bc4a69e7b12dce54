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
from contextlib import contextmanager
from functools import lru_cache

from flask import Flask, current_app, request
from flask_limiter import Limit, Limiter
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from sqlalchemy.exc import SQLAlchemyError

from feedsvc.web.partner_key import request_partner

_LIMITER = "feedsvc.limiter"
# Blueprint (or endpoint) -> bucket. Public and partner feeds share one budget per client; listing
# pages (any cursor is a render) and the headline widget (rendered per request) share another.
BUCKETS = {"feeds": "feeds", "partner_feeds": "feeds", "embed.oembed_endpoint": "oembed",
           "pages.home": "pages", "pages.scope_listing": "pages", "embed.latest": "pages"}
REDIS_OPTIONS = {"socket_connect_timeout": 1, "socket_timeout": 1}  # a dead Redis must not stall a feed


# ---- the rules: what each bucket allows, whose requests are counted together, what is deducted ----

def budget_text(config, partner: bool) -> str:
    return config["RATELIMIT_PARTNER" if partner else "RATELIMIT_PUBLIC"]


def ceiling_text(config, partner: bool) -> str:
    return scaled(budget_text(config, partner), config["RATELIMIT_CONDITIONAL_FACTOR"])


def ceiling_scope(bucket_name: str) -> str:
    return f"{bucket_name}:all"


def address_key(address: str | None) -> str:
    return f"addr:{address or 'unknown'}"


def deducts(status: int) -> bool:
    """Whether an answer counts against the budget (the ceiling counts every request)."""
    # A 304 costs nothing against the budget; a 429 was never served, so it costs nothing either.
    return status not in (304, 429)


@lru_cache(maxsize=32)
def scaled(limits_text: str, factor: int) -> str:
    """'120/minute' scaled by 10 -> '1200 per 1 minute' (each of ';'-separated limits)."""
    return ";".join(f"{item.amount * factor} per {item.multiples} {item.GRANULARITY.name}"
                    for item in parse_many(limits_text))


@lru_cache(maxsize=32)
def limit_items(limits_text: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(limits_text))


# ---- the rules applied to a Flask request (Flask-Limiter) --------------------------------------

def bucket() -> str | None:
    """The limited bucket of the current request, or None for routes without limits."""
    return BUCKETS.get(request.endpoint or "") or BUCKETS.get(request.blueprint or "")


def counted_partner():
    """The active partner this request is counted as, or None (then it is counted by address)."""
    try:
        partner = request_partner()
    except SQLAlchemyError:
        return None  # the store is down: count by address; the view itself answers 503
    return partner if partner is not None and partner.active else None


def client_key() -> str:
    """Who is counted: a partner by its key (whichever way it was presented), anyone else by address.

    Behind a reverse proxy the address is the proxy's unless TRUSTED_PROXY_HOPS says how many to look past.
    """
    partner = counted_partner()
    return f"partner:{partner.id}" if partner else address_key(request.remote_addr)


def budget() -> str:
    return budget_text(current_app.config, counted_partner() is not None)


def ceiling() -> str:
    return ceiling_text(current_app.config, counted_partner() is not None)


def _unlimited() -> bool:
    return bucket() is None


def _limits() -> list[Limit]:
    common = {"key_function": client_key, "shared": True, "exempt_when": _unlimited}
    return [
        Limit(budget, scope=lambda _endpoint: bucket(), deduct_when=lambda response: deducts(response.status_code),
              **common),
        Limit(ceiling, scope=lambda _endpoint: ceiling_scope(bucket()), **common),
    ]


# ---- the rules applied outside Flask (the WSGI fast path) ---------------------------------------

def admit_public(limiter: Limiter, config, address: str | None, bucket_name: str, status: int) -> bool:
    """Count a public request answered without Flask exactly as `_limits` would, on the same counters.

    False when it is over the budget or the ceiling (the caller then lets the app answer its 429),
    or when the counters cannot be reached (the app's limiter has the fallback). A limiter that is
    off (RATELIMIT_ENABLED, `suspended`) admits everything, as Flask-Limiter does.
    """
    if not limiter.enabled:
        return True
    who, prefix = address_key(address), config["RATELIMIT_KEY_PREFIX"]
    budget_limits = [(item, bucket_name) for item in limit_items(budget_text(config, False))]
    ceiling_limits = [(item, ceiling_scope(bucket_name)) for item in limit_items(ceiling_text(config, False))]
    strategy = limiter.limiter
    try:
        if not all(strategy.test(item, prefix, who, scope) for item, scope in budget_limits + ceiling_limits):
            return False
        for item, scope in ceiling_limits + (budget_limits if deducts(status) else []):
            strategy.hit(item, prefix, who, scope)
    except Exception:   # storage trouble: let the app (and Flask-Limiter's fallback) handle it
        return False
    return True


@contextmanager
def suspended(app: Flask):
    """No limits inside: for the app's own bulk reads of its documents (the mirror, `flask validate --all`)."""
    the_limiter = limiter(app)
    was = the_limiter.enabled
    the_limiter.enabled = False
    try:
        yield
    finally:
        the_limiter.enabled = was


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
