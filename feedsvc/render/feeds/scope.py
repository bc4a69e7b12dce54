"""Feed scopes: which articles a feed URL names, the feed's metadata, and one page of it from the store.

This is the only part of the feeds package that queries the store; the writers take the `Feed`
built here.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection

from feedsvc import store
from feedsvc.render.feeds.entries import TAG_DATE, entry_from_article, entry_id
from feedsvc.render.feeds.formats import FORMATS
from feedsvc.render.feeds.model import SCOPE_WORDS, Entry, Feed, Scope, Site, Tombstone, valid_scope
from feedsvc.render.feeds.urls import feed_folder, feed_path, listing_path
from feedsvc.render.links import absolute
from feedsvc.render.skips import each_rendered, version_of
from feedsvc.store import Cursor, ScopeState

# A site that has stored nothing yet still has a (empty) site feed; it "changed" at this time.
NEVER = datetime(2000, 1, 1)


class FeedNotFound(LookupError):
    """No feed answers to this scope: an unknown section, tag or author key."""

    def __init__(self, scope_id: str):
        self.scope_id = scope_id
        super().__init__(f"no feed for {scope_id!r}")


class ScopeMoved(FeedNotFound):
    """The key was renamed (ingest/rename.py): its feeds and listing now live under `new_key` (a 301)."""

    def __init__(self, scope_id: str, new_key: str):
        super().__init__(scope_id)
        self.new_key = new_key


# The query parameter of a single-language feed: only the articles whose record `language` is this tag.
LANGUAGE_PARAMETER = "lang"


# ---- URLs -----------------------------------------------------------------------------------

def as_scope(scope: Scope | str) -> Scope:
    return scope if isinstance(scope, Scope) else Scope.from_id(scope)


def feed_url(scope: Scope | str, fmt: str, site_url: str, language: str | None = None, *, remember: bool = True) -> str:
    """The public URL of one format of a scope's feed (first page, default limit); with `language`,
    of its single-language feed (`?lang=`), which page_url keeps on every page's links. `remember`: see
    urls.feed_path (False for a list of every scope)."""
    url = site_url + feed_path(as_scope(scope), fmt, remember=remember)
    return f"{url}?{urlencode({LANGUAGE_PARAMETER: language})}" if language else url


def feed_urls(scope: Scope | str, site_url: str) -> dict[str, str]:
    """Format name -> public URL, for autodiscovery, OPML and WebSub topics."""
    return {fmt: feed_url(scope, fmt, site_url) for fmt in FORMATS}


def home_url(scope: Scope, site: Site, *, remember: bool = True) -> str:
    """The HTML page a feed belongs to: the home page, or the listing page of its section, tag or author."""
    return site.url + listing_path(scope, remember=remember)


def page_url(base_url: str, *, limit: int, default_limit: int, after: Cursor | None = None) -> str:
    """`base_url` with the paging parameters that differ from the defaults, in a fixed order."""
    parts = urlsplit(base_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ("limit", "after")]
    if limit != default_limit:
        query.append(("limit", str(limit)))
    if after is not None:
        query.append(("after", after.token()))
    return urlunsplit(parts._replace(query=urlencode(query, safe="~")))


def self_link(scope: Scope, fmt: str, site: Site, *, limit: int, after: Cursor | None = None,
              base_url: str | None = None, language: str | None = None) -> str:
    """The URL a page of a feed calls its own (rel="self"), in the document and in its Link header;
    `base_url` is the feed's URL as its reader fetches it (default: the public one, of `language`)."""
    return page_url(base_url or feed_url(scope, fmt, site.url, language), limit=limit,
                    default_limit=site.default_limit, after=after)


# ---- metadata -------------------------------------------------------------------------------

def title_of(scope: Scope, site: Site, language: str | None = None) -> str:
    """The feed's title, as a reader lists it: what tells this feed apart first, then the site.

    Readers cut titles in their lists (newsboat and Feedly at about 30-40 characters), so the
    scope's name leads and the site's name, the same on every feed, comes last; it is the scope's
    heading (SCOPE_WORDS), as on its listing page, so a tag reads "#name" and stays apart from a
    section or author of the same name. A single-language feed ends with its language tag.
    """
    title = site.name if scope.kind == "site" else f"{SCOPE_WORDS[scope.kind].heading.format(name=scope.name)} — {site.name}"
    return f"{title} ({language})" if language else title


def description_of(scope: Scope, site: Site) -> str:
    if scope.kind == "site":
        return site.description
    return f"{site.name}: " + SCOPE_WORDS[scope.kind].feed_description.format(name=scope.name)


def feed_id(scope: Scope, site: Site, language: str | None = None) -> str:
    """The feed's tag: URI (RFC 4151, whose specific part allows "?"); each single-language feed has its own."""
    base = f"tag:{site.authority},{TAG_DATE}:{feed_folder(scope).lstrip('/')}"
    return f"{base}?{LANGUAGE_PARAMETER}={language}" if language else base


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_time(naive_utc: datetime, site: Site) -> datetime:
    """A stored (naive UTC) time as the newsroom shows it, to the second."""
    return naive_utc.replace(tzinfo=timezone.utc, microsecond=0).astimezone(_zone(site.timezone))


