"""The URLs of scopes, defined once: one Werkzeug URL map that routes, links, the fast path and the mirror share.

    /feeds/{rss.xml,atom.xml,feed.json}                 the site's feeds
    /feeds/<kind>/<key>/{rss.xml,atom.xml,feed.json}    a section's, tag's or author's feeds
    /feeds/<kind>/{rss.xml,atom.xml,feed.json}          the feeds of a kind without keys (video)
    /,  /<kind>/<key>  and  /<kind>                      their listing pages
    /feeds/<kind>  and  /feeds.opml                      the directory of a kind's scopes, and every scope's feeds

The blueprints register these rules (`add_routes`), links are built from them (`feed_path`,
`listing_path`) and requests are read back by them (`parse_feed_path`); the file names come from
the formats (formats.py) and the kinds from the store's table (store.SCOPE_KINDS), so a new format
or kind needs no change here. A key is any path segment: an unknown one is the view's 404.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter, Map, Rule

from feedsvc.render.feeds.formats import BY_FILENAME, FORMATS
from feedsvc.render.feeds.model import Scope
from feedsvc.store import KEYED_KINDS, WHOLE_KINDS

FEEDS = "/feeds"
OPML = f"{FEEDS}.opml"                            # every scope's feeds, one outline each (web/feeds.py)
KIND_DIRECTORY = f"{FEEDS}/<scope_kind:kind>"     # every scope of one kind (web/feeds.py); a category's scheme
SITE = {"kind": "site", "key": ""}
METHODS = ("GET", "HEAD", "OPTIONS")


class FormatConverter(BaseConverter):
    """A feed's file name in the URL, its format's name in the view: rss.xml <-> "rss"."""
    regex = "|".join(re.escape(name) for name in BY_FILENAME)

    def to_python(self, value: str) -> str:
        return BY_FILENAME[value].name

    def to_url(self, value: str) -> str:
        return FORMATS[value].filename


class ScopeKindConverter(BaseConverter):
    """section | tag | author: the kinds of scope with a key."""
    regex = "|".join(re.escape(kind) for kind in KEYED_KINDS)


class WholeKindConverter(BaseConverter):
    """video: the kinds of scope without keys, each one scope."""
    regex = "|".join(re.escape(kind) for kind in WHOLE_KINDS)


CONVERTERS = {"feed_format": FormatConverter, "scope_kind": ScopeKindConverter, "whole_kind": WholeKindConverter}
WHOLE = {"key": ""}


@dataclass(frozen=True)
class Route:
    endpoint: str
    rule: str
    defaults: dict | None = None


FEED_ROUTES = (
    Route("site_feed", f"{FEEDS}/<feed_format:fmt>", SITE),
    Route("scope_feed", f"{FEEDS}/<scope_kind:kind>/<key>/<feed_format:fmt>"),
    Route("whole_kind_feed", f"{FEEDS}/<whole_kind:kind>/<feed_format:fmt>", WHOLE),
)
LISTING_ROUTES = (
    Route("home", "/", SITE),
    Route("scope_listing", "/<scope_kind:kind>/<key>"),
    Route("whole_kind_listing", "/<whole_kind:kind>", WHOLE),
)


def add_routes(blueprint, routes: tuple[Route, ...], view, *, prefix: str = "", endpoint: str | None = None,
               methods=None) -> None:
    """Register `routes` on a blueprint, each under `prefix` (and its own endpoint unless one is given)."""
    blueprint.record_once(lambda state: state.app.url_map.converters.update(CONVERTERS))
    for route in routes:
        options = {"defaults": route.defaults} if route.defaults else {}
        blueprint.add_url_rule(prefix + route.rule, endpoint or route.endpoint, view, methods=methods, **options)


# One endpoint per kind of document, so a build picks its rule by the values (site or keyed).
_MAP = Map([Rule(r.rule, endpoint="feed", defaults=r.defaults) for r in FEED_ROUTES]
           + [Rule(r.rule, endpoint="listing", defaults=r.defaults) for r in LISTING_ROUTES]
           + [Rule(KIND_DIRECTORY, endpoint="directory")],
           converters=CONVERTERS)
_URLS = _MAP.bind("")


@dataclass(frozen=True)
class FeedTarget:
    """What a feed URL names: a scope and a format."""
    kind: str
    key: str
    fmt: str

    @property
    def scope(self) -> Scope:
        return Scope(self.kind, self.key)


def _values(scope: Scope) -> dict:
    return {"kind": scope.kind, "key": scope.key if scope.kind != "site" else ""}


@lru_cache(maxsize=4096)  # building through the map costs ~20 µs; pages link to many feeds
def _built(kind: str, key: str, fmt: str | None) -> str:
    if fmt is None:
        return _URLS.build("listing", {"kind": kind, "key": key})
    return _URLS.build("feed", {"kind": kind, "key": key, "fmt": fmt})


def _builder(remember: bool):
    # A list of every scope (the OPML: 50,000 tags) builds each URL once: through the cache it would only
    # push out the URLs that pages and feeds ask for again and again, and leave the cache's entries scattered
    # over the memory the list's build used, which Python then cannot give back (bench row worker-rss-1m).
    return _built if remember else _built.__wrapped__


def feed_path(scope: Scope, fmt: str, *, remember: bool = True) -> str:
    """/feeds/rss.xml, /feeds/tag/<key>/atom.xml, ...: the path of one format of a scope's feed."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown feed format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return _builder(remember)(**_values(scope), fmt=fmt)


def feed_folder(scope: Scope) -> str:
    """/feeds or /feeds/<kind>/<key>: the path every feed of a scope lives under."""
    return feed_path(scope, next(iter(FORMATS))).rsplit("/", 1)[0]


def listing_path(scope: Scope, *, remember: bool = True) -> str:
    """/ for the site, /section/<key>, /tag/<key>, /author/<key>, /video: a scope's listing page."""
    return _builder(remember)(**_values(scope), fmt=None)


def kind_directory_path(kind: str) -> str:
    """/feeds/section, /feeds/tag, ...: the directory of every scope of a kind with keys."""
    return _URLS.build("directory", {"kind": kind})


@lru_cache(maxsize=4096)  # the fast path asks for every request; matching costs ~17 µs
def parse_feed_path(path: str) -> FeedTarget | None:
    """The feed a request path names, or None (not a feed URL, or one the app redirects)."""
    if not path.startswith(FEEDS + "/"):
        return None
    try:
        endpoint, values = _URLS.match(path, method="GET")
    except HTTPException:   # 404, or a 308 to the merged-slashes form
        return None
    return FeedTarget(values["kind"], values["key"], values["fmt"]) if endpoint == "feed" else None
