"""The tables: every column and index the store has, declared once (Alembic migrations follow it).

Times are stored as naive UTC (the same on SQLite and PostgreSQL); each article keeps its own
offset in its stored JSON so outputs show the newsroom's +05:30.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
    true,
)

metadata = MetaData()

articles = Table(
    "articles", metadata,
    Column("id", String(128), primary_key=True),
    Column("slug", String(80), nullable=False, unique=True),
    Column("status", String(16), nullable=False),
    Column("section_key", String(64), nullable=False),
    Column("section_name", String(200), nullable=False),
    Column("published", DateTime, nullable=False),
    Column("updated", DateTime, nullable=False),
    Column("version", Integer, nullable=False),
    Column("modified_at", DateTime, nullable=False),  # server time of the last write
    Column("withdrawn_at", DateTime),
    # A SCHEDULED article's instant of going live (its `published`, or a later `embargo_until`); else NULL.
    Column("visible_from", DateTime),
    # The record's `syndication`: False keeps a live article on the site but out of every feed / the news sitemap.
    Column("in_feeds", Boolean, nullable=False, server_default=true()),
    Column("in_news_sitemap", Boolean, nullable=False, server_default=true()),
    # The article carries a player or a video file (records.Article.has_video): the video scope's members.
    Column("has_video", Boolean, nullable=False, server_default=false()),
    # The record's `language` tag, kept out of the JSON so single-language feeds (?lang=) and the OPML's
    # list of languages read indexes, not every stored article. NULL only in a row written by code older
    # than migration 0013 while it ran; 35 is RFC 5646 §4.4.1's length a tag buffer should hold.
    Column("language", String(35)),
    Column("article", Text, nullable=False),  # records.article_to_json
    Column("record", Text, nullable=False),   # the record as given
    Index("ix_articles_status_published", "status", "published", "id"),
    Index("ix_articles_section_status_published", "section_key", "status", "published", "id"),
    Index("ix_articles_withdrawn_at", "withdrawn_at"),
    Index("ix_articles_modified_at", "modified_at"),  # what changed since: the mirror's --watch
    # Covers the per-month counts and lastmods of the sitemap index (feedsvc/sitemaps.py) without table reads.
    Index("ix_articles_sitemap", "status", "published", "updated", "withdrawn_at"),
    # The scheduler's next due article. Not (status, visible_from): PostgreSQL would take that for the
    # status = 'published' queries of feeds and sitemaps. Only SCHEDULED rows have a visible_from.
    Index("ix_articles_visible_from", "visible_from"),
    Index("ix_articles_in_feeds", "in_feeds"),  # the few kept out of feeds, excluded from every feed query
    # The video scope newest first, paged through one index like a section's.
    Index("ix_articles_video_status_published", "has_video", "status", "published", "id"),
    # Each scope's single-language feed newest first, through one index range whatever the language:
    # one no article uses is an empty range, not a read of every article of the scope.
    Index("ix_articles_language_status_published", "language", "status", "published", "id"),
    Index("ix_articles_section_language_status_published", "section_key", "language", "status", "published", "id"),
    Index("ix_articles_video_language_status_published", "has_video", "language", "status", "published", "id"),
)

article_tags = Table(
    "article_tags", metadata,
    Column("tag_key", String(64), primary_key=True),
    Column("article_id", String(128), ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_name", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("published", DateTime, nullable=False),
    Column("language", String(35)),   # the article's (articles.language), for its single-language feeds
    Index("ix_article_tags_tag_status_published", "tag_key", "status", "published", "article_id"),
    Index("ix_article_tags_tag_language_status_published", "tag_key", "language", "status", "published", "article_id"),
    Index("ix_article_tags_article", "article_id"),
)

article_authors = Table(
    "article_authors", metadata,
    Column("author_key", String(64), primary_key=True),
    Column("article_id", String(128), ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True),
    Column("author_name", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("published", DateTime, nullable=False),
    Column("language", String(35)),   # the article's (articles.language), for its single-language feeds
    Index("ix_article_authors_author_status_published", "author_key", "status", "published", "article_id"),
    Index("ix_article_authors_author_language_status_published", "author_key", "language", "status", "published", "article_id"),
    Index("ix_article_authors_article", "article_id"),
)

slug_redirects = Table(
    "slug_redirects", metadata,
    Column("old_slug", String(80), primary_key=True),
    Column("article_id", String(128), ForeignKey("articles.id", ondelete="CASCADE"), nullable=False),
)

# A renamed section, tag or author key (feedsvc/ingest/rename.py): its old feed and listing URLs answer
# 301 to `new_key`'s. Chains are kept flat (a -> c after a -> b -> c); a scope that takes an old key
# anew (it has a scope_state row) wins over the redirect.
scope_redirects = Table(
    "scope_redirects", metadata,
    Column("kind", String(16), primary_key=True),
    Column("old_key", String(64), primary_key=True),
    Column("new_key", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Index("ix_scope_redirects_new_key", "kind", "new_key"),
)

# One row per feed scope ("site", "section:<key>", "tag:<key>", "author:<key>"): a change counter
# every process can read cheaply to know whether its rendered copy of a feed is still current.
scope_state = Table(
    "scope_state", metadata,
    Column("scope", String(80), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("modified_at", DateTime, nullable=False),
)

# The durable outbox of every notification a write owes (feedsvc/publish/websub.py): `kind` "websub"
# rows ping `hub_url` about the feed `topic_url`; "purge" rows ask the cache named by `hub_url`
# (feedsvc/publish/purge.py) to drop what `topic_url`, a surrogate key, tags.
websub_outbox = Table(
    "websub_outbox", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False, default="websub", server_default="websub"),
    Column("hub_url", Text, nullable=False),
    Column("topic_url", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("next_attempt_at", DateTime, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("sent_at", DateTime),
    Column("claim_token", String(32)),  # the sender holding the row until next_attempt_at (feedsvc/websub.py)
    Index("ix_websub_outbox_pending", "sent_at", "next_attempt_at"),
)

# Facts fixed once per store, by name: "id_authority", the host every guid and Atom id is minted under.
store_settings = Table(
    "store_settings", metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

partners = Table(
    "partners", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime, nullable=False),
    Column("revoked_at", DateTime),
    Column("profile", String(64)),  # the aggregator profile (feedsvc/profiles) its feeds follow; NULL: none
)

partner_usage = Table(
    "partner_usage", metadata,
    Column("partner_id", Integer, ForeignKey("partners.id", ondelete="CASCADE"), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("feed", String(300), primary_key=True),
    Column("requests", Integer, nullable=False, default=0),
    Column("not_modified", Integer, nullable=False, default=0),
    # Body bytes sent (0 for a 304 or a HEAD); counted with the rest in the desk's batched writes.
    Column("bytes", BigInteger, nullable=False, default=0, server_default="0"),
)

# The desk's counts (feedsvc/ops/desk_counters.py), one row per publication day (TIMEZONE), kept
# DESK_KEEP_DAYS. Each process adds its own increments with additive upserts, so workers add up.
desk_feed_days = Table(
    "desk_feed_days", metadata,
    Column("day", Date, primary_key=True),
    Column("feed", String(300), primary_key=True),   # the public feed's path: /feeds/section/desh/rss.xml
    Column("polls", Integer, nullable=False, default=0),          # answered 200
    Column("not_modified", Integer, nullable=False, default=0),   # answered 304
    Column("refused", Integer, nullable=False, default=0),        # answered 429
    Column("errors", Integer, nullable=False, default=0),         # answered 5xx
)

# The same counts per hour (UTC), kept DESK_KEEP_HOURS: the desk's "last 24 hours" is a sliding window.
desk_feed_hours = Table(
    "desk_feed_hours", metadata,
    Column("hour", DateTime, primary_key=True),      # naive UTC, on the hour
    Column("feed", String(300), primary_key=True),
    Column("polls", Integer, nullable=False, default=0),
    Column("not_modified", Integer, nullable=False, default=0),
    Column("refused", Integer, nullable=False, default=0),
    Column("errors", Integer, nullable=False, default=0),
)

# The last validation of each public feed document (`flask validate --all`), for the desk.
desk_validations = Table(
    "desk_validations", metadata,
    Column("feed", String(300), primary_key=True),   # the document's path: /feeds/rss.xml
    Column("checked_at", DateTime, nullable=False),  # naive UTC
    Column("problems", Text, nullable=False),        # JSON list of validate.problems.Problem.as_json(); [] is valid
)

# Items an aggregator profile left out of its feeds (feedsvc/render/profiles.py), the latest sighting of
# each (profile, item, rule); written with the desk's counts, dropped after DESK_KEEP_DAYS.
desk_left_out = Table(
    "desk_left_out", metadata,
    Column("profile", String(64), primary_key=True),
    Column("item", String(128), primary_key=True),   # the article id
    Column("rule", String(64), primary_key=True),
    Column("message", Text, nullable=False),
    Column("seen_at", DateTime, nullable=False),     # naive UTC
)

# Polls per reader family and feed, with the subscriber count the family last reported that day.
desk_reader_days = Table(
    "desk_reader_days", metadata,
    Column("day", Date, primary_key=True),
    Column("feed", String(300), primary_key=True),
    Column("family", String(32), primary_key=True),   # feedsvc/ops/user_agents.py
    Column("polls", Integer, nullable=False, default=0),
    Column("subscribers", Integer),     # None: the family reported none that day
    Column("reported_at", DateTime),    # naive UTC of that report: the latest wins when processes flush
)

# Distinct pollers per day and reader family: a digest of (day, address, User-Agent), never the address.
desk_pollers = Table(
    "desk_pollers", metadata,
    Column("day", Date, primary_key=True),
    Column("family", String(32), primary_key=True),
    Column("poller", String(32), primary_key=True),
)

LIVE = "published"
# A published record whose time (`published`, or `embargo_until`) has not come: stored, but as unknown
# as a draft everywhere, with no scope bumped, until feedsvc/publish/schedule.py makes it LIVE.
SCHEDULED = "scheduled"


@dataclass(frozen=True)
class ScopeMember:
    key: str
    name: str


@dataclass(frozen=True)
class ScopeWords:
    """How feeds and pages speak of one kind of scope; {name} is the section's, tag's or author's name."""
    feed_description: str   # after "<site name>: "
    heading: str            # a listing page's heading, and what leads its feeds' titles (render/feeds/scope.title_of)
    lead: str               # the line under it
    group: tuple[str, str]  # a list of such feeds (OPML, the feed directory): Hindi, English


