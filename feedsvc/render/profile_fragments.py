"""Profile feeds composed from entry fragments: each entry written once per shaped content and format.

A profile's entry depends only on the article's stored version, the profile (its rules: title,
summary, HTML allow-list, image rule, link decoration, namespaces), the site and the format; its
bytes only on the shaped entry, the format and what the profile's namespaces write into it, so
they are kept under that (live_stems) and profiles that shape an article alike share them; a
deletion marker depends only on the withdrawal it tells of. So a profile page is, as a public one
(feeds/fragments.py),

    head + fragment(entry 1) + … + fragment(entry n) + tail

with head and tail the writer's own output for the page without its entries: the same bytes as
profiles.write builds whole, byte budget included (whole items: a page's size is its frame's and
its fragments' sizes summed, so the largest leading count that fits is found without writing).

What every profile and format of one scope state starts from is read once (`load_base`): the
channel, the withdrawals and the newest articles' ids and versions. An article is read and shaped
only when a profile has not shaped its version yet (`_Beside.versions`, kept beside each fragment
cache, or the scope's previous page, `_Page.by_key`), so after one write each variant reads, shapes
and writes only the written article. The rules that depend on the time (no
future items, maximum age) are checked at every render, as in profiles.shape.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from operator import is_
from typing import Callable, NamedTuple
from weakref import WeakKeyDictionary

from sqlalchemy.engine import Connection

from feedsvc import store
from feedsvc.profiles import Profile
from feedsvc.render import feeds
from feedsvc.render.feeds import fragments as composing
from feedsvc.render.feeds.entries import entry_from_article
from feedsvc.render.feeds.fragments import Fragments
from feedsvc.render.feeds.model import Entry, Feed, Scope, Site
from feedsvc.render.feeds.pubdate import rfc822
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
    # shaping context -> {(id, version): Candidate or LEFT_OUT} of every stamp: what the next state's
    # candidates start from (_Page.by_key).
    by_key: dict = field(default_factory=dict)
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


class _Latest:
    """A bounded, thread-safe map, the oldest put first out (a read costs no reordering)."""

    def __init__(self, size: int):
        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key: tuple):
        return self.items.get(key)   # a dict read needs no lock

    def put(self, key: tuple, value) -> None:
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)


class _Recent:
    """A _Latest per shaping context: (article id, version) -> Candidate or LEFT_OUT (a feed shows the
    newest versions: those put last; one pushed out while still shown is shaped again)."""

    def __init__(self, size: int):
        self.size, self.contexts, self.lock = size, {}, threading.Lock()

    def _of(self, context: tuple) -> _Latest:
        with self.lock:
            return self.contexts.setdefault(context, _Latest(self.size))

    def get_all(self, context: tuple, keys: list) -> list:
        return list(map(self._of(context).get, keys))

    def put(self, context: tuple, key: tuple, value) -> None:
        self._of(context).put(key, value)


@dataclass
class _Beside:
    """What is kept beside each fragment cache, as its fragments are: a cache serves one store, and
    version numbers are a store's own (tests and the bench run several stores in one process)."""
    # Per profile (context), a few hundred recent articles: the newest of every scope's base (the
    # shaped entries are shared with profiles._shaped).
    versions: _Recent = field(default_factory=lambda: _Recent(1024))
    # (format, profile, page URL) -> (channel but for its time, tail): profiles x scopes x formats,
    # a few hundred bytes each (_frame).
    tails: _Latest = field(default_factory=lambda: _Latest(4096))
    # (profile, scope id) -> the _Page of the scope's latest state (_checked_since): a write's fan-out
    # renders 14 scopes x 6 profiles. Its candidates are mostly those `versions` holds anyway.
    pages: _Latest = field(default_factory=lambda: _Latest(256))


_beside: WeakKeyDictionary[Fragments, _Beside] = WeakKeyDictionary()
_beside_lock = threading.Lock()


def _kept_beside(fragments: Fragments) -> _Beside:
    with _beside_lock:
        if fragments not in _beside:
            _beside[fragments] = _Beside()
        return _beside[fragments]


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
               kept: _Recent, previous: "_Page | None" = None) -> list[Candidate] | None:
    """The profile's candidates newest first, as profiles.shape takes them from the whole base; None
    when an article changed under the stamps read. `previous`: the profile's page of an earlier state
    of the scope, whose candidates are taken where `kept` has none."""
    if context not in base.chosen:
        made = _candidates(profile, base, conn, context, kept, previous.by_key if previous else {})
        if made is None:
            return None
        base.chosen[context] = made
    return base.chosen[context]


