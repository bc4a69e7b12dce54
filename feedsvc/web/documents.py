"""Cacheable documents: the one way every feed, page, sitemap and OPML is answered.

A view names its document as a `Document` (its cache key, content type and CORS; `load_state()`,
which finds what the URL names and reads its change counter; `build()`, which renders it: Django's
get_object -> get_feed) and returns `document.response()`. `serve()` decides a 304 from the shared
change counter before anything is built, renders at most once per change (feedsvc.web.render_cache) and
only within the client's render budget (feedsvc.web.ratelimit),
answers through feedsvc.web.http (encodings, cache headers), and falls back to the copy this process
holds when the store is unavailable.
"""
from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Hashable

from flask import Flask, current_app, request
from sqlalchemy.engine import Engine

from feedsvc import store
from feedsvc.render import feeds
from feedsvc.render.feeds.fragment_file import FragmentFile
from feedsvc.web import faults, http, id_authority, ratelimit, render_cache, render_spill

HTML_TYPE = "text/html; charset=utf-8"


_RENDER_CACHE, _COUNTERS, _SITE = "feedsvc.render_cache", "feedsvc.counters", "feedsvc.site"
_FRAGMENTS = "feedsvc.fragments"
# The WSGI environ key under which a document's answer names the document (middleware/fastpath.py keeps
# it with its replay, to answer the document's next state without the app's dispatch).
ANSWERED = "feedsvc.document"
FRAGMENT_FILE_SETTING = "fragment-file"


def init_app(app: Flask, engine: Engine) -> render_cache.RenderCache:
    """Give the app its render cache, and change counters forgotten on every write through `engine`."""
    app.extensions[_RENDER_CACHE] = render_cache.RenderCache(app.config["RENDER_CACHE_MAX_BYTES"], spill_directory(app))
    recheck = app.config["FEED_STATE_RECHECK_MS"] / 1000
    # SQLite tells exactly and cheaply whether anything was committed; elsewhere counters are held for
    # `recheck` seconds, and only those need telling of the other workers' writes.
    probe = store.change_probe(engine)
    signal = render_cache.ChangeSignal.for_database(Path(app.instance_path), app.config["DATABASE_URL"]) \
        if recheck > 0 and probe is None else None
    app.extensions[_COUNTERS] = render_cache.CounterCache(recheck, signal, probe=probe)
    app.extensions[_COUNTERS].follow(engine)
    size = app.config["FEED_FRAGMENTS_MAX_BYTES"]
    app.extensions[_FRAGMENTS] = feeds.Fragments(size, render_cache.output_revision(), fragment_file(app, engine)) \
        if size > 0 else None
    return app.extensions[_RENDER_CACHE]


def fragment_file(app: Flask, engine: Engine, *, beside_servers: bool = False) -> FragmentFile | None:
    """The fragment file the worker processes of this machine share, when several serve; with
    `beside_servers`, for a process that renders feeds beside them (the mirror's watch), whatever
    their count.

    Named after an identity the store records at the first use (not its URL: a database dropped and
    made again under the same URL numbers its versions anew, and a file of the old one would hand
    out its bytes)."""
    limit = app.config["FEED_FRAGMENTS_SHARED_MAX_BYTES"]
    if limit <= 0 or (app.config["SERVER_PROCESSES"] <= 1 and not beside_servers):
        return None
    folder = Path(app.config["FEED_FRAGMENTS_SHARED_DIR"] or Path(app.instance_path) / "fragments")

    def locate() -> Path:
        with engine.begin() as conn:
            identity = store.fixed_setting(conn, FRAGMENT_FILE_SETTING, uuid.uuid4().hex)
        return folder / f"{identity}.sqlite"
    # Its page cache as small as the store's connections' (DATABASE_SQLITE_CACHE_KIB): what it misses
    # is read from the OS's file cache, which every worker shares.
    shared = FragmentFile(locate, limit, app.config["DATABASE_SQLITE_CACHE_KIB"])
    # Named now, while no request holds a connection: named at first use, inside a request that holds
    # one, it takes a second from the pool, and a burst of first requests (the load test's 200 pollers
    # on PostgreSQL, CI 2026-12-07) held every connection waiting for another: each timed out (503) and
    # the next request tried again. A store not made yet (create_app before init-db) is named at first use.
    try:
        shared.path = locate()
    except Exception:  # noqa: BLE001 - any failure here is retried where the file is first needed
        shared.path = None
    return shared


