"""Profile feeds composed from entry fragments: each entry written once per article version and profile.

A profile's entry depends only on the article's stored version, the profile (its rules: title,
summary, HTML allow-list, image rule, link decoration, namespaces), the site and the format; a
deletion marker only on the withdrawal it tells of. So a profile page is, as a public one
(feeds/fragments.py),

    head + fragment(entry 1) + … + fragment(entry n) + tail

with head and tail the writer's own output for the page without its entries: the same bytes as
profiles.write builds whole, byte budget included (whole items: a page's size is its frame's and
its fragments' sizes summed, so the largest leading count that fits is found without writing).

What every profile and format of one scope state starts from is read once (`load_base`): the
channel, the withdrawals and the newest articles' ids and versions. An article is read and shaped
only when a profile has not shaped its version yet (`_by_version`, kept beside each fragment
cache), so after one write each variant reads, shapes and writes only the written article. The rules that depend on the time (no
future items, maximum age) are checked at every render, as in profiles.shape.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from weakref import WeakKeyDictionary

from sqlalchemy.engine import Connection

from feedsvc import store
from feedsvc.profiles import Profile
from feedsvc.render import feeds
from feedsvc.render.feeds import fragments as composing
from feedsvc.render.feeds.entries import entry_from_article
from feedsvc.render.feeds.fragments import Fragments
from feedsvc.render.feeds.model import Entry, Feed, Scope, Site
from feedsvc.render.feeds.scope import feed_frame
from feedsvc.render.profiles import (
    Candidate,
    Checked,
    base_limit,
    checked,
    declared,
    leave_out,
    page_of,
    shaped_candidate,
    shaping_context,
    withdrawn_days_needed,
)
from feedsvc.render.skips import each_rendered
from feedsvc.store import ScopeState

LEFT_OUT = "left out"   # kept for a version no profile page shows: unrenderable, or held back by the desk


@dataclass
class Base:
    """One scope state as every profile starts from it: the channel with the withdrawals the profile
    keeping them longest wants (Atom's frame, no entries), the newest articles' stamps (id,
    published, version) and their (id, version) keys, and the articles read so far (id -> (version,
    article, entry or None))."""
    frame: Feed
    stamps: list
    keys: list = field(default_factory=list)
    read: dict = field(default_factory=dict)
    chosen: dict = field(default_factory=dict)   # shaping context -> candidates(): the same for every format
    # shaping context -> _Page, while its check holds: a page differs between formats only in its self link.
    pages: dict = field(default_factory=dict)


def load_base(conn: Connection, site: Site, scope: Scope, state: ScopeState, profiles,
              fragments: Fragments | None = None) -> Base:
    """What profiles.load_base_feed reads, without reading the articles; with `fragments`, the newest
    stamps are those its public pages of the same state read (Fragments.stamps)."""
    limit = base_limit(profiles, site.default_limit)
    wide = replace(site, tombstone_days=withdrawn_days_needed(profiles, site))
    frame = feed_frame(conn, wide, scope, state, fmt="atom", limit=limit, after=None, base_url=None, language=None,
                       next_after=None)
    if fragments is not None:
        fragments.stamps.first_pages = max(fragments.stamps.first_pages, limit)
        stamps = fragments.stamps.newest(conn, scope.id, state, limit)
    else:
        stamps = store.newest_versions(conn, scope.id, limit, syndicated=True)
    return Base(replace(frame, site=site), stamps, [(row.id, row.version) for row in stamps])


class _Recent:
    """Bounded, thread-safe maps, one per shaping context: (article id, version) -> Candidate or LEFT_OUT,
    the oldest put first out (a feed shows the newest versions: those put last; one pushed out while
    still shown is shaped again, and a read costs no reordering)."""

    def __init__(self, size: int):
        self.size, self.contexts, self.lock = size, {}, threading.Lock()

    def get_all(self, context: tuple, keys: list) -> list:
        with self.lock:
            kept = self.contexts.setdefault(context, OrderedDict())
        return list(map(kept.get, keys))   # a dict read needs no lock

    def put(self, context: tuple, key: tuple, value) -> None:
        with self.lock:
            kept = self.contexts.setdefault(context, OrderedDict())
            kept[key] = value
            kept.move_to_end(key)
            while len(kept) > self.size:
                kept.popitem(last=False)


# Kept beside each fragment cache, as its fragments are: a cache serves one store, and version numbers
# are a store's own (tests and the bench run several stores in one process). Per profile (context),
# a few hundred recent articles: the newest of every scope's base (the shaped entries are shared with
# profiles._shaped).
_by_version: WeakKeyDictionary[Fragments, _Recent] = WeakKeyDictionary()
_by_version_lock = threading.Lock()


def _shaped_versions(fragments: Fragments) -> _Recent:
    with _by_version_lock:
        if fragments not in _by_version:
            _by_version[fragments] = _Recent(1024)
        return _by_version[fragments]


def _read(conn: Connection, base: Base, rows: list) -> bool:
    """Read the articles of `rows` not read yet into `base`; False when one changed since its stamp."""
    unread = [row.id for row in rows if row.id not in base.read]
    if unread:
        loaded = store.articles_at_versions(conn, unread)
        for article_id in unread:
            version, article = loaded.get(article_id, (None, None))
            if article is None:
                return False
            built = each_rendered("feed", [article],
                                  lambda a: entry_from_article(a, base.frame.site, full_text=True))
            base.read[article_id] = (version, article, built[0] if built else None)
    return all(base.read[row.id][0] == row.version for row in rows)


def candidates(profile: Profile, base: Base, conn: Connection, context: tuple,
               kept: _Recent) -> list[Candidate] | None:
    """The profile's candidates newest first, as profiles.shape takes them from the whole base; None
    when an article changed under the stamps read."""
    if context not in base.chosen:
        made = _candidates(profile, base, conn, context, kept)
        if made is None:
            return None
        base.chosen[context] = made
    return base.chosen[context]


def _candidates(profile: Profile, base: Base, conn: Connection, context: tuple,
                kept: _Recent) -> list[Candidate] | None:
    found = kept.get_all(context, base.keys)
    missing = [n for n, candidate in enumerate(found) if candidate is None]
    if missing and not _read(conn, base, [base.stamps[n] for n in missing]):
        return None
    for n in missing:
        _, article, entry = base.read[base.keys[n][0]]
        made = shaped_candidate(profile, context, entry, article) if entry is not None else None
        found[n] = LEFT_OUT if made is None else made
        kept.put(context, base.keys[n], found[n])
    return [candidate for candidate in found if candidate is not LEFT_OUT]


def marker_key(fragments: Fragments, fmt: str, entry: Entry, context: str) -> tuple:
    """A deletion marker's key: what the marker says (an article's entry is keyed by its content)."""
    return fragments.key(fmt, entry.id, 0, context, "marker", entry.url, entry.published, entry.updated,
                         entry.language)


def live_stem(candidate: Candidate, writers: tuple) -> tuple:
    """A live entry's key but for the format: its id, its content's digest and what the page's
    extensions write into it. Keyed by what it says rather than by profile, so profiles whose shaped
    entries are equal (most, for most articles: a rule that changes nothing leaves the entry as it
    was) write its bytes once between them: after a write, 4 of 11 variants of the site feed found
    the new entry written by another."""
    shaped = candidate.shaped
    entry = shaped.entry
    return entry.id, 0, "shaped", shaped.digest, tuple(part for writer in writers
                                                       if (part := writer.live_entry_part(entry)) is not None)


@dataclass
class _Page:
    """A profile's page of one scope state, as every format of it starts from it (Base.pages)."""
    split: Checked
    page: Feed           # without its URLs
    distinct: bool       # whether its entry ids are distinct
    markers: int         # how many deletion markers lead it
    stems: list          # live_stem of each live entry after them


