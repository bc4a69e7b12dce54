"""Feeds: RSS 2.0, Atom 1.0 and JSON Feed 1.1 for the whole site and each section, tag and author.

One code path for every caller (public feeds, partner feeds, the static mirror):
    render(fmt, scope, conn=..., site=..., limit=..., after=..., full_text=..., self_url=...) -> bytes
scope.py reads the store and builds a `Feed`; the formats (formats.py) write it, each with the
writer of its module (rss.py, atom.py, jsonfeed.py); urls.py holds every feed URL's rule.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Iterable

from sqlalchemy.engine import Connection

from feedsvc.ingest.records import Article
from feedsvc.render.feeds import fragments as composing
from feedsvc.render.feeds.formats import FORMATS
from feedsvc.render.feeds.fragments import Fragments
from feedsvc.render.feeds.model import Entry, Feed, Format, Scope, Site, Tombstone
from feedsvc.render.feeds.scope import (
    FeedNotFound,
    ScopeMoved,
    as_scope,
    feed_url,
    feed_urls,
    load_feed,
    resolve,
    state_of,
    title_of,
)
from feedsvc.render.skips import each_rendered, version_of
from feedsvc.store import Cursor, ScopeState, article_scopes

__all__ = ["FORMATS", "Feed", "FeedNotFound", "Format", "Fragments", "Scope", "ScopeMoved", "Site", "Cursor", "alternate_links",
           "discovery_scopes", "feed_url", "feed_urls", "load_feed", "render", "resolve", "scope_alternate_links",
           "scopes_of", "state_of", "write"]


def write(fmt: str, feed: Feed) -> bytes:
    """A built Feed in one format; an entry or tombstone the writer fails on is left out (render.skips)."""
    writer = FORMATS[fmt].write
    try:
        return writer(feed)
    except Exception:
        if not (feed.entries or feed.tombstones):
            raise
    return writer(_writable(writer, feed))


def _writable(writer: Callable[[Feed], bytes], feed: Feed) -> Feed:
    """`feed` without the entries and tombstones its writer fails on, found by writing each one alone.

    feedgen may refuse a value while an entry is added or while the document is serialised; either
    way that entry alone fails too. Runs only after a failure, so only then costs a write per entry.
    """
    bare = replace(feed, entries=[], tombstones=[])
    writer(bare)  # a feed that fails with no article in it is not an article's fault: that propagates

    def source(item: Entry | Tombstone) -> tuple[str, str]:
        article = feed.sources[item.id if isinstance(item, Entry) else item.ref]
        return article.id, version_of(article)

    def entry_alone(entry: Entry) -> Entry:
        writer(replace(bare, entries=[entry]))
        return entry

    def tombstone_alone(tombstone: Tombstone) -> Tombstone:
        writer(replace(bare, tombstones=[tombstone]))
        return tombstone

    entries = each_rendered("feed", feed.entries, entry_alone, key=source)
    tombstones = each_rendered("feed", feed.tombstones, tombstone_alone, key=source)
    return replace(feed, entries=entries, tombstones=tombstones)


def render(fmt: str, scope: Scope | str, *, conn: Connection, site: Site, limit: int | None = None,
           after: Cursor | str | None = None, full_text: bool | None = None, self_url: str | None = None,
           state: ScopeState | None = None, max_bytes: int | None = None, language: str | None = None,
           fragments: Fragments | None = None) -> bytes:
    """One page of a feed as bytes.

    `scope` is a Scope or a store scope id ("site", "section:<key>", …); an unknown one raises
    FeedNotFound. `after` is a Cursor or its token (ValueError when malformed); `limit` defaults to
    the site's and is not capped here (partner feeds allow more); `full_text` defaults to the
    site's setting; `self_url` is the feed's URL as its reader fetches it (default: the public URL);
    `state` saves the scope lookup when the caller already has it; `max_bytes` stops the page at
    whole articles holding that much text (partner pages; scope.entries_within); `language` makes it
    the single-language feed (scope.LANGUAGE_PARAMETER); with `fragments`, the page is composed
    from the entries' remembered bytes (fragments.py), the same bytes as written whole.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown feed format {fmt!r}; expected one of {', '.join(FORMATS)}")
    limit = site.default_limit if limit is None else limit
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if isinstance(after, str):
        after = Cursor.parse(after)
    scope = as_scope(scope)
    if state is None:
        state = state_of(conn, scope.id)
    if not scope.name:
        scope = Scope(scope.kind, scope.key, state.name)
    if fragments is not None and max_bytes is None:   # a byte budget needs every entry's text: written whole
        composed = composing.render(fmt, lambda feed: write(fmt, feed), conn, site, scope, state, limit=limit,
                                    after=after, full_text=site.full_text if full_text is None else full_text,
                                    self_url=self_url, language=language, fragments=fragments)
        if composed is not None:
            return composed
    feed = load_feed(conn, site, scope, state, fmt=fmt, limit=limit, after=after, full_text=full_text,
                     base_url=self_url, max_bytes=max_bytes, language=language)
    return write(fmt, feed)


@dataclass(frozen=True)
class AlternateLink:
    """A <link rel="alternate"> for feed autodiscovery in HTML pages."""
    href: str
    type: str
    title: str


def scopes_of(article: Article) -> list[Scope]:
    """The feeds an article appears in besides the site's: its section, tags and authors, with names."""
    return [Scope.from_id(scope_id, name) for scope_id, name in article_scopes(article).items() if scope_id != "site"]


def alternate_links(site: Site, scopes: Iterable[Scope | str] = ()) -> list[AlternateLink]:
    """Autodiscovery links: the site's feeds always, then each given scope's, in all three formats."""
    return [link for scope in discovery_scopes(scopes) for link in scope_alternate_links(site, scope)]


def discovery_scopes(scopes: Iterable[Scope | str] = ()) -> list[Scope]:
    """The scopes whose feeds a page announces: the site first, then each given one once, in order."""
    ordered = [Scope("site")] + [s for s in map(as_scope, scopes) if s.kind != "site"]
    found, seen = [], set()
    for scope in ordered:
        if scope.id not in seen:
            seen.add(scope.id)
            found.append(scope)
    return found


def scope_alternate_links(site: Site, scope: Scope) -> list[AlternateLink]:
    """One scope's autodiscovery links, a format each."""
    # A scope given by id alone ("tag:cricket") is titled by its key.
    title = title_of(scope if scope.name else Scope(scope.kind, scope.key, scope.key), site)
    return [AlternateLink(feed_url(scope, fmt, site.url), f.mimetype, f"{title} ({f.label})")
            for fmt, f in FORMATS.items()]
