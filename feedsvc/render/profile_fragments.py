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
from datetime import datetime
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
    # shaping context -> (profiles.Checked, the page it gives without its URLs, whether the page's
    # entry ids are distinct), while the check holds: a page differs between formats only in its self link.
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
               kept: _Recent) -> tuple[list[Candidate], dict[str, int]] | None:
    """(the profile's candidates newest first, entry id -> stored version), as profiles.shape takes
    them from the whole base; None when an article changed under the stamps read."""
    if context not in base.chosen:
        made = _candidates(profile, base, conn, context, kept)
        if made is None:
            return None
        base.chosen[context] = made
    return base.chosen[context]


def _candidates(profile: Profile, base: Base, conn: Connection, context: tuple,
                kept: _Recent) -> tuple[list[Candidate], dict[str, int]] | None:
    found = kept.get_all(context, base.keys)
    missing = [n for n, candidate in enumerate(found) if candidate is None]
    if missing and not _read(conn, base, [base.stamps[n] for n in missing]):
        return None
    for n in missing:
        _, article, entry = base.read[base.keys[n][0]]
        made = shaped_candidate(profile, context, entry, article) if entry is not None else None
        found[n] = LEFT_OUT if made is None else made
        kept.put(context, base.keys[n], found[n])
    chosen = [candidate for candidate in found if candidate is not LEFT_OUT]
    versions = {candidate.shaped.entry.id: key[1] for candidate, key in zip(found, base.keys, strict=True)
                if candidate is not LEFT_OUT}
    return chosen, versions


def marker_key(fragments: Fragments, fmt: str, entry: Entry, context: str) -> tuple:
    """A deletion marker's key: what the marker says (an article's entry is keyed by its version)."""
    return fragments.key(fmt, entry.id, 0, context, "marker", entry.url, entry.published, entry.updated,
                         entry.language)


def render(profile: Profile, fmt: str, base: Base, *, conn: Connection, self_url: str, now: datetime,
           fragments: Fragments) -> bytes | None:
    """The profile's page in `fmt`, composed; None when it cannot be composed exactly (the caller
    then builds it whole: profiles.shape and profiles.write)."""
    context = shaping_context(profile, base.frame.site)
    found = candidates(profile, base, conn, context, _shaped_versions(fragments))
    if found is None:
        return None
    chosen, versions = found
    split, page, distinct = base.pages.get(context, (None, None, False))
    if split is None or not split.holds_at(now):
        split = checked(profile, chosen, now)
        # Announced once per scope state and profile: the formats share the check (about 15 % of a
        # write's profile renders went to announcing the same items three times).
        leave_out(profile, split.left)
        page = page_of(profile, base.frame, split, self_url="")
        distinct = len({entry.id for entry in page.entries}) == len(page.entries)
        base.pages[context] = (split, page, distinct)
    if not distinct:
        return None   # a marker beside a live entry of the same id: their keys would not tell them apart
    page = replace(page, self_url=self_url, first_url=self_url)   # as page_of(..., self_url=self_url)
    # The shaping context as one string ("profile" and a digest cannot be a public entry's options).
    named = "profile " + " ".join(context)
    version_of, key = versions.get, fragments.key   # bound once: a page has up to a few hundred entries
    keys = [key(fmt, entry.id, version, named) if (version := version_of(entry.id)) is not None
            else marker_key(fragments, fmt, entry, named) for entry in page.entries]
    held = fragments.get_all(keys)

    def write(feed: Feed) -> bytes:
        return feeds.write(fmt, feed)

    frames: dict = {}

    def frame_of(feed: Feed) -> tuple[bytes, bytes]:
        """(head, tail) of a page declaring `feed.extensions`' namespaces."""
        if feed.extensions not in frames:
            frames[feed.extensions] = composing.frame(fmt, write, feed)
        return frames[feed.extensions]

    missing = [n for n, piece in enumerate(held) if piece is None]
    if missing:
        # Written together in one document that declares the page's namespaces, then cut.
        body = write(replace(page, entries=[page.entries[n] for n in missing]))
        if fmt != "json":
            frames[page.extensions] = composing.frame_around_entries(fmt, body)
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
