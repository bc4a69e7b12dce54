"""Rate limits: they protect what costs (renders), not what is cheap; per partner key, or else per client address.

Each limited bucket ("feeds": public and partner feeds together; "pages": listing pages and the headline
widget; "oembed") holds every client to two limits:
- the render budget (RATELIMIT_PUBLIC per address, RATELIMIT_PARTNER per partner key), spent only by an
  answer that renders: a document the render cache does not hold (documents.serve spends it through
  `rendering`, after the 304 and the cache were checked, right before `build`), and every request to a
  view that builds its answer each time (BUILT_PER_REQUEST: oEmbed, the headline widget; spent up
  front). A 304, a copy from the render cache or an error answer spends nothing from it, so a reader
  that has just fetched hundreds of feeds is still answered every one it polls again;
- the ceiling, RATELIMIT_CEILING_FACTOR times the budget, counting every request of the bucket
  (Flask-Limiter before the view; the WSGI fast path through `admit_replay`): cheap answers are not
  free, and a flood from one address is still stopped.
Failed API authentication is counted per address as well (RATELIMIT_AUTH_FAILURES): past it, an
address gets 429 for any token, the right one too, until the window ends.
Over any limit the answer is 429 with Retry-After (seconds) and a JSON body saying which limit.

Counters live in memory, per process, or in Redis when RATELIMIT_STORAGE is a redis:// URL (then all
gunicorn workers and hosts share them; a busy client's counts are taken from Redis in small leases,
ratelimit_lease.py). Memory is refused when SERVER_PROCESSES says several processes
serve (deploy/gunicorn.conf.py sets it): each would count apart, and which 429s a client got would
depend on which worker answered. If Redis stops answering, limits fall back to per-process memory
rather than failing feeds. Rate-limit headers are not sent on ordinary responses: feeds are cached
publicly, and a per-client header has no place in a shared cache.
"""
from __future__ import annotations

import math
import time
from contextlib import contextmanager
from functools import lru_cache
from typing import Callable, Iterator, TypeVar

from flask import Flask, current_app, request
from flask_limiter import Limit, Limiter
from flask_limiter._limits import RuntimeLimit
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import TooManyRequests

from feedsvc.config import ConfigError
from feedsvc.web import ratelimit_lease  # noqa: F401 - registers the feedsvc-redis:// storage with limits
from feedsvc.web.partner_key import request_partner

_LIMITER = "feedsvc.limiter"
# Blueprint (or endpoint) -> bucket. Public, partner and aggregator profile feeds share one budget per client; listing
# pages (any cursor is a document of its own) and the headline widget share another.
BUCKETS = {"feeds": "feeds", "partner_feeds": "feeds", "profile_feeds": "feeds", "embed.oembed_endpoint": "oembed",
           "pages.home": "pages", "pages.scope_listing": "pages", "embed.latest": "pages"}
# Limited views that build their answer on every request, with no render cache in front: each request
# spends from the budget, before the view runs. Every other limited view answers through documents.serve.
BUILT_PER_REQUEST = frozenset({"embed.oembed_endpoint", "embed.latest"})
AUTH_FAILURES_SCOPE = "api-auth-failures"
REDIS_OPTIONS: dict[str, str | int] = {"socket_connect_timeout": 1, "socket_timeout": 1}  # a dead Redis must not stall a feed
LIMIT_SETTINGS = ("RATELIMIT_PUBLIC", "RATELIMIT_PARTNER", "RATELIMIT_AUTH_FAILURES")
# What the WSGI fast path counted of a request before handing it to the app (`counted_outside`): the
# ceiling; and the render budget, spent (RENDER_SPENT) or refused (the OverLimit it raised).
CEILING_COUNTED, RENDER_DECIDED, RENDER_SPENT = "feedsvc.ceiling_counted", "feedsvc.render_budget", "spent"
T = TypeVar("T")


# ---- the rules: what each bucket allows, whose requests are counted together -------------------

def budget_text(config, partner: bool) -> str:
    return config["RATELIMIT_PARTNER" if partner else "RATELIMIT_PUBLIC"]