def spill_directory(app: Flask) -> render_spill.SpillDirectory | None:
    """Where documents too big for memory are kept, shared by every worker of this code and database."""
    if app.config["RENDER_SPILL_MAX_BYTES"] <= 0:
        return None
    root = Path(app.config["RENDER_SPILL_DIR"] or Path(app.instance_path) / "render-cache")
    return render_spill.SpillDirectory(root, render_spill.namespace(app.config["DATABASE_URL"]),
                                       app.config["RENDER_SPILL_MAX_BYTES"])


def site() -> feeds.Site:
    """The publication's feed settings, read once per app."""
    ext = current_app.extensions
    if _SITE not in ext:
        id_authority.fix(current_app)
        built = feeds.Site.from_config(current_app.config)
        ext[_SITE] = (built, built.digest())
    return ext[_SITE][0]


def site_digest() -> str:
    """The digest of the site's settings, part of every validator."""
    site()
    return current_app.extensions[_SITE][1]


def cache(app: Flask | None = None) -> render_cache.RenderCache:
    return (app or current_app).extensions[_RENDER_CACHE]


def counters(app: Flask | None = None) -> render_cache.CounterCache:
    return (app or current_app).extensions[_COUNTERS]


def fragments(app: Flask | None = None) -> feeds.Fragments | None:
    """Feed entries' bytes remembered per article version (None when FEED_FRAGMENTS_MAX_BYTES is 0)."""
    return (app or current_app).extensions[_FRAGMENTS]


class Document:
    """One cacheable document. `load_state()` runs first, on every request (it may raise the view's
    404); `build()` runs after it, only when the render cache has no copy of this state."""
    cache_key: Hashable   # tells this document apart from every other; part of its ETag
    content_type = HTML_TYPE
    cors = False

    def load_state(self) -> tuple[tuple[Hashable, Hashable], datetime | None]:
        """(version stamp, last modified) from the store's change counters; keeps what `build` needs."""
        raise NotImplementedError

    def build(self) -> bytes:
        raise NotImplementedError

    def response(self):
        request.environ[ANSWERED] = self
        return serve(self.cache_key, self.load_state, self.build, content_type=self.content_type, cors=self.cors)


def serve(key, load_state, build, *, content_type: str, cors: bool = False):
    """Answer for one cacheable document: 304 or cached bytes or a fresh render, stale if the store is down.

    `load_state()` -> ((version, changed), last modified) reads the shared change counter;
    `build()` -> bytes renders the document (only called on a cache miss).
    """
    if request.method == "OPTIONS":
        return http.preflight_response() if cors else current_app.response_class(
            status=204, headers={"Allow": "GET, HEAD, OPTIONS"})
    try:
        (version, changed), last_modified = load_state()
        validator = render_cache.validator(key, version, changed, salt=site_digest())
        return http.conditional_response(
            validator=validator, last_modified=last_modified, content_type=content_type,
            # Only a render spends from the client's rate-limit budget: a 304 is decided above without
            # `load_bodies`, and a cached copy never calls `build`.
            load_bodies=lambda: cache().get(key, validator, ratelimit.rendering(build)).bodies, cors=cors)
    except faults.UNAVAILABLE:
        # stale-if-error, here as well as in shared caches: the copy this process holds beats a 503.
        held = cache().stale(key)
        if held is None:
            raise  # feedsvc.web.errors answers 503 with Retry-After
        current_app.logger.warning("store unavailable; serving %r from the render cache", key)
        return http.conditional_response(validator=held.validator, last_modified=None, content_type=content_type,
                                         load_bodies=lambda: held.bodies, cors=cors)