@dataclass(frozen=True)
class ScopeKind:
    """A kind of feed scope besides the whole site: which article field names its members, where they
    are listed, and what feeds and pages call it.

    A keyed kind's scopes are "<name>:<key>" (a section, tag or author); `table` has one row per
    (key, article) with the article's `status` and `published`, so a scope pages through one index.
    A kind without keys is one scope, "<name>", of the articles whose boolean `field` is true, kept
    in the column `key` of `table` (the video scope). Its words are plain data kept here, in the one
    table of kinds, so adding a kind touches one place: render reads them (render/feeds/model.py
    SCOPE_WORDS) and the URL map derives its routes from the kinds (render/feeds/urls.py).
    """
    name: str          # section | tag | author | video
    field: str         # the Article attribute: one (key, name) item or a list of them; a bool without keys
    table: Table
    key: Column        # the scope's key in `table`; without keys, the flag of its members
    article_id: Column
    words: ScopeWords
    keyed: bool = True

    def members(self, article) -> list:
        """The article's (key, name) items of this kind: its section, its tags, its authors; ("", "")
        for a kind without keys that holds it."""
        value = getattr(article, self.field)
        if not self.keyed:
            return [ScopeMember("", "")] if value else []
        return value if isinstance(value, list) else [value]

    def holds(self, key: str = ""):
        """The filter on `table` of the rows of this kind's scope with `key`."""
        return self.key == key if self.keyed else self.key == true()