def _page(profile: Profile, base: Base, chosen: list[Candidate], now: datetime) -> _Page:
    split = checked(profile, chosen, now)
    # Announced once per scope state and profile: the formats share the check (about 15 % of a
    # write's profile renders went to announcing the same items three times).
    leave_out(profile, split.left)
    page = page_of(profile, base.frame, split, self_url="")
    entries = page.entries
    # page_of puts the markers first, then the leading entries of split (the same objects).
    first = split.entries[0] if split.entries else None
    markers = next((n for n, entry in enumerate(entries) if entry is first), len(entries))
    stems = [live_stem(candidate, page.extensions) for candidate in split.candidates[:len(entries) - markers]]
    return _Page(split, page, len({entry.id for entry in entries}) == len(entries), markers, stems)


def render(profile: Profile, fmt: str, base: Base, *, conn: Connection, self_url: str, now: datetime,
           fragments: Fragments) -> bytes | None:
    """The profile's page in `fmt`, composed; None when it cannot be composed exactly (the caller
    then builds it whole: profiles.shape and profiles.write)."""
    context = shaping_context(profile, base.frame.site)
    chosen = candidates(profile, base, conn, context, _shaped_versions(fragments))
    if chosen is None:
        return None
    made = base.pages.get(context)
    if made is None or not made.split.holds_at(now):
        made = base.pages[context] = _page(profile, base, chosen, now)
    if not made.distinct:
        return None   # a marker beside a live entry of the same id: their keys would not tell them apart
    page = replace(made.page, self_url=self_url, first_url=self_url)   # as page_of(..., self_url=self_url)
    # The shaping context as one string ("profile" and a digest cannot be a public entry's options).
    named = "profile " + " ".join(context)
    key = fragments.key
    keys = [marker_key(fragments, fmt, entry, named) for entry in page.entries[:made.markers]]
    keys += [key(fmt, *stem) for stem in made.stems]
    held = fragments.get_all(keys)

    def write(feed: Feed) -> bytes:
        return feeds.write(fmt, feed)

    frames: dict = {}
    tails, tail_key = _remembered_tails(fragments), (fmt, named, self_url)

    def frame_of(feed: Feed) -> tuple[bytes, bytes]:
        """(head, tail) of a page declaring `feed.extensions`' namespaces."""
        if feed.extensions not in frames:
            frames[feed.extensions] = _frame(fmt, write, feed, tails, tail_key)
        return frames[feed.extensions]

    missing = [n for n, piece in enumerate(held) if piece is None]
    if missing:
        # Written together in one document that declares the page's namespaces, then cut.
        body = write(replace(page, entries=[page.entries[n] for n in missing]))
        if fmt != "json":
            frames[page.extensions] = composing.frame_around_entries(fmt, body)
            if frames[page.extensions][1]:
                tails.remember(tail_key, page, frames[page.extensions][1])
        head, tail = frame_of(page)
        pieces = composing.cut(fmt, body, head, tail, len(missing))
        if pieces is None:
            return None
        fragments.put_all([(keys[n], piece) for n, piece in zip(missing, pieces, strict=True)])
        for n, piece in zip(missing, pieces, strict=True):
            held[n] = piece
    complete = [piece for piece in held if piece is not None]   # every one, by now
    head, tail = frame_of(page)
    whole = composing.compose(fmt, head, complete, tail)
    budget = profile.value("bytes", "max")
    if not budget or len(whole) <= budget or not complete:
        return whole
    return _within(fmt, page, complete, budget, frame_of)