def ceiling_text(config, partner: bool) -> str:
    return scaled(budget_text(config, partner), config["RATELIMIT_CEILING_FACTOR"])


def ceiling_scope(bucket_name: str) -> str:
    return f"{bucket_name}:all"


def address_key(address: str | None) -> str:
    return f"addr:{address or 'unknown'}"


@lru_cache(maxsize=32)
def scaled(limits_text: str, factor: int) -> str:
    """'120/minute' scaled by 10 -> '1200 per 1 minute' (each of ';'-separated limits)."""
    return ";".join(f"{item.amount * factor} per {item.multiples} {item.GRANULARITY.name}"
                    for item in parse_many(limits_text))


@lru_cache(maxsize=32)
def limit_items(limits_text: str) -> tuple[RateLimitItem, ...]:
    """The limits of a setting, shortest window first (the order Flask-Limiter checks them in)."""
    return tuple(sorted(parse_many(limits_text)))


# ---- the rules applied to a Flask request -------------------------------------------------------

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


def _ceiling_exempt() -> bool:
    """Unlimited, or counted against the ceiling already by the WSGI fast path (`counted_outside`)."""
    return _unlimited() or CEILING_COUNTED in request.environ


def _budget_spent_later() -> bool:
    """True unless the view builds on every request: documents.serve spends the budget, on a render only."""
    return _unlimited() or request.endpoint not in BUILT_PER_REQUEST


