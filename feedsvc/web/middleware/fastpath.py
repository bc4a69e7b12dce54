"""Cached public feeds answered at the WSGI layer: the app's own responses, replayed while current.

A cached feed costs little to find but a lot to answer through Flask: the request context,
routing, a dozen hooks, a Response object and its headers come to about five times what a minimal
Flask app spends returning fixed bytes (`make bench`). This middleware takes the hot case — GET
or HEAD of a public feed URL (or an aggregator profile's) without a query string or credentials — and
answers it from a replay:
the status, headers and body the app itself sent for the same URL, encoding and outcome (200 or
304), recorded when the app answered and valid only while the scope's change counter
(render_cache.CounterCache) still says what it said then. Anything else, or anything not yet
recorded, goes to the app as before, which records it. So what a client receives is always what
the app's own code decided; the replay only skips running it again.

When a write has moved the scope's counter, a URL the app answered before is answered here at the new
state too (`_next_state`): the same document the app answered with (documents.ANSWERED) gives its
new validator and, from the render cache or built as documents.serve builds it, its body; the app's
headers of the previous answer are kept with the new ETag, Last-Modified and Content-Length, the
only ones a state changes (tests/test_fastpath.py compares every such answer with the app's).

What the app does around a feed response is done here too, the same way: the rate limits
(ratelimit.admit_replay: a replay is never a render, so only the bucket's ceiling counts it, on
Flask-Limiter's counters, one update per window; over it, the request goes to the app, which answers
429), the metrics and the access log line (metrics.py, access_log.py), the desk's counts (desk_counters.py).

On with FEEDSVC_FAST_PATH=1 (deploy/gunicorn.conf.py sets it); off by default.
"""
from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from flask import Flask
from flask_limiter import Limiter
from sqlalchemy.engine import Engine

from feedsvc.ops import desk_counters, metrics
from feedsvc.render import profiles
from feedsvc.render.feeds.fragment_file import FragmentFile, file_key
from feedsvc.render.feeds.urls import parse_feed_path
from feedsvc.web import documents, http, navigation, ratelimit, render_cache

REPLAYABLE = ("200", "304")
# Replays share their bodies with the render cache while it holds them; past this many bytes of
# bodies (per process) the least recently used replays are dropped, so evicted feeds are not kept alive.
MAX_REPLAY_BYTES = 2 * 1024 * 1024
# How the app answered a URL (its headers and document, no body) is kept for this many answers (URL,
# method, encoding, 200 or 304): a write changes ~200 documents of 150 KB, which the bodies' budget
# cannot hold, and each one's next state is answered from its shape (FastPath._next_state). A shape is
# at most ~3.4 KB (sys.getsizeof over its headers and document, 2026-12-07): 1.7 MB per worker at most.
MAX_SHAPES = 512
# Shapes the worker processes of a machine share (`SharedShapes`), in bytes of their JSON.
SHARED_SHAPES_BYTES = 4 * 1024 * 1024
PACKAGE = Path(__file__).resolve().parents[2]
FEEDS_BUCKET = ratelimit.BUCKETS["feeds"]   # the public feeds' rate-limit bucket


@dataclass(frozen=True)
class Replay:
    stamp: tuple               # (version, modified_at, output revision) when the app answered
    validator: str
    last_modified: datetime | None   # as the app's freshness test used it
    status: str                # "200 OK"
    headers: tuple             # ((name, value), ...) as the app sent them
    body: bytes
    length: int | None         # its Content-Length, for the access log
    document: object = None    # the documents.Document the app answered with, to answer its next state


def feed_target(environ) -> tuple[str, str] | None:
    """(kind, key) when the request is a public (or aggregator profile) feed the replay may answer, else None."""
    if environ.get("REQUEST_METHOD") not in ("GET", "HEAD") or environ.get("QUERY_STRING"):
        return None
    if "HTTP_AUTHORIZATION" in environ or "HTTP_X_PARTNER_KEY" in environ:
        return None   # may be a partner: counted and limited per key by the app
    if "HTTP_SEC_FETCH_DEST" in environ and navigation.is_navigation(_Headers(environ)):
        return None   # a browser opening the URL: the app answers with the feed's HTML view, never replayed
    return feed_scope(environ.get("PATH_INFO", ""))


@lru_cache(maxsize=4096)
def feed_scope(path: str) -> tuple[str, str] | None:
    """(kind, key) of the scope whose counter a public or profile feed path follows, or None.

    Cached whole, as parse_feed_path is: a profile path (a miss of the public URLs, the rewrite to the
    public path, a second parse) made feed_target 5.0 µs a request where a public path took 1.3; with
    this cache 0.9-1.1 and 0.7-0.9 µs (timeit, in process, 2026-12-07)."""
    # An aggregator profile's feed (feedsvc/web/profile_feeds.py) changes with its scope's counter, as the
    # public feed does; an unknown profile or a format it does not take is a 404, which is never replayed.
    target = parse_feed_path(path) or parse_feed_path(profiles.public_feed_path(path) or "")
    return None if target is None else (target.kind, target.key)