def _candidates(profile: Profile, base: Base, conn: Connection, context: tuple,
                kept: _Recent, before: dict) -> list[Candidate] | None:
    found = kept.get_all(context, base.keys)
    # `kept` holds the newest few hundred articles of a context, recently used first out; at 1M articles
    # and 50,000 tags a write's 14 scopes show 14 x 90 distinct ones (base_limit), so each scope's came
    # back pushed out and were read and shaped again: 792 shapings a write, a third of the fan-out's
    # CPU (bench row `fanout`, profiled in process). The scope's previous page still holds them.
    for n, candidate in enumerate(found):
        if candidate is None and (earlier := before.get(base.keys[n])) is not None:
            found[n] = earlier
            kept.put(context, base.keys[n], earlier)
    missing = [n for n, candidate in enumerate(found) if candidate is None]
    if missing and not _read(conn, base, [base.stamps[n] for n in missing]):
        return None
    for n in missing:
        _, article, entry = base.read[base.keys[n][0]]
        made = shaped_candidate(profile, context, entry, article) if entry is not None else None
        found[n] = LEFT_OUT if made is None else made
        kept.put(context, base.keys[n], found[n])
    base.by_key[context] = dict(zip(base.keys, found, strict=True))
    return [candidate for candidate in found if candidate is not LEFT_OUT]


def marker_key(fragments: Fragments, fmt: str, entry: Entry, context: str) -> tuple:
    """A deletion marker's key: what the marker says (an article's entry is keyed by its content)."""
    return fragments.key(fmt, entry.id, 0, context, "marker", entry.url, entry.published, entry.updated,
                         entry.language)


def live_stems(candidates: list[Candidate], writers: list) -> list[tuple]:
    """Each live entry's key but for the format: its id, its content's digest and what the page's
    extensions write into it. Keyed by what it says rather than by profile, so profiles whose shaped
    entries are equal (most, for most articles: a rule that changes nothing leaves the entry as it
    was) write its bytes once between them: after a write, 5 of 11 variants of the site feed found
    the new entry written by another profile. `writers`: the page's extensions that write into live
    entries (writes_live_entries)."""
    if not writers:   # most profiles: a tuple each, nothing asked (a page of 60 in 5 µs, not 100)
        return [(shaped.entry.id, 0, "shaped", shaped.digest, ()) for shaped in (c.shaped for c in candidates)]
    return [(shaped.entry.id, 0, "shaped", shaped.digest,
             tuple(part for writer in writers if (part := writer.live_entry_part(shaped.entry)) is not None))
            for shaped in (c.shaped for c in candidates)]


@dataclass
class _Page:
    """A profile's page of one scope state, as every format of it starts from it (Base.pages)."""
    chosen: list         # the candidates it was checked from
    split: Checked
    page: Feed           # without its URLs
    distinct: bool       # whether its entry ids are distinct
    markers: int         # how many deletion markers lead it
    live: list           # the candidates of the live entries after them
    stems: list          # their live_stems
    writers: list        # the page's extensions that write into live entries (what `stems` asked)
    by_key: dict = field(default_factory=dict)   # Base.by_key of its context: its candidates by (id, version)


def _page(profile: Profile, base: Base, chosen: list[Candidate], now: datetime, previous: _Page | None) -> _Page:
    split = _checked_since(profile, previous, chosen, now) or checked(profile, chosen, now)
    # Announced once per scope state and profile: the formats share the check (about 15 % of a
    # write's profile renders went to announcing the same items three times).
    leave_out(profile, split.left)
    page = page_of(profile, base.frame, split, self_url="")
    entries = page.entries
    # page_of puts the markers first, then the leading entries of split (the same objects).
    first = split.entries[0] if split.entries else None
    markers = next((n for n, entry in enumerate(entries) if entry is first), len(entries))
    live = split.candidates[:len(entries) - markers]
    writers = [extension for extension in page.extensions if extension.writes_live_entries]
    stems = None
    if previous is not None and previous.writers == writers:
        new = _shifted(live, previous.live)
        if new is not None:   # the previous page's entries keep their stems (a digest and a tuple each)
            stems = live_stems(live[:new], writers) + previous.stems[:len(live) - new]
    if stems is None:
        stems = live_stems(live, writers)
    # Live entries are distinct articles: only a marker can share an id with one.
    distinct = not markers or len({entry.id for entry in entries}) == len(entries)
    return _Page(chosen, split, page, distinct, markers, live, stems, writers,
                 base.by_key.get(shaping_context(profile, base.frame.site), {}))


def _checked_since(profile: Profile, previous: _Page | None, chosen: list[Candidate], now: datetime) -> Checked | None:
    """checked(profile, chosen, now), from the check of the same profile's page of the scope's previous
    state when it still holds and `chosen` is a few new candidates before a head of that page's (what
    a write gives: its article first, the oldest pushed out); else None. Only the new ones are
    checked: the others break what they broke then (after a write, checking every profile's 90
    candidates anew took a tenth of the profile renders' time). The span it holds for is the
    previous one's narrowed by the new candidates' (the pushed-out ones' bounds kept: a narrower
    span only rechecks sooner)."""
    if previous is None or not previous.split.holds_at(now):
        return None
    before = previous.chosen
    new = _shifted(chosen, before)
    if new is None:
        return None
    kept = len(chosen) - new
    split = previous.split
    entries, candidates, left = split.entries[:], split.candidates[:], split.left[:]
    for gone in reversed(before[kept:]):   # each was the last kept or the last left out, in order
        if candidates and candidates[-1] is gone:
            candidates.pop()
            entries.pop()
        else:
            left.pop()
    head = checked(profile, chosen[:new], now)
    after = max((bound for bound in (head.after, split.after) if bound is not None), default=None)
    until = min((bound for bound in (head.before, split.before) if bound is not None), default=None)
    return Checked(head.entries + entries, head.left + left, after, until, head.candidates + candidates)


