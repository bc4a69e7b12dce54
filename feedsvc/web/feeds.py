"""Feed URLs: /feeds/{rss.xml,atom.xml,feed.json}, per section/tag/author, /feeds.opml and /feeds.

Views only choose the document (a documents.Document); feedsvc.render.feeds builds it, the render
cache keeps it, feedsvc.web.http answers (304, encodings, cache headers). The feed routes are the
rules of feedsvc/render/feeds/urls.py. A person's browser opening a feed URL (navigation.py) gets
its HTML view (FeedView) instead of the feed; every other client gets the feed's bytes.
"""
from __future__ import annotations

import hashlib
import re
from collections import Counter, OrderedDict
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Iterable

from flask import Blueprint, abort, current_app, render_template, request, url_for
from markupsafe import Markup

from feedsvc import store
from feedsvc.render import collation, feeds
from feedsvc.render.feeds import opml, urls
from feedsvc.render.feeds.formats import FORMATS
from feedsvc.render.feeds.model import SCOPE_KINDS, SCOPE_WORDS, SITE_GROUP, Scope
from feedsvc.render.feeds.scope import LANGUAGE_PARAMETER, feed_url, self_link
from feedsvc.web import db, http, navigation
from feedsvc.web.documents import HTML_TYPE, Document, counters, fragments, site
from feedsvc.web.errors import BadParameter

bp = Blueprint("feeds", __name__)

