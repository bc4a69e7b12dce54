"""Feeds composed from entry fragments: each entry's bytes rendered once per article version.

An entry's bytes depend only on the article's stored version, the format, the site (its URL and
id authority), whether the feed carries full text, and the render code. A `Fragments` cache keys
them so (with the code's output revision fixed per instance), and `compose` writes a page as

    head + fragment(entry 1) + … + fragment(entry n) + tail

where head and tail are the writer's own output for the page with no entries, split where its
entries go. Nothing is assembled by hand: every byte comes from the format's writer. A cold page is
written whole, as without fragments, and cut into its entries afterwards; a page whose entries are
all remembered reads only the articles' ids and versions from the store. Whatever cannot be cut
exactly (a writer that left an entry out, a boundary that is not where expected) is served as
written and not remembered, so a fragment can never change what a page says.

Which articles a page shows, and at which versions, is read once per scope state (`Stamps`): a
write's fan-out asks it for every format and profile of each scope it changed.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import replace
from typing import Callable, Hashable

from sqlalchemy.engine import Connection

from feedsvc import store
from feedsvc.render.feeds.entries import entry_from_article
from feedsvc.render.feeds.fragment_file import FragmentFile, file_key
from feedsvc.render.feeds.model import Entry, Feed, Scope, Site
from feedsvc.render.feeds.scope import feed_frame
from feedsvc.render.skips import each_rendered
from feedsvc.store import Cursor, ScopeState

# Where each format's entries start, and how they are joined: the writers' own bytes (feedgen
# writes <item> bare and <entry> with at most an xml:lang; orjson joins array items with ",").
ENTRY_START = {"rss": b"<item>", "atom": b"<entry", "json": b'{"id":'}
ENTRY_END = {"rss": b"</item>", "atom": b"</entry>"}
SEPARATOR = {"rss": b"", "atom": b"", "json": b","}
JSON_ITEMS, JSON_TAIL = b'"items":[', b"]}"
DEFAULT_MAX_BYTES = 16 * 1024 * 1024
# Scope states whose newest stamps are kept: a write's fan-out changes 14 scopes (site, section, 10 tags,
# 2 authors), and a few pages or single-language feeds of them may be asked meanwhile.
STAMPS_KEPT = 128


class Stamps:
    """The newest articles' (id, published, version) of scope states, read once for all their documents.

    Every format of a scope's feed and every profile's (render/profile_fragments.py) starts from the
    same rows: after a write, each read them again with a query of its own (a fifth of the CPU the
    fan-out's page builds took, profiled in process). The rows of one state cannot change: the scope's change
    counter (its version and time) moves with every write to an article of it, which is what keeps the
    rendered documents themselves (web/render_cache) too. A state's rows are kept for the largest count
    asked, and a smaller count is their head: the order (newest first, then by id) is total. A first
    page reads at least `first_pages` rows (the profiles' base reads more than a public page shows,
    profile_fragments.load_base), so whichever of them comes first reads for both.
    """

    def __init__(self, kept: int = STAMPS_KEPT):
        self.kept, self.first_pages = kept, 0
        self._items: OrderedDict[Hashable, tuple[int, list]] = OrderedDict()
        self._lock = threading.Lock()
        self.reads = 0

    def newest(self, conn: Connection, scope_id: str, state: ScopeState, count: int, after: Cursor | None = None,
               language: str | None = None) -> list:
        """store.newest_versions(conn, scope_id, count, after, syndicated=True, language=language) of `state`."""
        key = (scope_id, state.version, state.modified_at, after, language)
        with self._lock:
            held = self._items.get(key)
        if held is not None and (held[0] >= count or len(held[1]) < held[0]):   # enough, or every one there is
            return held[1][:count]
        wanted = max(count, self.first_pages) if after is None and language is None else count
        rows = store.newest_versions(conn, scope_id, wanted, after, syndicated=True, language=language)
        with self._lock:
            self.reads += 1
            if wanted >= self._items.get(key, (0, []))[0]:
                self._items[key] = (wanted, rows)
            self._items.move_to_end(key)
            while len(self._items) > self.kept:
                self._items.popitem(last=False)
        return rows[:count]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class Fragments:
    """A bounded LRU of entry fragments (by bytes held), safe to share between threads.

    `revision` names the render code (web/render_cache.output_revision) and is part of every key, so
    a cache that outlived a deploy could not hand out old bytes. Equal fragments under different keys
    are held once and charged once: most profiles write an entry byte for byte as the public
    full-text feed does (after a write's fan-out, 6,350 fragments held 2,198 distinct contents, 16 of
    44 MB), so the same budget holds about three times the entries a write's feeds need.

    With a `shared` file (fragment_file.FragmentFile), what this cache misses is looked up there, and
    what is put is kept there too, for the other worker processes of the machine.
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES, revision: str = "", shared: FragmentFile | None = None):
        self.max_bytes, self.revision, self.shared = max_bytes, revision, shared
        self._items: OrderedDict[Hashable, bytes] = OrderedDict()
        self._held: dict[bytes, list] = {}   # content -> [the one bytes object held, keys holding it]
        self._lock = threading.Lock()
        self.bytes = self.hits = self.misses = self.shared_hits = 0
        self.stamps = Stamps()   # version numbers are one store's own, as the fragments' keys

    def key(self, fmt: str, article_id: str, version: int, *options: Hashable) -> tuple:
        return (self.revision, fmt, article_id, version, *options)

    def get(self, key: Hashable) -> bytes | None:
        return self.get_all([key])[0]

    def get_all(self, keys: list) -> list[bytes | None]:
        """get(key) for each of `keys`, under one lock (a page asks for all its entries at once); those
        not held here looked up in the shared file, in one query."""
        with self._lock:
            found = [self._items.get(key) for key in keys]
            for key, fragment in zip(keys, found, strict=True):
                if fragment is not None:
                    self._items.move_to_end(key)
            held = sum(fragment is not None for fragment in found)
            self.hits += held
        missing = [n for n, fragment in enumerate(found) if fragment is None]
        if missing and self.shared is not None:
            for n, fragment in zip(missing, self.shared.get_all([file_key(keys[n]) for n in missing]), strict=True):
                if fragment is not None:
                    self._put(keys[n], fragment)
                    found[n] = fragment
            self.shared_hits += sum(found[n] is not None for n in missing)
        self.misses += sum(fragment is None for fragment in found)
        return found

    def put_all(self, items: list[tuple[Hashable, bytes]]) -> None:
        """put(key, fragment) for each pair; the shared file written once for them all."""
        for key, fragment in items:
            self._put(key, fragment)
        if self.shared is not None:
            self.shared.put_all([(file_key(key), fragment) for key, fragment in items])

    def put(self, key: Hashable, fragment: bytes) -> None:
        self.put_all([(key, fragment)])

    def _put(self, key: Hashable, fragment: bytes) -> None:
        if len(fragment) > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._release(old)
            shared = self._held.get(fragment)
            if shared is None:
                self._held[fragment] = [fragment, 1]
                self.bytes += len(fragment)
            else:
                shared[1] += 1
                fragment = shared[0]
            self._items[key] = fragment
            while self.bytes > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._release(dropped)

    def _release(self, fragment: bytes) -> None:
        shared = self._held[fragment]
        shared[1] -= 1
        if not shared[1]:
            del self._held[fragment]
            self.bytes -= len(fragment)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._held.clear()
            self.bytes = 0
        self.stamps.clear()

    def __len__(self) -> int:
        return len(self._items)


