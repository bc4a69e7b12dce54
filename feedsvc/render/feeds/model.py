"""What a feed is made of, whatever its format: the publication, a feed's scope, its entries.

The writers (rss.py, atom.py, jsonfeed.py) take a `Feed` and return bytes; they never query the
store. scope.py fills a `Feed` from the store and entries.py turns each Article into an `Entry`.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Callable
from urllib.parse import urlsplit

from feedsvc.ingest.records import Article, valid_key
from feedsvc.render.links import absolute
from feedsvc.store import SCOPE_KINDS, scope_id


@dataclass(frozen=True)
class Format:
    """A feed format, declared by its writer's module (rss.py, atom.py, jsonfeed.py); formats.py lists them."""
    name: str          # rss | atom | json
    filename: str      # the last segment of its URLs
    content_type: str
    label: str         # shown to people
    write: Callable[["Feed"], bytes]

    @property
    def mimetype(self) -> str:
        return self.content_type.split(";")[0]


@dataclass(frozen=True)
class Site:
    """The publication: everything a feed takes from configuration."""
    url: str
    name: str
    description: str
    language: str
    logo: str
    icon: str
    copyright: str
    hubs: tuple[str, ...] = ()
    ttl_minutes: int = 5
    tombstone_days: int = 30
    default_limit: int = 50
    max_limit: int = 200
    full_text: bool = True
    timezone: str = "Asia/Kolkata"
    id_authority: str = ""   # the store's (feedsvc/web/id_authority.py); "" before it is known: the site's host
    smartnews_analytics_id: str = ""   # GA4 id of the SmartNews profile's snf:analytics tags; "": none

    @classmethod
    def from_config(cls, config) -> "Site":
        url = config["SITE_URL"].rstrip("/")
        return cls(
            url=url, name=config["SITE_NAME"], description=config["SITE_DESCRIPTION"],
            language=config["SITE_LANGUAGE"], logo=absolute(config["SITE_LOGO"], url),
            icon=absolute(config["SITE_ICON"], url), copyright=config["SITE_COPYRIGHT"],
            hubs=tuple(config["WEBSUB_HUBS"]), ttl_minutes=config["FEED_TTL_MINUTES"],
            tombstone_days=config["TOMBSTONE_DAYS"], default_limit=config["FEED_DEFAULT_LIMIT"],
            max_limit=config["FEED_MAX_LIMIT"], full_text=config["FEED_FULL_TEXT"], timezone=config["TIMEZONE"],
            id_authority=config.get("ID_AUTHORITY") or "",
            smartnews_analytics_id=config.get("SMARTNEWS_ANALYTICS_ID") or "")

    # Cached (the instance's fields never change): every entry id of every feed asks for it.
    @cached_property
    def host(self) -> str:
        return (urlsplit(self.url).hostname or "localhost").lower()

    @cached_property
    def authority(self) -> str:
        """The host guids and Atom ids are minted under: fixed per store, whatever the site's URL."""
        return self.id_authority or self.host

    def digest(self) -> str:
        """Changes whenever a setting that shows in a feed changes: part of every ETag and fragment key."""
        return self._digest

    @cached_property
    def _digest(self) -> str:
        return hashlib.blake2b(json.dumps(asdict(self), sort_keys=True, ensure_ascii=False).encode(),
                               digest_size=8).hexdigest()


@dataclass(frozen=True)
class Scope:
    """Which articles a feed carries: the whole site, one section, tag or author, or the videos."""
    kind: str            # site | section | tag | author | video
    key: str = ""
    name: str = ""

    @property
    def id(self) -> str:
        """The store's name for the scope: "site", "video" or "<kind>:<key>"."""
        return scope_id(self.kind, self.key)

    @classmethod
    def from_id(cls, scope_id: str, name: str = "") -> "Scope":
        if scope_id == "site":
            return cls("site", "", name)
        kind, _, key = scope_id.partition(":")
        if not valid_scope(kind, key):
            raise ValueError(f"not a feed scope: {scope_id!r}")
        return cls(kind, key, name)