SCOPE_KINDS = {kind.name: kind for kind in (
    ScopeKind("section", "section", articles, articles.c.section_key, articles.c.id,
              ScopeWords("{name} विभाग की ताज़ा ख़बरें", "{name}", "{name} विभाग की ताज़ा ख़बरें",
                         ("विभाग", "Sections"))),
    ScopeKind("tag", "tags", article_tags, article_tags.c.tag_key, article_tags.c.article_id,
              ScopeWords("‘{name}’ से जुड़ी ताज़ा ख़बरें", "#{name}", "‘{name}’ से जुड़ी ख़बरें", ("विषय", "Tags"))),
    ScopeKind("author", "authors", article_authors, article_authors.c.author_key, article_authors.c.article_id,
              ScopeWords("{name} की लिखी ताज़ा ख़बरें", "{name}", "{name} की लिखी ख़बरें", ("लेखक", "Authors"))),
    ScopeKind("video", "has_video", articles, articles.c.has_video, articles.c.id,
              ScopeWords("वीडियो वाली ताज़ा ख़बरें", "वीडियो", "वीडियो वाली ताज़ा ख़बरें", ("वीडियो", "Video")),
              keyed=False),
)}
KEYED_KINDS = tuple(name for name, kind in SCOPE_KINDS.items() if kind.keyed)
WHOLE_KINDS = tuple(name for name, kind in SCOPE_KINDS.items() if not kind.keyed)


def scope_id(kind: str, key: str = "") -> str:
    """The store's name of a scope: "site", a kind without keys by its name ("video"), else "<kind>:<key>"."""
    return f"{kind}:{key}" if key else kind


def article_scopes(article, site_name: str = "") -> dict[str, str]:
    """Every feed scope an article is in, scope id -> its display name there: the site (named
    `site_name`), then its section, each tag, each author and the video scope, in that order."""
    scopes = {"site": site_name}
    for kind in SCOPE_KINDS.values():
        scopes.update((scope_id(kind.name, item.key), item.name) for item in kind.members(article))
    return scopes

def utc(dt: datetime) -> datetime:
    """Aware datetime -> naive UTC, the stored form."""
    return dt.astimezone(timezone.utc).replace(tzinfo=None)


def now_utc() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