def frame(fmt: str, write: Callable[[Feed], bytes], feed: Feed) -> tuple[bytes, bytes]:
    """(head, tail): the page with no entries, split where its entries go, as its writer writes it."""
    if fmt == "json":
        empty = write(replace(feed, entries=[]))
        if not empty.endswith(b'"items":[]}'):   # jsonfeed.document writes "items" last
            raise ValueError("a JSON Feed whose items are not its last member")
        return empty[:-2], empty[-2:]
    # feedgen writes entries after the channel's (feed's) own elements and before what extensions
    # append (atom:link hub/first/next in RSS, tombstones in Atom): found around one probe entry.
    one = write(replace(feed, entries=[_probe(feed)], tombstones=feed.tombstones))
    start = one.find(ENTRY_START[fmt])
    end = one.find(ENTRY_END[fmt], start)
    if start < 0 or end < 0:
        raise ValueError(f"no place for entries found in the {fmt} page")
    return one[:start], one[end + len(ENTRY_END[fmt]):]


def frame_around_entries(fmt: str, body: bytes) -> tuple[bytes, bytes]:
    """(head, tail) of a written page with entries: before the first entry, after the last (entry
    text is escaped, so their tags, and a JSON member name, occur nowhere else); saves writing a
    probe page, or the empty JSON Feed frame() writes."""
    if fmt == "json":
        start = body.find(JSON_ITEMS)   # jsonfeed.document writes "items" last, after members of plain text
        if start < 0 or not body.endswith(JSON_TAIL):
            return body, b""
        return body[:start + len(JSON_ITEMS)], JSON_TAIL
    start, end = body.find(ENTRY_START[fmt]), body.rfind(ENTRY_END[fmt])
    if start < 0 or end < 0:
        return body, b""   # no entry written: cut() finds none and nothing is remembered
    return body[:start], body[end + len(ENTRY_END[fmt]):]