# ---- the store ------------------------------------------------------------------------------

def state_of(conn: Connection, scope_id: str) -> ScopeState:
    """The change counter of a scope; raises ScopeMoved for a renamed key (a scope that took the key
    anew wins: it is read first), FeedNotFound for a key no article ever had."""
    state = store.scope_state_of(conn, scope_id)
    if state is not None:
        return state
    if scope_id == "site":
        return ScopeState("site", "", 0, NEVER)
    kind, _, key = scope_id.partition(":")
    new_key = store.scope_redirect(conn, kind, key)
    if new_key is not None:
        raise ScopeMoved(scope_id, new_key)
    raise FeedNotFound(scope_id)


def resolve(conn: Connection, kind: str, key: str = "") -> tuple[Scope, ScopeState]:
    """(scope with its display name, its state) for the kind and key of a feed URL."""
    if kind == "site":
        return Scope("site"), state_of(conn, "site")
    if not valid_scope(kind, key):
        raise FeedNotFound(store.scope_id(kind, key))
    state = state_of(conn, store.scope_id(kind, key))
    return Scope(kind, key, state.name), state


def entry_text_bytes(entry: Entry) -> int:
    """UTF-8 bytes of an entry's text (title, summary, full text): what makes a feed page big."""
    return sum(len(text.encode("utf-8")) for text in (entry.title, entry.summary, entry.content_html or ""))


def entries_within(articles: list, site: Site, full_text: bool,
                   max_bytes: int | None) -> tuple[list[Entry], list]:
    """(entries, the articles they went through) for the leading articles whose text fits `max_bytes`
    (all with None); at least one entry, so every page moves on. Built one by one: an article past
    the budget costs nothing, and one that cannot be rendered is left out (skips.each_rendered)
    while the page still moves past it."""
    entries: list[Entry] = []
    passed, total = [], 0
    for article in articles:
        built = each_rendered("feed", [article], lambda a: entry_from_article(a, site, full_text=full_text))
        if built and max_bytes is not None:
            total += entry_text_bytes(built[0])
            if total > max_bytes and entries:
                break
        entries.extend(built)
        passed.append(article)
    return entries, passed


def load_feed(conn: Connection, site: Site, scope: Scope, state: ScopeState, *, fmt: str, limit: int,
              after: Cursor | None = None, full_text: bool | None = None, base_url: str | None = None,
              max_bytes: int | None = None, language: str | None = None) -> Feed:
    """One page of a scope's feed: up to `limit` articles strictly older than `after`, and with
    `max_bytes`, only as many whole ones as fit that much text (entries_within); the next link
    goes on from the last one shown.

    The tombstone window is counted back from the scope's last change rather than from now, so the
    same state always gives the same bytes, in every process and in the static mirror. With
    `language`, only the articles in that language (tombstones stay unfiltered: a reader ignores
    one for an id it never had).
    """
    full_text = site.full_text if full_text is None else full_text
    # syndication.feeds: false stays out
    articles = store.newest(conn, scope.id, limit + 1, after, syndicated=True, language=language)
    more = len(articles) > limit
    articles = articles[:limit]
    entries, passed = entries_within(articles, site, full_text, max_bytes)
    more = more or len(passed) < len(articles)
    last = passed[-1] if more else None
    feed = feed_frame(conn, site, scope, state, fmt=fmt, limit=limit, after=after, base_url=base_url,
                      language=language, next_after=Cursor(store.utc(last.published), last.id) if last else None)
    feed.entries = entries
    feed.sources.update((entry_id(article.id, site), article) for article in passed)
    return feed


def feed_frame(conn: Connection, site: Site, scope: Scope, state: ScopeState, *, fmt: str, limit: int,
               after: Cursor | None, base_url: str | None, language: str | None,
               next_after: Cursor | None) -> Feed:
    """A page of a scope's feed with everything but its entries: titles, links (the next page's
    from `next_after`, the last article shown when more follow) and Atom's tombstones."""
    base_url = base_url or feed_url(scope, fmt, site.url, language)
    next_url = None
    if next_after is not None:
        next_url = page_url(base_url, limit=limit, default_limit=site.default_limit, after=next_after)
    withdrawn = []
    if after is None and fmt == "atom":   # only Atom writes tombstones (RFC 6721); the others skip the query
        since = state.modified_at - timedelta(days=site.tombstone_days)
        withdrawn = store.withdrawn_since(conn, scope.id, since)
    return Feed(
        site=site, scope=scope, id=feed_id(scope, site, language), title=title_of(scope, site, language),
        description=description_of(scope, site), home_url=home_url(scope, site),
        self_url=self_link(scope, fmt, site, limit=limit, after=after, base_url=base_url),
        first_url=page_url(base_url, limit=limit, default_limit=site.default_limit),
        next_url=next_url, updated=local_time(state.modified_at, site), only_language=language,
        tombstones=each_rendered("feed", withdrawn, lambda gone: Tombstone(
            entry_id(gone[0].id, site), local_time(gone[1], site), absolute(gone[0].url, site.url)),
            key=lambda gone: (gone[0].id, version_of(gone[0]))),
        sources={entry_id(article.id, site): article for article, _ in withdrawn},
    )