NEW_AT_MOST = 8   # new candidates before the previous page's first, for _checked_since to look for


def _shifted(now: list, before: list) -> int | None:
    """How many items lead `now` before a head of `before` (the same objects, in order): at most
    NEW_AT_MOST; None when `now` is not so made."""
    if not before:
        return None
    new = next((n for n, item in enumerate(now[:NEW_AT_MOST]) if item is before[0]), None)
    if new is None or len(now) - new > len(before) or not all(map(is_, now[new:], before[:len(now) - new])):
        return None
    return new


def render(profile: Profile, fmt: str, base: Base, *, conn: Connection, self_url: str, now: datetime,
           fragments: Fragments) -> bytes | None:
    """The profile's page in `fmt`, composed; None when it cannot be composed exactly (the caller
    then builds it whole: profiles.shape and profiles.write)."""
    context = shaping_context(profile, base.frame.site)
    beside = _kept_beside(fragments)
    latest = (context, base.frame.scope.id)
    chosen = candidates(profile, base, conn, context, beside.versions, beside.pages.get(latest))
    if chosen is None:
        return None
    made = base.pages.get(context)
    if made is None or not made.split.holds_at(now):
        made = base.pages[context] = _page(profile, base, chosen, now, made or beside.pages.get(latest))
        beside.pages.put(latest, made)
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
    tails, tail_key = beside.tails, (fmt, named, self_url)

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
                head, tail = frames[page.extensions]
                tails.put(tail_key, _Framed(_channel(page), head, tail, page.updated))
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

_NO_TIME = datetime(2000, 1, 1, tzinfo=timezone.utc)


def _channel(feed: Feed) -> Feed:
    """What a page's writer writes but its entries and its time (`sources` only names the article of
    an entry the writer fails on)."""
    return replace(feed, entries=[], updated=_NO_TIME, sources={})


class _Framed(NamedTuple):
    """A page's frame as written once (`_Beside.tails`): its channel but for its time, its head and
    tail, and the time its head carries."""
    channel: Feed
    head: bytes
    tail: bytes
    updated: datetime


# How each writer puts a page's time into its head: RSS <lastBuildDate> (feedgen's formatRFC2822,
# which pubdate.rfc822 equals), Atom <updated> (feedgen's isoformat); feedgen's FeedGenerator.updated
# "will set both atom:updated and rss:lastBuildDate". Sought as the whole element, not its text alone:
# an Atom tombstone's when="" carries the same text where the withdrawal is the scope's last change to
# the second (what a withdrawal makes), and the next write's head then held that text twice.
_HEAD_TIME: dict[str, tuple[str, Callable[[datetime], str]]] = {
    "rss": ("lastBuildDate", rfc822), "atom": ("updated", datetime.isoformat)}


def _head_time(fmt: str, when: datetime) -> bytes:
    element, text = _HEAD_TIME[fmt]
    return f"<{element}>{text(when)}</{element}>".encode("utf-8")


def _frame(fmt: str, write, feed: Feed, tails: _Latest, key: tuple) -> tuple[bytes, bytes]:
    """(head, tail) of `feed` without its entries: composing.frame's, or the frame it had before.

    composing.frame writes the page with a probe entry to find where entries go. A page like one
    seen before but for its time (the scope's last change, which its head carries once) is the
    head remembered with the time in it changed (`tails`: key -> _Framed): the writer's output is a
    function of the page, and its time is written in one element, so where the old head holds that
    element with the old time exactly once, that is the place (else the page is written empty and
    split before the tail remembered). After a write most profile pages find the new entry
    written by another profile (live_stems), and need only this: writing the empty pages was a
    seventh of the profile renders' time in the bench (7 pages, 0.9 of 6.6 ms CPU a write)."""
    if fmt == "json":
        return composing.frame(fmt, write, feed)   # written empty: no probe to save
    held = tails.get(key)
    if held is not None and held.tail and held.channel == _channel(feed):
        if held.updated == feed.updated:
            return held.head, held.tail
        old, new = (_head_time(fmt, when) for when in (held.updated, feed.updated))
        if held.head.count(old) == 1:
            head = held.head.replace(old, new)
            tails.put(key, held._replace(head=head, updated=feed.updated))
            return head, held.tail
        empty = write(replace(feed, entries=[]))
        if empty.endswith(held.tail) and len(empty) > len(held.tail):
            head = empty[:-len(held.tail)]
            tails.put(key, held._replace(head=head, updated=feed.updated))
            return head, held.tail
    head, tail = composing.frame(fmt, write, feed)
    tails.put(key, _Framed(_channel(feed), head, tail, feed.updated))
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