class FastPath:
    """WSGI middleware in front of the Flask app (app.wsgi_app)."""

    def __init__(self, app, wsgi_app, *, engine: Engine, counters: render_cache.CounterCache, limiter: Limiter,
                 shared: "SharedShapes | None" = None):
        self.app, self.wsgi_app, self.shared = app, wsgi_app, shared
        self.engine, self.counters, self.limiter = engine, counters, limiter
        self.replays: OrderedDict[tuple, Replay] = OrderedDict()
        self.shapes: OrderedDict[tuple, Replay] = OrderedDict()   # the replays' headers, kept longer
        self.replay_bytes = 0
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        target = feed_target(environ)
        if target is None:
            return self.wsgi_app(environ, start_response)
        state = self._state(*target)
        if state is None:
            return self.wsgi_app(environ, start_response)
        # The output revision is part of every validator; in the stamp, a new one ends every replay.
        stamp = (state.version, state.modified_at, render_cache.output_revision())
        headers = _Headers(environ)
        encoding = http.choose_encoding(headers.get("Accept-Encoding"))
        path, method = environ["PATH_INFO"], environ["REQUEST_METHOD"]
        answer = self._answer(path, method, encoding, stamp, headers)
        restamped = False
        if answer is None:
            answer = self._next_state(environ, (path, method, encoding), headers)
            restamped = True
        elif not ratelimit.admit_replay(self.limiter, self.app.config, environ.get("REMOTE_ADDR"), FEEDS_BUCKET):
            answer = None
        if answer is None:
            return self._answer_and_record(environ, start_response, (path, method, encoding), stamp)
        start_response(answer.status, list(answer.headers))
        metrics.observe_replay(environ, answer, encoding, time.perf_counter() - started,
                               log=self.app.config["ACCESS_LOG"], cache_counted=restamped)
        desk_counters.counters(self.app).count(path, int(answer.status[:3]), environ.get("HTTP_USER_AGENT"),
                                               environ.get("REMOTE_ADDR"))
        return [] if method == "HEAD" else [answer.body]

    def _state(self, kind: str, key: str):
        """The scope's counter (through the app's CounterCache); None when the app must decide (404, outage)."""
        from feedsvc.render import feeds

        def load():
            with self.engine.connect() as conn:
                return feeds.resolve(conn, kind, key)
        try:
            return self.counters.get(("scope", kind, key), load)[1]
        except Exception:   # unknown scope, store trouble: the app's answer (404, stale, 503) applies
            return None

    def _answer(self, path, method, encoding, stamp, headers) -> Replay | None:
        """The recorded answer for this request, if one was recorded at the current stamp."""
        kept = self.replays.get((path, method, encoding, 200)), self.replays.get((path, method, encoding, 304))
        current = [replay for replay in kept if replay is not None and replay.stamp == stamp]
        if not current:
            return None
        # Both answers at one stamp carry the same validator and date: one freshness test decides.
        status = 304 if http.is_fresh(current[0].validator, current[0].last_modified, headers) else 200
        replay = kept[status == 304]
        if replay is None or replay.stamp != stamp:
            return None
        try:
            self.replays.move_to_end((path, method, encoding, status))   # recently used: kept longest
        except KeyError:
            pass   # dropped meanwhile by another thread; still good for this answer
        return replay

    def _next_state(self, environ, where: tuple, headers) -> Replay | None:
        """The answer to a document the app answered before, at the scope's new state: its body from the
        render cache (built on a miss, as documents.serve builds it), its headers those the app sent for
        the previous state with the ETag, Last-Modified and Content-Length of this one. None when the
        app must answer (nothing kept, a refusal, any failure): then what was counted here is not counted
        again (ratelimit.counted_outside).

        A write's fan-out is hundreds of such first requests, one per changed document and worker: through
        the app's dispatch they took half the workers' CPU of the bench row `fanout`."""
        if http.ALL_BODIES in environ or "feedsvc.internal" in environ:
            return None   # the static mirror's reads need the app's (every encoding, not counted as traffic)
        earlier = [self.shapes.get((*where, status)) for status in (200, 304)]
        known = next((replay.document for replay in earlier if replay is not None and replay.document), None)
        if known is None and self.shared is not None:
            earlier = self.shared.get(where)
        if known is None and not any(earlier):
            return None
        with self.app.app_context():
            document = copy.copy(known) if known is not None else document_for(where[0])
            if document is None:
                return None
            return self._built(document, [replay and replace(replay, document=document) for replay in earlier],
                               where, headers, environ)

    def _built(self, document, earlier: list, where: tuple, headers, environ) -> Replay | None:
        try:
            (version, modified_at), last_modified = document.load_state()   # the counter _state read: no query
            validator = render_cache.validator(document.cache_key, version, modified_at, salt=documents.site_digest())
        except Exception:   # noqa: BLE001 - the app decides (404, stale copy, 503)
            return None
        status = 304 if http.is_fresh(validator, last_modified, headers) else 200
        before = earlier[status == 304]
        if before is None or any(name.lower() == "last-modified" for name, _ in before.headers) != (
                last_modified is not None):
            return None
        address = environ.get("REMOTE_ADDR")
        if not ratelimit.admit_replay(self.limiter, self.app.config, address, FEEDS_BUCKET):
            return None
        body = b""
        spent: ratelimit.OverLimit | str | None = None
        if status == 200:
            def spend_then_build() -> bytes:
                nonlocal spent
                try:
                    ratelimit.spend_render(ratelimit.address_key(address), FEEDS_BUCKET)
                except ratelimit.OverLimit as refused:
                    spent = refused
                    raise
                spent = ratelimit.RENDER_SPENT
                return document.build()
            try:
                body = documents.cache(self.app).get(document.cache_key, validator, spend_then_build).bodies[where[2]]
            except Exception:   # noqa: BLE001 - the app answers (429, 503, ...), counting nothing twice
                ratelimit.counted_outside(environ, spent)
                return None
        stamp = (version, modified_at, render_cache.output_revision())
        answer = _restamped(before, stamp, validator, last_modified, body, where[2])
        if answer is None:
            ratelimit.counted_outside(environ, spent)
            return None
        if where[1] == "HEAD":
            answer = replace(answer, body=b"")   # as the app's HEAD answers are kept: headers only
        self._keep((*where, status), answer)
        if status == 200 and earlier[1] is not None:   # the 304 of this state: the same headers but its body's
            not_modified = _restamped(earlier[1], stamp, validator, last_modified, b"", where[2])
            if not_modified is not None:
                self._keep((*where, 304), not_modified)
        return answer

    def _answer_and_record(self, environ, start_response, where: tuple, stamp: tuple):
        """The app answers; a 200 or 304 with an ETag is kept, exactly as sent, for the next such request."""
        sent = {}

        def capture(status, headers, exc_info=None):
            sent.update(status=status, headers=headers, failed=exc_info is not None)
            return start_response(status, headers, exc_info)

        result = self.wsgi_app(environ, capture)
        if sent.get("failed") or sent.get("status", "")[:3] not in REPLAYABLE:
            return result
        try:
            body = b"".join(result)   # a feed is bytes in memory already: nothing streams here
        finally:
            if hasattr(result, "close"):
                result.close()
        etag = next((v for k, v in sent["headers"] if k.lower() == "etag"), "")
        length = next((int(v) for k, v in sent["headers"] if k.lower() == "content-length"), None)
        validator = http.strip_encoding(etag.strip('"'))
        if validator:
            replay = Replay(stamp, validator, stamp[1] if stamp[0] else None, sent["status"],
                            tuple(sent["headers"]), body, length, environ.get(documents.ANSWERED))
            self._keep((*where, int(sent["status"][:3])), replay)
            if self.shared is not None and replay.document is not None:
                self.shared.put((*where, int(sent["status"][:3])), replay)
        return [body]

    def _keep(self, key: tuple, replay: Replay) -> None:
        with self.lock:
            old = self.replays.pop(key, None)
            self.replay_bytes += len(replay.body) - (len(old.body) if old else 0)
            self.replays[key] = replay
            while self.replay_bytes > MAX_REPLAY_BYTES and self.replays:
                _, dropped = self.replays.popitem(last=False)
                self.replay_bytes -= len(dropped.body)
            if replay.document is not None:
                self.shapes[key] = replace(replay, body=b"")
                self.shapes.move_to_end(key)
                while len(self.shapes) > MAX_SHAPES:
                    self.shapes.popitem(last=False)


