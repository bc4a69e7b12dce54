"""Feed URLs: /feeds/{rss.xml,atom.xml,feed.json}, per section/tag/author, /feeds.opml and /feeds.

Views only choose the document and its validator; feedsvc.feeds builds it, feedsvc.render_cache
keeps it, feedsvc.http answers (304, encodings, cache headers).
"""
from __future__ import annotations

import hashlib
import re

from flask import Blueprint, current_app, jsonify, render_template, request

from .. import faults, feeds, http, render_cache, store
from ..feeds import opml
from ..feeds.model import FORMATS, SCOPE_KINDS, Scope
from . import db

bp = Blueprint("feeds", __name__)

FILENAMES = {f.filename: name for name, f in FORMATS.items()}
CURSOR_TOKEN = re.compile(r"^\d{8}T\d{12}~[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
OPML_TYPE = "text/x-opml; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"


@bp.record_once
def _setup(state) -> None:
    app = state.app
    app.extensions["feedsvc.render_cache"] = render_cache.RenderCache(app.config["RENDER_CACHE_MAX_BYTES"])
    app.extensions["feedsvc.counters"] = render_cache.CounterCache(app.config["FEED_STATE_RECHECK_MS"] / 1000)


def site() -> feeds.Site:
    """The publication's feed settings, read once per app."""
    ext = current_app.extensions
    if "feedsvc.site" not in ext:
        built = feeds.Site.from_config(current_app.config)
        ext["feedsvc.site"] = (built, built.digest())
    return ext["feedsvc.site"][0]


def _site_digest() -> str:
    site()
    return current_app.extensions["feedsvc.site"][1]


def cache() -> render_cache.RenderCache:
    return current_app.extensions["feedsvc.render_cache"]


def counters() -> render_cache.CounterCache:
    return current_app.extensions["feedsvc.counters"]


@bp.app_context_processor
def _feed_links():
    # base.html emits <link rel="alternate"> for the site's feeds and the page's `feed_scopes`.
    return {"feed_links": lambda scopes=(): feeds.alternate_links(site(), scopes or ())}


class BadRequest(ValueError):
    pass


@bp.errorhandler(BadRequest)
def _bad_request(exc: BadRequest):
    return _error(400, str(exc))


@bp.errorhandler(feeds.FeedNotFound)
def _not_found(exc: feeds.FeedNotFound):
    kind, _, key = exc.scope_id.partition(":")
    return _error(404, f"there is no {kind} '{key}': no feed at this address")


def _error(status: int, message: str):
    response = jsonify({"error": message})
    response.status_code = status
    response.headers["Cache-Control"] = "public, max-age=60"
    return response


def page_params(max_limit: int | None = None) -> tuple[int, feeds.Cursor | None]:
    """(limit, after) of a feed request; BadRequest names the parameter and what it accepts."""
    limit_cap = max_limit or site().max_limit
    raw = request.args.get("limit")
    if raw is None:
        limit = site().default_limit
    elif raw.isascii() and raw.isdigit() and len(raw) <= 6 and 1 <= int(raw) <= limit_cap:
        limit = int(raw)
    else:
        raise BadRequest(f"limit must be a whole number from 1 to {limit_cap}; got {raw[:40]!r}")
    raw = request.args.get("after")
    if raw is None:
        return limit, None
    if not CURSOR_TOKEN.match(raw):
        raise BadRequest("after must be a page cursor taken from a feed's next link "
                         "(like 20250723T100000000000~<article id>)")
    try:
        return limit, feeds.Cursor.parse(raw)
    except ValueError:
        raise BadRequest(f"after names an impossible time: {raw[:40]!r}") from None


def serve(key, load_state, build, *, content_type: str, cors: bool = False):
    """Answer for one cacheable document: 304 or cached bytes or a fresh render, stale if the store is down.

    `load_state()` -> (version stamp, last modified) reads the shared change counter;
    `build()` -> bytes renders the document (only called on a cache miss).
    """
    if request.method == "OPTIONS":
        return http.preflight_response() if cors else current_app.response_class(
            status=204, headers={"Allow": "GET, HEAD, OPTIONS"})
    try:
        stamp, last_modified = load_state()
        validator = render_cache.validator(key, *stamp, salt=_site_digest())
        return http.conditional_response(
            validator=validator, last_modified=last_modified, content_type=content_type,
            load_bodies=lambda: cache().get(key, validator, build).bodies, cors=cors)
    except faults.UNAVAILABLE:
        # stale-if-error, here as well as in shared caches: the copy this process holds beats a 503.
        held = cache().stale(key)
        if held is None:
            raise  # feedsvc.faults answers 503 with Retry-After
        current_app.logger.warning("store unavailable; serving %r from the render cache", key)
        return http.conditional_response(validator=held.validator, last_modified=None, content_type=content_type,
                                         load_bodies=lambda: held.bodies, cors=cors)


def feed_response(fmt: str, kind: str, key: str = "", *, limit: int, after: feeds.Cursor | None,
                  full_text: bool | None = None, self_url: str | None = None, edition: tuple = (),
                  cors: bool | None = None):
    """The response for one page of one feed; partner feeds reuse it with their own edition.

    `edition` tells apart documents that differ for the same scope and page (a partner's own links);
    `cors` defaults to on for the JSON feed.
    """
    the_site = site()
    held = {}
    cache_key = ("feed", fmt, kind, key, limit, after.token() if after else None, full_text, self_url, *edition)

    def load_state():
        scope, state = counters().get(("scope", kind, key), lambda: feeds.resolve(db.connection(), kind, key))
        held.update(scope=scope, state=state)
        return (state.version, state.modified_at), state.modified_at if state.version else None

    def build() -> bytes:
        return feeds.render(fmt, held["scope"], conn=db.connection(), site=the_site, limit=limit, after=after,
                            full_text=full_text, self_url=self_url, state=held["state"])

    return serve(cache_key, load_state, build, content_type=FORMATS[fmt].content_type,
                 cors=fmt == "json" if cors is None else cors)


def _public_feed(fmt: str, kind: str, key: str = ""):
    limit, after = page_params()
    return feed_response(fmt, kind, key, limit=limit, after=after)


@bp.route("/feeds/<any('rss.xml', 'atom.xml', 'feed.json'):filename>", methods=["GET", "HEAD", "OPTIONS"])
def site_feed(filename: str):
    return _public_feed(FILENAMES[filename], "site")


@bp.route("/feeds/<any(section, tag, author):kind>/<key>/<any('rss.xml', 'atom.xml', 'feed.json'):filename>",
          methods=["GET", "HEAD", "OPTIONS"])
def scope_feed(kind: str, key: str, filename: str):
    return _public_feed(FILENAMES[filename], kind, key)


# ---- directory and OPML: documents about every scope -------------------------------------------

def _all_scopes_state(held: dict):
    def load_state():
        scopes = counters().get(("all",), lambda: store.all_scopes(db.connection()))
        held["scopes"] = scopes
        stamp = hashlib.blake2b(repr([(s.scope, s.name, s.version) for s in scopes]).encode("utf-8"),
                                digest_size=12).hexdigest()
        last = max((s.modified_at for s in scopes), default=None)
        return (0, stamp), last
    return load_state


def scope_groups(states) -> dict[str, list[Scope]]:
    """Known scopes by kind (section, tag, author), each sorted by key; the site is implied."""
    groups = {kind: [] for kind in SCOPE_KINDS}
    for state in states:
        if state.scope != "site":
            scope = Scope.from_id(state.scope, state.name)
            groups[scope.kind].append(scope)
    return groups


@bp.route("/feeds.opml", methods=["GET", "HEAD", "OPTIONS"])
def opml_document():
    held = {}
    fmt = request.args.get("format", "rss")
    if fmt not in FORMATS:
        raise BadRequest(f"format must be one of {', '.join(FORMATS)}; got {fmt[:20]!r}")

    def build() -> bytes:
        return opml.write(site(), scope_groups(held["scopes"]), fmt=fmt, states=held["scopes"])

    return serve(("opml", fmt), _all_scopes_state(held), build, content_type=OPML_TYPE, cors=True)


@bp.route("/feeds", methods=["GET", "HEAD"])
def directory():
    held = {}

    def build() -> bytes:
        groups = scope_groups(held["scopes"])
        the_site = site()
        return render_template("feeds/directory.html", site=the_site, groups=groups, formats=FORMATS,
                               site_scope=Scope("site", "", the_site.name),
                               feed_urls=lambda scope: feeds.feed_urls(scope, the_site.url),
                               opml_url=f"{the_site.url}/feeds.opml").encode("utf-8")

    return serve(("directory",), _all_scopes_state(held), build, content_type=HTML_TYPE)