# ---- frames ----------------------------------------------------------------------------------

class _Tails:
    """Each page's tail (what its writer puts after its entries) as last written, by format, profile
    and page URL, with the page's channel but for its time: bounded, thread-safe, the oldest put first out.

    A page whose entries are all remembered needs its head and tail. composing.frame writes it with
    a probe entry to find where entries go; a page like one seen before but for its time (the scope's
    last change, which its head carries) is written with no entry and split before that tail, once
    the empty page is seen to end with it: the writer's output is a function of the page, so the
    same channel puts the same elements after its entries. About 40 % cheaper than the probe (an RSS
    page: 69 against 122 µs), and after a write most profile pages find the new entry written by
    another profile (live_stem)."""

    def __init__(self, size: int):
        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()

    @staticmethod
    def channel(feed: Feed) -> Feed:
        return replace(feed, entries=[], updated=_NO_TIME)

    def tail(self, key: tuple, feed: Feed) -> bytes | None:
        with self.lock:
            held = self.items.get(key)
        if held is None or held[0] != self.channel(feed):
            return None
        return held[1]

    def remember(self, key: tuple, feed: Feed, tail: bytes) -> None:
        item = (self.channel(feed), tail)
        with self.lock:
            self.items[key] = item
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)


_NO_TIME = datetime(2000, 1, 1, tzinfo=timezone.utc)
# Kept beside each fragment cache, as _by_version: profiles x scopes x formats, a few hundred bytes each.
_tails: WeakKeyDictionary[Fragments, _Tails] = WeakKeyDictionary()


def _remembered_tails(fragments: Fragments) -> _Tails:
    with _by_version_lock:
        if fragments not in _tails:
            _tails[fragments] = _Tails(4096)
        return _tails[fragments]


def _frame(fmt: str, write, feed: Feed, tails: _Tails, key: tuple) -> tuple[bytes, bytes]:
    """(head, tail) of `feed` without its entries: composing.frame's, or split before the tail remembered."""
    if fmt == "json":
        return composing.frame(fmt, write, feed)   # written empty: no probe to save
    tail = tails.tail(key, feed)
    if tail:
        empty = write(replace(feed, entries=[]))
        if empty.endswith(tail) and len(empty) > len(tail):
            return empty[:-len(tail)], tail
    head, tail = composing.frame(fmt, write, feed)
    tails.remember(key, feed, tail)
    return head, tail


def _within(fmt: str, page: Feed, held: list[bytes], budget: int, frame_of) -> bytes:
    """The page with as many leading whole items as fit `budget` (none when not one fits), as
    profiles.write finds by writing: each count's size is its frame's and fragments' sizes."""
    separator = len(composing.SEPARATOR[fmt])
    sizes = [0]
    for piece in held:
        sizes.append(sizes[-1] + len(piece) + separator)
    for count in range(len(held) - 1, 0, -1):
        head, tail = frame_of(declared(replace(page, entries=page.entries[:count])))
        if len(head) + sizes[count] - separator + len(tail) <= budget:
            return composing.compose(fmt, head, held[:count], tail)
    head, tail = frame_of(declared(replace(page, entries=[])))
    return composing.compose(fmt, head, [], tail)