def _restamped(before: Replay, stamp: tuple, validator: str, last_modified, body: bytes,
               encoding: str) -> Replay | None:
    """`before` (an answer the app sent) as the app answers the same request at another state: its
    headers but the ETag, Last-Modified and, for a 200, Content-Length, which are the state's and the
    body's; None when `before` is not shaped as conditional_response makes such answers."""
    suffix = http.ETAG_SUFFIX[encoding]
    changed = {"etag": f'"{validator}{suffix}"'}
    if last_modified is not None:
        changed["last-modified"] = http.last_modified_text(last_modified)
    if before.status.startswith("200"):
        changed["content-length"] = str(len(body))
    expected = {"etag": f'"{before.validator}{suffix}"'}
    headers, seen = [], set()
    for name, value in before.headers:
        lower = name.lower()
        if lower in changed:
            if lower in seen or lower in expected and value != expected[lower]:
                return None
            seen.add(lower)
            value = changed[lower]
        headers.append((name, value))
    if seen != changed.keys():
        return None
    length = len(body) if before.status.startswith("200") else before.length
    last = stamp[1] if stamp[0] else None
    return Replay(stamp, validator, last, before.status, tuple(headers), body, length, before.document)


def document_for(path: str):
    """The document the app answers a feed path with when asked as feed_target admits (no query, no
    credentials, not a browser), made by the views' own functions; None for a path they refuse."""
    from feedsvc.web import feeds, profile_feeds  # the blueprints: imported when the app registers them

    public = profiles.public_feed_path(path)
    target = parse_feed_path(public or path)
    if target is None:
        return None
    if public is None:
        return feeds.feed_page(target.fmt, target.kind, target.key)
    try:
        return profile_feeds.profile_feed_page(path[len(profiles.PROFILE_FEEDS) + 1:].partition("/")[0],
                                               target.fmt, target.kind, target.key)
    except profile_feeds.UnknownProfile:
        return None