CURSOR_TOKEN = re.compile(r"^\d{8}T\d{12}~[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
OPML_TYPE = "text/x-opml; charset=utf-8"
# A record's language tag (feedsvc/schemas/article.json), as the single-language feeds take it.
LANGUAGE_TAG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_LINK_TAGS = "feedsvc.feed_link_tags"
LINK_TAGS_KEPT = 4096   # scopes whose autodiscovery links are kept rendered (a few hundred bytes each)


@bp.app_context_processor
def _feed_links():
    # base.html emits <link rel="alternate"> for the site's feeds and the page's `feed_scopes`.
    return {"feed_link_tags": feed_link_tags}


def feed_link_tags(scopes=()) -> Markup:
    """The autodiscovery <link>s of the site's feeds and of `scopes`' (templates/_feed_links.html),
    each scope's rendered once and kept (at most LINK_TAGS_KEPT scopes): every canonical page of a
    section announces the site's and the section's feeds, and these links were a tenth of the page."""
    held: OrderedDict = current_app.extensions.setdefault(_LINK_TAGS, OrderedDict())
    parts = []
    for scope in feeds.discovery_scopes(scopes):
        tags = held.get(scope)
        if tags is None:
            links = current_app.jinja_env.get_template("_feed_links.html").module
            macro = links.alternate_links  # type: ignore[attr-defined]  # a template's macros are set when it runs
            tags = held[scope] = macro(feeds.scope_alternate_links(site(), scope))
            while len(held) > LINK_TAGS_KEPT:
                held.popitem(last=False)
        else:
            held.move_to_end(scope)
        parts.append(tags)
    return Markup("".join(parts))


def page_params(max_limit: int | None = None) -> tuple[int, feeds.Cursor | None]:
    """(limit, after) of a feed request; BadParameter names the parameter and what it accepts."""
    limit_cap = max_limit or site().max_limit
    raw = request.args.get("limit")
    if raw is None:
        limit = site().default_limit
    elif raw.isascii() and raw.isdigit() and len(raw) <= 6 and 1 <= int(raw) <= limit_cap:
        limit = int(raw)
    else:
        raise BadParameter(f"limit must be a whole number from 1 to {limit_cap}; got {raw[:40]!r}")
    raw = request.args.get("after")
    if raw is None:
        return limit, None
    if not CURSOR_TOKEN.match(raw):
        raise BadParameter("after must be a page cursor taken from a feed's next link "
                         "(like 20250723T100000000000~<article id>)")
    try:
        return limit, feeds.Cursor.parse(raw)
    except ValueError:
        raise BadParameter(f"after names an impossible time: {raw[:40]!r}") from None


def language_param() -> str | None:
    """The language of a single-language feed (`?lang=`), or None for every language."""
    raw = request.args.get(LANGUAGE_PARAMETER)
    if raw is not None and not LANGUAGE_TAG.match(raw):
        raise BadParameter(f"{LANGUAGE_PARAMETER} must be a language tag as records give it (like hi or en); "
                           f"got {raw[:20]!r}")
    return raw


@dataclass(frozen=True)
class Edition:
    """How an edition of the feeds differs from the public one (partner feeds: full text, their own links).

    `name` tells apart documents that differ for the same scope and page; `full_text` defaults to the
    site's setting; `self_url` is the base of the self and next links (default: the public URL);
    `cors` defaults to on for the JSON feed; `max_bytes` ends a page at whole articles holding that
    much text (feeds.render).
    """
    name: str = ""
    full_text: bool | None = None
    self_url: str | None = None
    cors: bool | None = None
    max_bytes: int | None = None


PUBLIC = Edition()


class FeedPage(Document):
    """One page of one format of one scope's feed, in an edition."""
    cache_key: tuple

    def __init__(self, fmt: str, kind: str, key: str, *, limit: int, after: feeds.Cursor | None,
                 edition: Edition = PUBLIC, language: str | None = None):
        self.fmt, self.kind, self.key, self.limit, self.after, self.edition = fmt, kind, key, limit, after, edition
        self.language = language
        self.content_type = FORMATS[fmt].content_type
        self.cors = fmt == "json" if edition.cors is None else edition.cors
        # The key of a feed of every language is as it always was: its ETag stays the same.
        self.cache_key = ("feed", fmt, kind, key, limit, after.token() if after else None, edition.full_text,
                          edition.self_url, *((edition.name, edition.max_bytes) if edition.name else ()),
                          *((LANGUAGE_PARAMETER, language) if language else ()))

    def load_state(self):
        self.scope, self.state = counters().get(("scope", self.kind, self.key),
                                                lambda: feeds.resolve(db.connection(), self.kind, self.key))
        return (self.state.version, self.state.modified_at), self.state.modified_at if self.state.version else None

    def build(self) -> bytes:
        return feeds.render(self.fmt, self.scope, conn=db.connection(), site=site(), limit=self.limit,
                            after=self.after, full_text=self.edition.full_text, self_url=self.edition.self_url,
                            state=self.state, max_bytes=self.edition.max_bytes, language=self.language,
                            fragments=fragments())

    def response(self):
        response = super().response()
        if response.status_code in (200, 304):   # a feed answer, fresh or not (not a preflight)
            self_url = self_link(Scope(self.kind, self.key), self.fmt, site(), limit=self.limit, after=self.after,
                                 base_url=self.edition.self_url, language=self.language)
            response.headers.extend(http.websub_links(site().hubs, self_url))
        return response


class FeedView(FeedPage):
    """The HTML view of a public feed page, for a person who opened its URL in a browser: the feed's
    title, how to subscribe, its URL to copy, its other formats and its newest items."""

    def __init__(self, fmt: str, kind: str, key: str, *, limit: int, after: feeds.Cursor | None,
                 language: str | None = None):
        super().__init__(fmt, kind, key, limit=limit, after=after, language=language)
        self.content_type, self.cors = HTML_TYPE, False
        self.cache_key = ("feed-view", *self.cache_key[1:])

    def build(self) -> bytes:
        the_site = site()
        feed = feeds.load_feed(db.connection(), the_site, self.scope, self.state, fmt=self.fmt, limit=self.limit,
                               after=self.after, language=self.language)
        other_formats = {name: feed_url(self.scope, name, the_site.url, self.language) for name in FORMATS}
        return render_template("feeds/feed_view.html", site=the_site, feed=feed, fmt=FORMATS[self.fmt],
                               formats=FORMATS, format_urls=other_formats, feed_scopes=[self.scope],
                               lang=the_site.language).encode("utf-8")

    def response(self):
        return Document.response(self)   # a page, not a feed: no WebSub links


def feed_page(fmt: str, kind: str, key: str, *, limit: int | None = None, after: feeds.Cursor | None = None,
              language: str | None = None, browser: bool = False) -> FeedPage:
    """The document a public feed URL names (by default its first page, asked for by a program: what the
    WSGI fast path answers without this view)."""
    document = FeedView if browser else FeedPage
    return document(fmt, kind, key, limit=limit or site().default_limit, after=after, language=language)


def public_feed(fmt: str, kind: str, key: str):
    limit, after = page_params()
    language = language_param()
    response = feed_page(fmt, kind, key, limit=limit, after=after, language=language,
                         browser=navigation.is_navigation(request.headers)).response()
    response.vary.update(navigation.VARY)
    return response


urls.add_routes(bp, urls.FEED_ROUTES, public_feed, methods=urls.METHODS)


# ---- directory and OPML: documents about every scope -------------------------------------------

@dataclass(frozen=True)
class ScopesStamp:
    """What a request for a document about every scope needs of them all: their digest (which changes
    whenever any scope's name or counter does), the newest change, and how many scopes of each kind."""
    digest: str
    last: datetime | None
    counts: dict[str, int]


def scopes_stamp(states: Iterable[store.ScopeState]) -> ScopesStamp:
    """The stamp of `states`, taken one at a time. The digest is blake2b over the repr of the list of
    their (scope, name, version), as it was when the list itself was held: the same ETags as before."""
    digest = hashlib.blake2b(digest_size=12)
    digest.update(b"[")
    last, counts = None, Counter()
    for n, state in enumerate(states):
        digest.update(((", " if n else "") + repr((state.scope, state.name, state.version))).encode("utf-8"))
        last = state.modified_at if last is None else max(last, state.modified_at)
        kind, colon, _ = state.scope.partition(":")
        if colon:
            counts[kind] += 1
    digest.update(b"]")
    return ScopesStamp(digest.hexdigest(), last, dict(counts))


class AllScopes(Document):
    """A document about every known scope; it changes whenever any scope's name or counter does."""

    def load_state(self):
        # Only the stamp is held between requests: the states of 50,000 tags are ~20 MiB in each worker
        # (bench row worker-rss-1m), read again on the rare build instead.
        self.stamp = counters().get(("all",), lambda: scopes_stamp(store.each_scope(db.connection())))
        return (0, self.stamp.digest), self.stamp.last

    @cached_property
    def scopes(self) -> list[store.ScopeState]:
        """Every scope's state, read when the document is built. A write between load_state and this read
        leaves the document newer than its validator, never older; the next request's stamp renders it again."""
        return store.all_scopes(db.connection())

    @property
    def groups(self) -> dict[str, list[Scope]]:
        return scope_groups(self.scopes, site().language)


def scope_groups(states, language: str) -> dict[str, list[Scope]]:
    """Known scopes by kind (section, tag, author), each in its names' order in `language`; the site is implied."""
    groups = {kind: [] for kind in SCOPE_KINDS}
    for state in states:
        if state.scope != "site":
            scope = Scope.from_id(state.scope, state.name)
            groups[scope.kind].append(scope)
    return {kind: collation.by_name(scopes, language) for kind, scopes in groups.items()}


class OpmlDocument(AllScopes):
    content_type = OPML_TYPE
    cors = True

    def __init__(self, fmt: str):
        self.fmt = fmt
        self.cache_key = ("opml", fmt)

    def build(self) -> bytes:
        return opml.write(site(), self.groups, fmt=self.fmt, states=self.scopes,
                          languages=store.live_languages(db.connection()))


@bp.route(urls.OPML, methods=["GET", "HEAD", "OPTIONS"])
def opml_document():
    fmt = request.args.get("format", "rss")
    if fmt not in FORMATS:
        raise BadParameter(f"format must be one of {', '.join(FORMATS)}; got {fmt[:20]!r}")
    return OpmlDocument(fmt).response()


# /feeds lists every section, and of tags and authors (thousands over the years) only the most recently
# active, each kind with a link to its full list, /feeds/<kind>, in pages; /feeds.opml keeps them all.
DIRECTORY_RECENT = 100
DIRECTORY_PAGE = 200
LISTED_IN_FULL = ("section",)


class Directory(AllScopes):
    """/feeds: the site, every section, the most recently active tags and authors."""
    cache_key = ("directory",)

    def build(self) -> bytes:
        # Read kind by kind, not every scope: of 50,000 tags it shows 100 (all of them read and sorted by
        # name took 0.5 s of CPU at 28,000 tags, and ~20 MiB of a worker's memory for the time).
        conn, language, groups, more = db.connection(), site().language, {}, {}
        for kind in SCOPE_KINDS:
            count = store.count_scopes_of_kind(conn, kind)
            if kind in LISTED_IN_FULL or count <= DIRECTORY_RECENT:
                groups[kind] = collation.by_name(scope_list(store.scopes_of_kind(conn, kind)), language)
            else:
                groups[kind] = scope_list(store.recently_changed_scopes(conn, kind, DIRECTORY_RECENT))
                more[kind] = (count, url_for(".kind_directory", kind=kind))
        return directory_html(groups, more=more)


def scope_list(states) -> list[Scope]:
    return [Scope.from_id(state.scope, state.name) for state in states]


class KindDirectory(AllScopes):
    """/feeds/<kind>?page=N: every scope of one kind, by name, DIRECTORY_PAGE to a page."""

    def __init__(self, kind: str, page: int):
        self.kind, self.page = kind, page
        self.cache_key = ("directory", kind, page)

    def load_state(self):
        stamp = super().load_state()
        # Counted, not sorted: every request (a 304 too) decides its page count here, and putting every
        # scope of the kind in Hindi order took 70 ms of CPU for 20,000 tags; build() sorts, once per change.
        self.pages = max(1, -(-self.stamp.counts.get(self.kind, 0) // DIRECTORY_PAGE))
        if self.page > self.pages:
            abort(404)
        return stamp

    def build(self) -> bytes:
        start = (self.page - 1) * DIRECTORY_PAGE
        page_url = lambda n: url_for(".kind_directory", kind=self.kind, page=n if n > 1 else None)  # noqa: E731
        pager = {"page": self.page, "pages": self.pages,
                 "previous": page_url(self.page - 1) if self.page > 1 else None,
                 "next": page_url(self.page + 1) if self.page < self.pages else None}
        scopes = collation.by_name(scope_list(store.scopes_of_kind(db.connection(), self.kind)), site().language)
        return directory_html({self.kind: scopes[start:start + DIRECTORY_PAGE]}, pager=pager)


def directory_html(groups: dict[str, list[Scope]], *, more=None, pager=None) -> bytes:
    the_site = site()
    return render_template("feeds/directory.html", site=the_site, groups=groups, more=more or {}, pager=pager,
                           formats=FORMATS, site_scope=Scope("site", "", the_site.name), site_group=SITE_GROUP,
                           scope_words=SCOPE_WORDS, feed_urls=lambda scope: feeds.feed_urls(scope, the_site.url),
                           opml_url=the_site.url + urls.OPML).encode("utf-8")


@bp.route(urls.FEEDS, methods=["GET", "HEAD"])
def directory():
    return Directory().response()


@bp.route(urls.KIND_DIRECTORY, methods=["GET", "HEAD"])
def kind_directory(kind: str):
    raw = request.args.get("page", "1")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6 and int(raw) >= 1):
        raise BadParameter(f"page must be a whole number from 1; got {raw[:20]!r}")
    return KindDirectory(kind, int(raw)).response()