def _probe(feed: Feed) -> Entry:
    """An entry of constant, plain text: where it lands is where entries go."""
    return Entry(id="tag:probe.invalid,2025:probe", url="https://probe.invalid/", title="probe", summary="probe",
                 content_html=None, published=feed.updated, updated=feed.updated, authors=[], categories=[])


def cut(fmt: str, body: bytes, head: bytes, tail: bytes, count: int) -> list[bytes] | None:
    """The `count` entries of a page written whole, each as its bytes; None when the page is not
    head + entries + tail with exactly `count` entries (then nothing is remembered)."""
    if not (body.startswith(head) and body.endswith(tail)) or len(body) < len(head) + len(tail):
        return None
    low, high = len(head), len(body) - len(tail)
    if count == 0:
        return [] if low == high else None
    start, separator = ENTRY_START[fmt], SEPARATOR[fmt]
    # Entries are found in `body` itself and sliced out of it once each: a cold page of full text is
    # copied once here, not three times over through its middle and per-entry concatenations.
    # An item's own text cannot hold the bytes ,{"id": unescaped (orjson escapes every quote), nor an
    # XML entry's an entry start ("<" is "&lt;"): each occurs only where an entry starts.
    mark = separator + start
    starts = [low]
    at = body.find(mark, low + 1, high)
    while at >= 0:
        starts.append(at + len(separator))
        at = body.find(mark, at + 1, high)
    if len(starts) != count or not body.startswith(start, low):
        return None
    ends = [at - len(separator) for at in starts[1:]] + [high]
    return [body[a:b] for a, b in zip(starts, ends, strict=True)]


def compose(fmt: str, head: bytes, fragments: list[bytes], tail: bytes) -> bytes:
    # One join, one copy of the page: `head + middle + tail` copied a page of full text three times,
    # and a large fresh allocation each time (a 360 KB page: ~1.4 ms against ~35 µs, measured).
    separator = SEPARATOR[fmt]
    return b"".join([head, separator.join(fragments), tail] if separator else [head, *fragments, tail])


def render(fmt: str, write: Callable[[Feed], bytes], conn: Connection, site: Site, scope: Scope,
           state: ScopeState, *, limit: int, after: Cursor | None, full_text: bool, self_url: str | None,
           language: str | None, fragments: Fragments) -> bytes | None:
    """One page composed from the fragments of its entries, those missing written (together, in one
    document) and remembered; None when it cannot be composed exactly (the caller writes it whole)."""
    stamps = fragments.stamps.newest(conn, scope.id, state, limit + 1, after, language)
    page = stamps[:limit]
    digest = site.digest()
    keys = {row.id: fragments.key(fmt, row.id, row.version, full_text, digest) for row in page}
    held = dict(zip(keys, fragments.get_all(list(keys.values())), strict=True))
    missing = [article_id for article_id, fragment in held.items() if fragment is None]
    loaded = store.articles_at_versions(conn, missing) if missing else {}
    if len(loaded) != len(missing):
        return None   # changed since the page was read: written whole
    last = page[-1] if len(stamps) > limit else None
    feed = feed_frame(conn, site, scope, state, fmt=fmt, limit=limit, after=after, base_url=self_url,
                      language=language, next_after=Cursor(last.published, last.id) if last else None)
    built: dict[str, Entry] = {}
    stamped = {row.id: row.version for row in page}
    for article_id in missing:
        version, article = loaded[article_id]
        if version != stamped[article_id]:   # written since the page was read: kept under what it is now
            keys[article_id] = fragments.key(fmt, article_id, version, full_text, digest)
        built.update((article_id, entry) for entry in each_rendered(
            "feed", [article], lambda a: entry_from_article(a, site, full_text=full_text)))
    if not built:
        head, tail = frame(fmt, write, feed)
    else:
        entries = list(built.values())
        body = write(replace(feed, entries=entries,
                             sources={**feed.sources, **{e.id: loaded[i][1] for i, e in built.items()}}))
        head, tail = frame_around_entries(fmt, body)
        pieces = cut(fmt, body, head, tail, len(entries))
        if pieces is None:   # nothing remembered; a page written here whole is still the page
            return body if len(built) == len(page) else None
        fragments.put_all([(keys[article_id], piece) for article_id, piece in zip(built, pieces, strict=True)])
        if len(missing) == len(page):
            return body   # nothing was held: the page is what was written (cut checked it is head + pieces + tail)
        held.update(zip(built, pieces, strict=True))
    return compose(fmt, head, [held[row.id] for row in page if held[row.id] is not None], tail)