class SharedShapes:
    """The shapes of the app's answers (status, headers, validator) that every worker process of this
    machine recorded, so that a worker answers the next state of a URL another one answered before: a
    poller's requests land on any worker, and the `fanout` bench row's first request after a write
    found the answering worker without a shape of its own half the time, each costing the app's dispatch.

    Kept in a FragmentFile (a SQLite file of bytes by key, shared by processes, bounded, any failure a
    miss) named after a digest of the package's files and the app's settings: a shape is the app's
    headers, which depend on nothing else (the state's own ETag, Last-Modified and Content-Length are
    put in at each use), so a deploy or a setting that could change them starts a new file."""

    def __init__(self, file: FragmentFile):
        self.file = file

    @classmethod
    def for_app(cls, app: Flask) -> "SharedShapes | None":
        if app.config["SERVER_PROCESSES"] <= 1:
            return None
        folder = Path(app.instance_path) / "answer-shapes"
        name = answers_revision(app.config)
        return cls(FragmentFile(lambda: folder / f"{name}.sqlite", SHARED_SHAPES_BYTES,
                                app.config["DATABASE_SQLITE_CACHE_KIB"]))

    def get(self, where: tuple) -> list[Replay | None]:
        """The 200's and the 304's shape recorded for (path, method, encoding), each or None."""
        found = self.file.get_all([file_key((*where, status)) for status in (200, 304)])
        return [None if raw is None else _shape(raw) for raw in found]

    def put(self, key: tuple, replay: Replay) -> None:
        shape = {"status": replay.status, "headers": replay.headers, "validator": replay.validator,
                 "length": replay.length}
        self.file.put_all([(file_key(key), json.dumps(shape).encode("utf-8"))])


def _shape(raw: bytes) -> Replay:
    shape = json.loads(raw)
    headers = tuple((name, value) for name, value in shape["headers"])
    return Replay((), shape["validator"], None, shape["status"], headers, b"", shape["length"])


def answers_revision(config) -> str:
    """A digest of every file of the package and of the settings that are plain values (the others are
    named by their type): what the app's headers for a URL can depend on. Not the secrets (a test app's
    SECRET_KEY is its own process's), which only sign the desk's cookies and check tokens."""
    digest = hashlib.blake2b(render_cache.output_revision().encode(), digest_size=12)
    for file in sorted(PACKAGE.rglob("*")):
        if file.is_file() and "__pycache__" not in file.parts:
            digest.update(f"{file.relative_to(PACKAGE).as_posix()}\0".encode() + file.read_bytes())
    plain = (str, int, float, bool, type(None), list, tuple, dict)
    settings = {name: value if isinstance(value, plain) else type(value).__name__ for name, value in config.items()
                if "SECRET" not in name and "TOKEN" not in name}
    digest.update(json.dumps(settings, sort_keys=True, default=lambda value: type(value).__name__).encode())
    return digest.hexdigest()


class _Headers:
    """Request headers straight from the WSGI environ, as http.is_fresh and choose_encoding read them."""

    def __init__(self, environ):
        self.environ = environ

    def get(self, name: str, default=None):
        return self.environ.get("HTTP_" + name.upper().replace("-", "_"), default)


def init_app(app: Flask, *, engine: Engine, counters: render_cache.CounterCache, limiter: Limiter) -> None:
    """With FAST_PATH, wrap the app: scope counters read through `engine` and held in the app's
    `counters`, requests counted on the app's own `limiter`."""
    if app.config["FAST_PATH"]:
        app.wsgi_app = FastPath(app, app.wsgi_app, engine=engine, counters=counters, limiter=limiter,
                                shared=SharedShapes.for_app(app))