class ConfiguredLimit(Limit):
    """Flask-Limiter's Limit, its limit objects built once per limit text instead of on every request.

    Flask-Limiter 4.1 calls the limit's callable, parses the text (limits.parse_many) and builds new
    RuntimeLimits each time it iterates a Limit, on every request, though the text changes only with the
    configuration (and between the public and the partner limit). The limiter was about 9% of a worker's
    CPU in the `fanout` bench row (issue #21); built once, its CPU per cached-feed 304 fell from 180 to
    156 us on memory counters and from 209 to 168 us on Redis (test client, process time inside the
    limiter's request hooks, medians of 12 interleaved runs of 3,000 requests). The callable is still asked
    each time, so a changed setting still takes effect (one entry per distinct text); the RuntimeLimits
    are those the library itself builds, so what is counted and refused is unchanged.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        self._built: dict[str, tuple[RuntimeLimit, ...]] = {}

    def __iter__(self) -> Iterator[RuntimeLimit]:
        text = self.limit_provider() if callable(self.limit_provider) else self.limit_provider
        built = self._built.get(text)
        if built is None:   # the library's own build: it asks the callable again (same request, same text)
            built = self._built[text] = tuple(super().__iter__())
        return iter(built)


def _budget_scope(_endpoint: str) -> str:
    # Asked only for a limit that applies (not exempt), so for a request with a bucket; "" is what
    # Flask-Limiter reads as no scope of its own, as it read None.
    return bucket() or ""


def _ceiling_scope(_endpoint: str) -> str:
    name = bucket()
    return ceiling_scope(name) if name else ""


def _limits() -> list[str | Callable[[], str] | Limit]:
    """The budget and the ceiling (Limiter's default_limits, hence its element type)."""
    return [
        ConfiguredLimit(budget, key_function=client_key, shared=True, scope=_budget_scope,
                        exempt_when=_budget_spent_later),
        ConfiguredLimit(ceiling, key_function=client_key, shared=True, scope=_ceiling_scope, exempt_when=_ceiling_exempt),
    ]


class OverLimit(TooManyRequests):
    """A limit counted outside Flask-Limiter's check before the view (renders, failed authentication)."""
    retry_after: int   # seconds, always: Werkzeug's attribute (Retry-After) also takes a date or None

    def __init__(self, item: RateLimitItem, retry_after: int, message: str):
        super().__init__(description=str(item))
        self.retry_after, self.message = retry_after, message


def rendering(build: Callable[[], T]) -> Callable[[], T]:
    """`build`, spending one render from this client's budget first (documents.serve: a cache miss).

    Over the budget it raises OverLimit (429) and nothing is built; routes without limits build freely.
    A request the WSGI fast path began (`counted_outside`) spends as that decided: nothing more when it
    spent already, or the refusal it met.
    """
    def spend_then_build() -> T:
        name = bucket()
        decided = request.environ.pop(RENDER_DECIDED, None)
        if isinstance(decided, OverLimit):
            raise decided
        if name is not None and decided is None:
            partner = counted_partner()
            spend_render(client_key(), name, partner=partner is not None)
        return build()
    return spend_then_build


def spend_render(who: str, name: str, *, partner: bool = False) -> None:
    """One render from `who`'s budget in bucket `name`, or OverLimit (in an app context)."""
    items = limit_items(budget_text(current_app.config, partner))
    whose = "this partner key" if partner else "this address"
    _spend(items, who, name,
           lambda item, retry: f"{whose} is over its budget of {item} renders for {name}; for documents "
           f"not rendered yet retry after {retry} seconds. Conditional requests (If-None-Match, "
           "If-Modified-Since) and documents already rendered are answered meanwhile.")


def refuse_after_failed_authentications() -> None:
    """OverLimit (429) when this address has failed API authentication too often: for any token, so
    that guessing gains nothing (a right token still works from every other address)."""
    items = limit_items(current_app.config["RATELIMIT_AUTH_FAILURES"])
    the_limiter, args = limiter(), _args(address_key(request.remote_addr), AUTH_FAILURES_SCOPE)
    if not the_limiter.enabled:
        return
    breached = _storage_answer(lambda: next((i for i in items if not the_limiter.limiter.test(i, *args)), None))
    if breached is not None:
        retry = _retry_after(breached, args)
        raise OverLimit(breached, retry, f"this address has failed API authentication more than {breached}; "
                        f"every token is refused from it: retry after {retry} seconds")


def count_failed_authentication() -> None:
    the_limiter = limiter()
    if the_limiter.enabled:
        args = _args(address_key(request.remote_addr), AUTH_FAILURES_SCOPE)
        _storage_answer(lambda: [the_limiter.limiter.hit(item, *args)
                                 for item in limit_items(current_app.config["RATELIMIT_AUTH_FAILURES"])])


def _spend(items: tuple[RateLimitItem, ...], who: str, scope: str, explain: Callable[[RateLimitItem, int], str]):
    """Take one from each of `items` (shortest window first) for `who` in `scope`, or raise OverLimit at the
    first one used up, taking no more from the longer windows.

    As Flask-Limiter counts its own limits (and `admit_replay` the ceiling): one counter update per window,
    a single round trip to Redis each. Testing every window before taking (a GET, then the update) cost a
    render twice the round trips; what it spared was one count in a window already over its limit.
    """
    the_limiter = limiter()
    if not the_limiter.enabled:
        return
    args = _args(who, scope)

    def spend() -> RateLimitItem | None:
        strategy = the_limiter.limiter
        return next((item for item in items if not strategy.hit(item, *args)), None)
    breached = _storage_answer(spend)
    if breached is not None:
        retry = _retry_after(breached, args)
        raise OverLimit(breached, retry, explain(breached, retry))


def _args(who: str, scope: str) -> tuple[str, str, str]:
    """The identifiers Flask-Limiter keys a shared limit by (its counters and these are the same)."""
    return current_app.config["RATELIMIT_KEY_PREFIX"], who, scope


def _storage_answer(ask: Callable[[], T]) -> T | None:
    """`ask()` of the counters, or None (nothing counted, nothing refused) when they cannot be reached:
    Flask-Limiter's own check before the view moves this process to its in-memory fallback meanwhile."""
    try:
        return ask()
    except Exception as exc:  # noqa: BLE001 - any storage client error; a limit must not fail a request
        current_app.logger.warning("rate-limit storage unreachable, not counted: %s", exc)
        return None


def _retry_after(item: RateLimitItem, args) -> int:
    reset = _storage_answer(lambda: limiter().limiter.get_window_stats(item, *args).reset_time)
    return max(1, math.ceil(reset - time.time())) if reset else item.get_expiry()


# ---- the rules applied outside Flask (the WSGI fast path) ---------------------------------------

def admit_replay(limiter: Limiter, config, address: str | None, bucket_name: str) -> bool:
    """Count a public request answered without Flask (a replayed 200 or 304: never a render) as the
    Flask path counts it: against the bucket's ceiling, on the same counters.

    False when it is over the ceiling (the caller then lets the app answer its 429), or when the
    counters cannot be reached (the app's limiter has the fallback). A limiter that is off
    (RATELIMIT_ENABLED, `suspended`) admits everything, as Flask-Limiter does.
    """
    if not limiter.enabled:
        return True
    strategy, args = limiter.limiter, (config["RATELIMIT_KEY_PREFIX"], address_key(address), ceiling_scope(bucket_name))
    try:
        # One counter update per window, stopping at the first one over, as Flask-Limiter does.
        return all(strategy.hit(item, *args) for item in limit_items(ceiling_text(config, False)))
    except Exception:   # storage trouble: let the app (and Flask-Limiter's fallback) handle it
        return False


def counted_outside(environ, render: str | OverLimit | None = None) -> None:
    """Tell the app that the fast path counted this request against the ceiling already, and spent its
    render (RENDER_SPENT) or was refused it (the OverLimit): the app then counts neither again, so a
    request the fast path began and the app finished is counted once, as either alone counts it."""
    environ[CEILING_COUNTED] = True
    if render is not None:
        environ[RENDER_DECIDED] = render


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
            # The base class's private sweep, by its mangled name: mypy does not model name mangling.
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]