# What feeds and pages call each kind: its words in the store's table of kinds.
SCOPE_WORDS = {name: kind.words for name, kind in SCOPE_KINDS.items()}
SITE_GROUP = ("पूरी साइट", "Whole site")


def valid_scope(kind: str, key: str) -> bool:
    """A kind of SCOPE_KINDS with a key of the right form: none for a kind without keys (video)."""
    if kind not in SCOPE_KINDS:
        return False
    return valid_key(key) if SCOPE_KINDS[kind].keyed else key == ""


@dataclass(frozen=True)
class Person:
    name: str
    url: str | None = None


@dataclass(frozen=True)
class Category:
    term: str     # the key: stable, what a program matches on
    label: str    # the name: what a reader shows
    scheme: str   # one URI per kind of category (section, tag)


@dataclass(frozen=True)
class Image:
    url: str
    width: int | None = None
    height: int | None = None
    type: str | None = None
    caption: str = ""
    credit: str = ""
    length: int | None = None          # bytes, when the file was probed (an RSS enclosure needs it)
    thumbnail: Image | None = None     # a small rendition (media:thumbnail)
    banner: Image | None = None        # a wide rendition for link previews (JSON Feed banner_image)

    def __hash__(self) -> int:
        # Equal images have equal URLs, so this agrees with ==; the generated hash went through every
        # field of the image and of both renditions, for each entry (lru caches are keyed by image).
        return hash(self.url)


@dataclass(frozen=True)
class Video:
    """A video an article carries (feedsvc/ingest/videos.py): Media RSS media:content medium="video",
    seen through a `player` (a YouTube or Vimeo embed) or a `file` of the site's own."""
    player: str | None       # the embeddable player's URL
    title: str
    thumbnail: str | None = None
    thumbnail_width: int | None = None
    thumbnail_height: int | None = None
    file: str | None = None  # the video file's URL
    type: str | None = None  # the file's MIME type
    duration: int | None = None  # seconds


@dataclass
class Entry:
    """One article as every feed format shows it."""
    id: str                  # a tag: URI from the record id; never changes when the article is edited
    url: str
    title: str
    summary: str             # plain text
    content_html: str | None  # None when the feed carries summaries only
    published: datetime      # aware, to the second, with the record's offset
    updated: datetime
    authors: list[Person]
    categories: list[Category]
    image: Image | None = None
    language: str = "hi"
    videos: list[Video] = field(default_factory=list)
    short_title: str | None = None  # the record's, for consumers with a short-title element (profiles)


@dataclass(frozen=True)
class Tombstone:
    """A withdrawn article (RFC 6721): the id it had, when it went, where it was."""
    ref: str
    when: datetime
    url: str


@dataclass
class Feed:
    """One page of one feed, ready for any writer."""
    site: Site
    scope: Scope
    id: str
    title: str
    description: str
    home_url: str
    self_url: str
    first_url: str
    next_url: str | None
    updated: datetime        # aware: when the scope last changed
    entries: list[Entry] = field(default_factory=list)
    tombstones: list[Tombstone] = field(default_factory=list)
    stylesheet: str | None = "/static/feed.xsl"  # shown by browsers; None leaves it out
    only_language: str | None = None   # a single-language feed's language (scope.LANGUAGE_PARAMETER)
    # Namespaced elements an aggregator profile adds (feedsvc/render/profiles.py): each has
    # register(fg, feed) and entry(fe, entry), called by the RSS and Atom writers.
    extensions: tuple = ()
    # entry id or tombstone ref -> the article it shows: names one a writer fails on (feeds.write)
    sources: dict[str, Article] = field(default_factory=dict, repr=False)

    @property
    def language(self) -> str:
        return self.only_language or self.site.language
