"""Aggregator profiles applied to a feed: the entries are built once, each profile shapes a copy.

    /feeds/profile/<name>/rss.xml, /feeds/profile/<name>/section/<key>/atom.xml, ...
        the public feed URLs (feeds/urls.py) under /feeds/profile/<name>, in the formats it allows
    /feeds/profile/<name>/feeds.opml   every scope's feed of one profile

`shape(profile, feed)` takes a public full-text Feed (scope.load_feed) and returns the profile's:
titles cut or replaced, summaries lengthened, HTML narrowed to its allow-list, images it cannot
use dropped, campaign parameters on links (never on ids), its namespaces, channel text within its
limits. An item that still breaks a rule (checks.item_problems) is left out, never served broken;
every item one check leaves out is announced in one `left_out` signal (counted by
feedsvc/ops/metrics.py, kept for the desk by feedsvc/ops/desk_counters.py) and logged (`leave_out`). A withdrawn
article is said the way the profile chooses (`deletions_of`): a tombstone, or a marker item at the
top of the feed for `deletion_days`. `write` then keeps the feed within the profile's byte budget,
at whole items (markers come first, so they stay).
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import cached_property, lru_cache
from typing import NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from blinker import Namespace
from sqlalchemy.engine import Connection

from feedsvc.ingest.records import Article
from feedsvc.ingest.sanitize import plain_text
from feedsvc.profiles import Profile
from feedsvc.profiles.checks import (
    DATE_RULES,
    ItemFacts,
    date_problems,
    image_problems,
    lasting_problems,
    timely_span,
)
from feedsvc.profiles.text import cut, length, without_teaser
from feedsvc.render import feeds
from feedsvc.render.feeds.dcterms import DctermsExtension, ValidEntryExtension
from feedsvc.render.feeds.ext import (
    MediaStatusEntryExtension,
    MediaStatusExtension,
    MiEntryExtension,
    MiExtension,
    SnfEntryExtension,
    SnfExtension,
    WebfeedsExtension,
)
from feedsvc.render.feeds.model import Entry, Feed, Scope, Tombstone
from feedsvc.render.feeds.urls import FEEDS, feed_path
from feedsvc.render.skips import LoggedOnce
from feedsvc.store import ScopeState

log = logging.getLogger(__name__)

# Sent once per check that leaves items out of a profile's feed; sender: the profile name; `items`: a
# list of LeftOut, one per rule each item breaks. One signal per check, not per item: a write's
# renders announced some 90 items each time, and a blinker send per item cost a fifth of them.
left_out = Namespace().signal("feedsvc.profile-items-left-out")
_logged = LoggedOnce(10_000)
PROFILE_FEEDS = f"{FEEDS}/profile"
PROFILE_DIRECTORY = f"{FEEDS}/profiles"   # every profile, its rules and sources: as a page, and with .json
PROFILE_OPML = "feeds.opml"               # in a profile's folder: its feeds of every scope
URL_SCHEMES = {"http", "https", "mailto"}


# ---- URLs: the public feed paths, under /feeds/profile/<name> ----------------------------------

def profile_folder(name: str) -> str:
    return f"{PROFILE_FEEDS}/{name}"


def profile_feed_path(name: str, scope: Scope, fmt: str) -> str:
    return profile_folder(name) + feed_path(scope, fmt)[len(FEEDS):]


def profile_feed_url(name: str, scope: Scope, fmt: str, site_url: str) -> str:
    return site_url + profile_feed_path(name, scope, fmt)


def public_feed_path(path: str) -> str | None:
    """The public feed path a profile feed path repeats (/feeds/profile/msn/tag/x/rss.xml ->
    /feeds/tag/x/rss.xml), or None for a path outside /feeds/profile/<name>/."""
    if not path.startswith(PROFILE_FEEDS + "/"):
        return None
    name, slash, rest = path[len(PROFILE_FEEDS) + 1:].partition("/")
    return f"{FEEDS}/{rest}" if name and slash and rest else None


def profile_opml_path(name: str) -> str:
    return f"{profile_folder(name)}/{PROFILE_OPML}"


def profile_opml_url(name: str, site_url: str) -> str:
    return site_url + profile_opml_path(name)


def load_base_feed(conn: Connection, site, scope: Scope, state: ScopeState, profiles) -> Feed:
    """The public full-text feed of a scope state every profile and format is shaped from, built whole:
    enough articles for the largest window (base_limit), the withdrawals as far back as the profile
    keeping them longest wants (Atom loads them)."""
    wide = replace(site, tombstone_days=withdrawn_days_needed(profiles, site))
    loaded = feeds.load_feed(conn, wide, scope, state, fmt="atom", limit=base_limit(profiles, site.default_limit),
                             full_text=True)
    return replace(loaded, site=site)


def base_limit(profiles, default_limit: int) -> int:
    """How many articles to load once for every profile: enough for the largest window, and some
    to spare for items a profile leaves out."""
    wanted = [p.value("window", "max_count") or p.value("window", "min_count") or default_limit
              for p in profiles]
    return max([default_limit, *wanted]) * 3 // 2


# ---- namespaces ------------------------------------------------------------------------------

class _Namespace:
    """What a profile's extension (Feed.extensions) does besides register(fg, feed): its elements on
    each entry, and `for_entries`: itself as it declares for a page of these entries (by default,
    whatever the entries). A page's namespaces are so decided before it is written, so a head written
    without its entries (render/profile_fragments.py) declares what the page's entries use.
    `live_entry_part`: what it writes into a live (not withdrawn) entry beyond the entry's own fields,
    as part of the key its bytes are remembered under (None: nothing; profile_fragments.py shares an
    entry's bytes between profiles whose shaped entries and parts are equal), asked only of an
    extension that `writes_live_entries`."""
    writes_live_entries = False

    def entry(self, fe, entry: Entry) -> None:
        pass

    def live_entry_part(self, entry: Entry):
        return None

    def for_entries(self, entries: list[Entry]):
        return self


@dataclass(frozen=True)
class Webfeeds(_Namespace):
    accent_color: str | None = None

    def register(self, fg, feed: Feed) -> None:
        fg.register_extension("webfeeds", WebfeedsExtension, atom=False, rss=True)
        fg.webfeeds.branding(icon=feed.site.icon, logo=feed.site.logo, accent_color=self.accent_color)


@dataclass(frozen=True)
class Snf(_Namespace):
    items: bool = False   # whether items carry snf: elements (SnfAnalytics): feedgen adds an entry extension to each

    def register(self, fg, feed: Feed) -> None:
        fg.register_extension("snf", SnfExtension, SnfEntryExtension if self.items else None, atom=False, rss=True)
        fg.snf.logo(feed.site.logo)


@dataclass(frozen=True)
class SnfAnalytics(_Namespace):
    """The GA4 tag of snf:analytics: a page view of the article's own URL, referred by SmartNews.

    SmartFormat 2.0+ (S2) takes "a tracking tag in CDATA" per item; the Parse.ly and Chartbeat guides
    (S11) show a <script> there. The values go into the script as JSON with <, > and & escaped, so no
    article text can end the script or the CDATA section."""
    measurement_id: str   # config.GA4_MEASUREMENT_ID: letters, digits and a hyphen
    withdrawn: frozenset = frozenset()   # deletion markers' ids: no page view there

    def register(self, fg, feed: Feed) -> None:
        pass   # Snf registers the snf: extension (a profile has this only beside it)

    writes_live_entries = True

    def live_entry_part(self, entry: Entry):
        return "snf:analytics", self.measurement_id

    def entry(self, fe, entry: Entry) -> None:
        if entry.id in self.withdrawn:
            return
        config = {"page_location": entry.url, "page_title": entry.title, "page_referrer": SMARTNEWS_REFERRER}
        fe.snf.analytics(GA4_TAG.format(id_url=self.measurement_id, id=_js(self.measurement_id), config=_js(config)))


SMARTNEWS_REFERRER = "https://www.smartnews.com/"
GA4_TAG = ('<script async src="https://www.googletagmanager.com/gtag/js?id={id_url}"></script>'
           '<script>window.dataLayer=window.dataLayer||[];function gtag(){{dataLayer.push(arguments);}}'
           "gtag('js',new Date());gtag('config',{id},{config});</script>")


def _js(value) -> str:
    return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e") \
        .replace("&", "\\u0026")


@dataclass(frozen=True)
class Mi(_Namespace):
    used: bool = False   # whether an entry of the page has an mi: element (for_entries)

    def for_entries(self, entries: list[Entry]) -> "Mi":
        return replace(self, used=any(entry.short_title for entry in entries))

    def register(self, fg, feed: Feed) -> None:
        # Declared only in a feed that has an mi: element: the W3C Feed Validation Service warns of a
        # namespace it does not know wherever it is declared (validate/namespaces.py).
        if self.used:
            fg.register_extension("mi", MiExtension, MiEntryExtension, atom=False, rss=True)

    writes_live_entries = True

    def live_entry_part(self, entry: Entry):
        return "mi:shortTitle" if entry.short_title else None   # the same entry without Mi has no element

    def entry(self, fe, entry: Entry) -> None:
        if entry.short_title:
            fe.mi.short_title(entry.short_title)


@dataclass(frozen=True)
class MediaStatusDeleted(_Namespace):
    """SmartNews's deletion: `<media:status>deleted</media:status>` on each marker (RSS)."""
    ids: frozenset
    used: bool = False   # whether a marker is among the page's entries (for_entries)

    def for_entries(self, entries: list[Entry]) -> "MediaStatusDeleted":
        return replace(self, used=any(entry.id in self.ids for entry in entries))

    def register(self, fg, feed: Feed) -> None:
        if self.used:   # an entry extension costs every entry
            fg.register_extension("media_status", MediaStatusExtension, MediaStatusEntryExtension, atom=False,
                                  rss=True)

    def entry(self, fe, entry: Entry) -> None:
        if entry.id in self.ids:
            fe.media_status.status("deleted")


@dataclass(frozen=True)
class ValidUntil(_Namespace):
    """MSN's takedown: `dcterms:valid` at the withdrawal instant (so in the past) on each marker, whose
    updated date (`dcterms:modified`, Atom `updated`) is that instant too, newer than any it had."""
    ids: frozenset
    used: bool = False   # whether a marker is among the page's entries (for_entries)

    def for_entries(self, entries: list[Entry]) -> "ValidUntil":
        return replace(self, used=any(entry.id in self.ids for entry in entries))

    def register(self, fg, feed: Feed) -> None:
        if self.used:   # dcterms: declared only where used (Atom)
            fg.register_extension("dcterms_valid", DctermsExtension, ValidEntryExtension)

    def entry(self, fe, entry: Entry) -> None:
        if entry.id in self.ids:
            fe.dcterms_valid.until(entry.updated)


def extensions_of(profile: Profile, site=None, withdrawn: frozenset = frozenset()) -> tuple:
    """The profile's namespaces, and what marks its deletion markers (`withdrawn`: their ids)."""
    analytics = profile.value("extensions", "analytics") == "ga4" and site is not None and site.smartnews_analytics_id
    made = {"webfeeds": lambda: Webfeeds(profile.value("extensions", "accent_color")),
            "snf": lambda: Snf(items=bool(analytics)), "mi": Mi}
    chosen = [made[name]() for name in profile.value("extensions", "names", ())]
    if analytics:
        chosen.append(SnfAnalytics(site.smartnews_analytics_id, withdrawn))
    marker = {"media-status": MediaStatusDeleted, "expiry": ValidUntil}.get(deletions_of(profile))
    if marker is not None:
        chosen.append(marker(withdrawn))
    return tuple(chosen)


# ---- one entry -------------------------------------------------------------------------------

def decorated(url: str, params: dict) -> str:
    """`url` with campaign parameters added (those it already has are kept)."""
    if not params:
        return url
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {name for name, _ in query}
    query += [(name, value) for name, value in params.items() if name not in present]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _title(profile: Profile, entry: Entry, short_title: str | None) -> str:
    maximum = profile.value("title", "max")
    if not maximum or length(entry.title) <= maximum:
        return entry.title
    if profile.value("title", "short_title") == "replace" and short_title and length(short_title) <= maximum:
        return short_title
    return cut(entry.title, maximum)


def _summary(profile: Profile, entry: Entry, article) -> str:
    summary = without_teaser(entry.summary, tuple(profile.value("summary", "teasers", ())))
    minimum = profile.value("summary", "min")
    if not minimum or length(summary) >= minimum or article is None:
        return summary
    # Longer than the minimum by half again, so a cut at a word boundary still reaches it.
    return cut(plain_text(article.body_html), minimum * 3 // 2)


def _content(profile: Profile, entry: Entry) -> str | None:
    if not profile.value("text", "full", True) or entry.content_html is None:
        return None
    html = profile.rule("html")
    if not html:
        return entry.content_html
    import nh3  # here, as in feedsvc/ingest/sanitize.py: only profiles with an html rule need it

    # "*": none unless the profile lists some: nh3 otherwise keeps lang and title on every tag.
    return nh3.clean(entry.content_html, tags=set(html["tags"]),
                     attributes={"*": set(), **{tag: set(names) for tag, names in html.get("attributes", {}).items()}},
                     url_schemes=URL_SCHEMES, link_rel=None)


def _usable_image(profile: Profile, entry: Entry):
    """The entry's image if the profile's image rule accepts it, else None (the item may still go without)."""
    if entry.image is None or image_problems(profile, facts_of(entry)):
        return None
    return entry.image


def shape_entry(profile: Profile, entry: Entry, article) -> Entry:
    """The entry as `profile` wants it (the input is left as it is: it is shared by every profile)."""
    short_title = article.short_title if article is not None else None
    published = entry.published
    if profile.value("updates", "on_significant_update") == "move-published" and article is not None \
            and article.significantly_updated:
        published = max(published, article.significantly_updated.replace(microsecond=0))
    return replace(
        entry, title=_title(profile, entry, short_title), summary=_summary(profile, entry, article),
        content_html=_content(profile, entry), image=_usable_image(profile, entry),
        url=decorated(entry.url, profile.value("links", "utm", {})), published=published,
        short_title=short_title if profile.value("title", "short_title") == "element" else None)


def facts_of(entry: Entry) -> ItemFacts:
    image = entry.image
    return ItemFacts(id=entry.id, title=entry.title, summary=entry.summary, published=entry.published,
                     link=entry.url, language=entry.language, has_content=entry.content_html is not None,
                     image_width=image.width if image else None, image_height=image.height if image else None,
                     has_image=image is not None)


# ---- the feed --------------------------------------------------------------------------------

def profile_site(profile: Profile, site):
    """The site as the profile's feeds name it: in its locale tag, when it has one."""
    tag = profile.value("language", "tag")
    return replace(site, language=tag) if tag else site


def shaping_context(profile: Profile, site) -> tuple:
    """What a shaped entry depends on besides its article: the profile, the site, the feed's language."""
    return profile.digest(), site.digest(), profile.value("language", "tag") or site.language   # profile_site's


@dataclass(frozen=True)
class Shaped:
    """An entry as a profile shapes it: the rules it breaks whenever checked, and when its dates pass."""
    entry: Entry
    lasting: list
    facts: ItemFacts
    timely: tuple   # checks.timely_span
    # The rules it breaks before `timely` starts and after it ends: the same at any time there.
    _untimely: dict = field(default_factory=dict, compare=False, repr=False)

    def check(self, profile: Profile, now: datetime) -> tuple[list, datetime | None, datetime | None]:
        """(every rule it breaks at `now`, after, before): it breaks the same ones at any time strictly
        between after and before (None: no bound)."""
        start, until = self.timely
        if start is not None and now < start:
            return self._untimely_at("early", profile, now), None, start
        if until is not None and now > until:
            return self._untimely_at("late", profile, now), until, None
        return self.lasting, start, until

    # Cached (an entry's fields never change once shaped): computed once per article version and profile.
    @cached_property
    def digest(self) -> str:
        """Names the entry's content: equal digests, equal fields (the repr of a dataclass of strings,
        numbers, dates and dataclasses of them is unambiguous, and the same in every process)."""
        return hashlib.blake2b(repr(self.entry).encode("utf-8"), digest_size=16).hexdigest()

    def _untimely_at(self, side: str, profile: Profile, now: datetime) -> list:
        if side not in self._untimely:
            self._untimely[side] = self.lasting + date_problems(profile, self.facts, now=now)
        return self._untimely[side]


@dataclass(frozen=True)
class Candidate:
    """An article's entry as a profile shapes it."""
    article: Article | None   # None for an entry of a feed built without its sources
    shaped: Shaped

    @property
    def entry(self) -> Entry:
        return self.shaped.entry

    # Kept: a candidate kept across checks (render/profile_fragments.py) is announced at each one.
    @cached_property
    def left_key(self) -> tuple[str, str]:
        """(article id, version) it is announced and logged by when it is left out."""
        article = self.article
        return (article.id, article.updated.isoformat()) if article is not None else (self.shaped.entry.id, "")


def shaped_candidate(profile: Profile, context: tuple, entry: Entry, article) -> Candidate | None:
    """The article's entry shaped by `profile` (kept, `_shaped`), or None when the desk keeps the
    article from this profile (its choice, not a broken rule)."""
    if article is not None and not article.syndicated_to(profile.name):
        return None
    return Candidate(article, _shaped.get(context, entry, article, lambda e, a: _shape_and_check(profile, e, a, context[2])))


@dataclass(frozen=True)
class Checked:
    """Candidates checked at one time: the entries that break no rule (and their candidates, in the same
    order), the (problems, Candidate.left_key) of the others, and the times strictly between which the
    same check splits them alike."""
    entries: list[Entry]
    left: list
    after: datetime | None
    before: datetime | None
    candidates: list = field(default_factory=list)

    def holds_at(self, now: datetime) -> bool:
        return (self.after is None or self.after < now) and (self.before is None or now < self.before)


def checked(profile: Profile, candidates: list[Candidate], now: datetime) -> Checked:
    entries, kept, left = [], [], []
    after: datetime | None = None
    before: datetime | None = None
    for candidate in candidates:
        shaped = candidate.shaped
        low, high = shaped.timely
        # Inside its span (nearly every item, at every check) the lasting problems hold: Shaped.check's
        # answer without its call (after a write, checking every profile's base took a tenth of the
        # profile renders' time).
        if (low is None or not now < low) and (high is None or not now > high):
            problems = shaped.lasting
        else:
            problems, low, high = shaped.check(profile, now)
        if problems:
            left.append((problems, candidate.left_key))
        else:
            entries.append(shaped.entry)
            kept.append(candidate)
        if low is not None and (after is None or low > after):
            after = low
        if high is not None and (before is None or high < before):
            before = high
    return Checked(entries, left, after, before, kept)


def shape(profile: Profile, feed: Feed, *, fmt: str, self_url: str, now: datetime) -> Feed:
    """`feed` (public, full text, built once) as `profile` serves it in format `fmt` at `self_url`.

    Each entry is shaped once per content and kept (`_shaped`) for every scope and format it appears
    in, so after a write only the written article is shaped again; the date rules alone are checked
    at every render."""
    context = shaping_context(profile, feed.site)
    candidates = [shaped_candidate(profile, context, entry, feed.sources.get(entry.id)) for entry in feed.entries]
    split = checked(profile, [c for c in candidates if c is not None], now)
    leave_out(profile, split.left)
    return page_of(profile, feed, split, self_url=self_url)


def page_of(profile: Profile, feed: Feed, split: Checked, *, self_url: str) -> Feed:
    """The profile's page: `feed`'s channel and withdrawals (its own entries unused) with the
    candidates (newest first) that broke no rule when `split`, within its window, after its
    deletion markers; its namespaces those its entries use. Whoever checked `split` announced the
    others (leave_out), once per check rather than once per format."""
    site = profile_site(profile, feed.site)
    entries = split.entries
    gone = withdrawn_within(profile, feed)
    markers = [marker_entry(profile, tombstone, feed) for tombstone in gone] \
        if deletions_of(profile) in MARKED_IN_ITEMS else []
    # A profile without its own count gets the public feeds' (the base holds more, for items left out).
    maximum = profile.value("window", "max_count") or feed.site.default_limit
    # A takedown is never pushed out to make room: markers take their places in the window first.
    markers = markers[:maximum]
    entries = entries[:maximum - len(markers)]
    channel = profile.rule("channel")
    return declared(replace(
        feed, site=site, entries=markers + entries,
        title=_cut_channel(feed.title, channel["title_max"]) if "title_max" in channel else feed.title,
        description=_cut_channel(feed.description, channel["description_max"]) if "description_max" in channel
        else feed.description,
        self_url=self_url, first_url=self_url, next_url=None,
        tombstones=gone if deletions_of(profile) == "tombstone" else [],
        extensions=extensions_of(profile, site, frozenset(m.id for m in markers))))


@lru_cache(maxsize=1024)
def _cut_channel(text: str, maximum: int) -> str:
    """A channel's title or description cut (the same few texts at every render)."""
    return cut(text, maximum)


def declared(feed: Feed) -> Feed:
    """`feed` declaring the namespaces its entries use (each extension's for_entries)."""
    return replace(feed, extensions=tuple(extension.for_entries(feed.entries) for extension in feed.extensions))


# ---- withdrawn articles ------------------------------------------------------------------------

# How a profile tells its consumer of a withdrawn article (its rule updates.deletions):
#   tombstone     RFC 6721 at:deleted-entry in Atom (the public feeds' way), RSS and JSON Feed by absence
#   media-status  a marker item, <media:status>deleted</media:status>, pubDate moved to the withdrawal (SmartNews)
#   expiry        a marker item, dcterms:valid in the past and a newer dcterms:modified / Atom updated (MSN)
#   none          the item leaves the feed, nothing more
MARKED_IN_ITEMS = ("media-status", "expiry")
# A marker says only that the story is gone: no title, text or image of a story taken down (a court
# order may be why), in the language of the feed; long enough for MSN's 21-letter minimum.
WITHDRAWN_TITLE = "यह ख़बर प्रकाशक ने वापस ले ली है"
WITHDRAWN_SUMMARY = "यह ख़बर प्रकाशक ने वापस ले ली है और अब उपलब्ध नहीं है। (Withdrawn by the publisher.)"


def deletions_of(profile: Profile) -> str:
    return profile.value("updates", "deletions", "tombstone")


def deletion_days(profile: Profile, site) -> int:
    """How long a withdrawn article stays as a tombstone or marker: the profile's, else the site's setting."""
    return profile.value("updates", "deletion_days") or site.tombstone_days


def withdrawn_days_needed(profiles, site) -> int:
    """Days of withdrawals the shared base feed must hold for every profile."""
    return max([site.tombstone_days, *(deletion_days(p, site) for p in profiles)])


def withdrawn_within(profile: Profile, feed: Feed) -> list:
    """The feed's withdrawals inside the profile's window, counted back from the scope's last change
    (as load_feed counts tombstones: the same state gives the same bytes, in the app and the mirror)."""
    if deletions_of(profile) == "none":
        return []
    since = feed.updated - timedelta(days=deletion_days(profile, feed.site))
    return [tombstone for tombstone in feed.tombstones if tombstone.when >= since]


def marker_entry(profile: Profile, tombstone: Tombstone, feed: Feed) -> Entry:
    """The item that tells the consumer an article it has is gone: the same id and link, dated so the
    consumer takes it as a change (SmartNews: a newer pubDate; MSN: a newer updated date)."""
    article = feed.sources.get(tombstone.ref)
    when = tombstone.when
    if deletions_of(profile) == "expiry" and article is not None:
        published = min(article.published.replace(microsecond=0), when)   # MSN: pubDate kept, updated moves
    else:
        published = when
    return Entry(id=tombstone.ref, url=decorated(tombstone.url, profile.value("links", "utm", {})),
                 title=WITHDRAWN_TITLE, summary=WITHDRAWN_SUMMARY, content_html=None, published=published,
                 updated=when, authors=[], categories=[],
                 language=article.language if article is not None else feed.language)


def _shaping_input(entry: Entry, article) -> tuple:
    """Everything shaping reads of an entry and its article: equal tuples are shaped alike (hashing the
    texts costs microseconds; skips.version_of, a repr of the whole record, costs a hundred times more)."""
    shown = (entry.id, entry.url, entry.title, entry.summary, entry.content_html, entry.published, entry.updated,
             entry.image, entry.language, tuple(entry.authors), tuple(entry.categories), tuple(entry.videos))
    if article is None:
        return shown
    return (*shown, article.short_title, article.significantly_updated, article.body_html)


def _shape_and_check(profile: Profile, entry: Entry, article, language: str) -> Shaped:
    shaped = shape_entry(profile, entry, article)
    facts = facts_of(shaped)
    return Shaped(shaped, lasting_problems(profile, facts, feed_language=language), facts, timely_span(profile, facts))


class _Kept:
    """A bounded, thread-safe LRU of shaped entries, by (profile, site, language, entry id) and what
    shaping reads (`_shaping_input`): -> Shaped. An article's entry is the same in every scope's
    feed, so one shaping serves them all."""

    def __init__(self, size: int):
        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, context: tuple, entry: Entry, article, make):
        material = _shaping_input(entry, article)
        # A small key (its hash of the texts is computed once per string); the full input is compared on a hit.
        key = (*context, entry.id, hash(material))
        with self.lock:
            kept = self.items.get(key)
            if kept is not None:
                self.items.move_to_end(key)
        if kept is not None and kept[0] == material:
            return kept[1]
        made = make(entry, article)
        with self.lock:
            self.items[key] = (material, made)
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return made


# About 6 profiles x a few hundred recent articles; a shaped entry holds its full text (~6 KiB).
_shaped = _Kept(4096)


class LeftOut(NamedTuple):
    """One rule an item left out of a profile's feed breaks (`left_out`'s items)."""
    item: str      # the article id
    rule: str      # "<rule>.<field>" of the profile file
    message: str   # why


def leave_out(profile: Profile, left: list) -> None:
    """Announce what one check left out (`left`: (problems, Candidate.left_key)) in one `left_out` signal (the
    desk records each item, ops/desk_counters.py; /metrics counts them), and log it: a rule the
    article breaks as a warning, the first time per article version and rule; the date rules
    (checks.DATE_RULES: too old, dated in the future), which old corpora break by the thousand and
    which are no fault of the article, as one info line per check that leaves a version out anew."""
    if not left:
        return
    items = [LeftOut(version[0], problem.rule, problem.message) for problems, version in left for problem in problems]
    left_out.send(profile.name, items=items)
    dated: Counter = Counter()
    new_dated, telling = False, log.isEnabledFor(logging.INFO)   # else the date rules go unsaid: no need to remember them
    for problems, version in left:
        for problem in problems:
            if problem.rule not in DATE_RULES:
                if _logged.first((profile.name, problem.rule, *version)):
                    log.warning("left out of the %s feeds: %s", profile.name, problem)
            elif telling:
                dated[problem.rule] += 1
                new_dated = _logged.first((profile.name, problem.rule, *version)) or new_dated
    if new_dated:
        log.info("left out of the %s feeds by their dates: %s", profile.name,
                 ", ".join(f"{count} {rule}" for rule, count in sorted(dated.items())))


def write(profile: Profile, fmt: str, feed: Feed) -> bytes:
    """The feed in `fmt`, with as many leading whole items as fit the profile's byte budget."""
    body = feeds.write(fmt, feed)
    budget = profile.value("bytes", "max")
    if not budget or len(body) <= budget or not feed.entries:
        return body
    fits, too_many = 0, len(feed.entries)
    best = feeds.write(fmt, declared(replace(feed, entries=[])))
    guess = max(1, len(feed.entries) * budget // len(body))  # items are of similar size: start near the answer
    while too_many - fits > 1:
        count = guess if fits < guess < too_many else (fits + too_many) // 2
        attempt = feeds.write(fmt, declared(replace(feed, entries=feed.entries[:count])))
        if len(attempt) <= budget:
            fits, best = count, attempt
        else:
            too_many = count
        guess = 0
    return best