def check_settings(config) -> None:
    """ConfigError for limits that cannot be read, or counters that several processes would keep apart."""
    for name in LIMIT_SETTINGS:
        try:
            limit_items(config[name])
        except ValueError:
            raise ConfigError(f"FEEDSVC_{name}: {config[name]!r} is not a rate limit such as "
                              "'600/minute' or '600/minute;6000/hour'") from None
    if config["RATELIMIT_CEILING_FACTOR"] < 1:
        raise ConfigError("FEEDSVC_RATELIMIT_CEILING_FACTOR: the ceiling must be at least the budget (1 or more)")
    processes, storage = config["SERVER_PROCESSES"], config["RATELIMIT_STORAGE"]
    if config["RATELIMIT_ENABLED"] and processes > 1 and storage.startswith("memory://"):
        raise ConfigError(
            f"FEEDSVC_RATELIMIT_STORAGE is {storage!r} while {processes} processes serve "
            "(FEEDSVC_SERVER_PROCESSES, from gunicorn's worker count): each process would keep its own "
            f"counters, so a client would get up to {processes} times every limit, and which requests are "
            "refused would depend on which worker answers. Point FEEDSVC_RATELIMIT_STORAGE at a Redis "
            "every process reaches (redis://host:6379/0), or serve with one worker (FEEDSVC_WORKERS=1), "
            "or turn the limits off (FEEDSVC_RATELIMIT_ENABLED=0).")


def init_app(app: Flask) -> Limiter:
    check_settings(app.config)
    storage = app.config["RATELIMIT_STORAGE"]
    options: dict[str, str | int] = REDIS_OPTIONS if storage.startswith(("redis://", "rediss://")) else {}
    if storage.startswith(("memory://", "redis://", "rediss://")):
        # The same counters: in memory without a timer thread per update (SweptMemoryStorage), in Redis
        # taken in leases by a busy client (ratelimit_lease.LeasedRedisStorage).
        storage = "feedsvc-" + storage
    limiter = Limiter(
        key_func=client_key,
        default_limits=_limits(),
        storage_uri=storage,
        storage_options=options,
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


def refusal(exc: TooManyRequests) -> tuple[int, str]:
    """(seconds until the breached limit's window resets, what to tell the client) for a 429."""
    if isinstance(exc, OverLimit):
        return exc.retry_after, exc.message
    current = limiter().current_limit
    retry = 60 if current is None else max(1, math.ceil(current.window.reset_time - time.time()))
    who = "this partner key" if counted_partner() else "this address"
    return retry, (f"{who} is over its limit of {exc.description} for {bucket() or 'this route'}; "
                   f"retry after {retry} seconds.")
