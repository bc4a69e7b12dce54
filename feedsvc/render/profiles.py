"""Aggregator profiles applied to a feed: the entries are built once, each profile shapes a copy.

    /feeds/profile/<name>/rss.xml, /feeds/profile/<name>/section/<key>/atom.xml, ...
        the public feed URLs (feeds/urls.py) under /feeds/profile/<name>, in the formats it allows
    /feeds/profile/<name>/feeds.opml   every scope's feed of one profile

`shape(profile, feed)` takes a public full-text Feed (scope.load_feed) and returns the profile's:
titles cut or replaced, summaries lengthened, HTML narrowed to its allow-list, images it cannot
use dropped, campaign parameters on links (never on ids), its namespaces, channel text within its
limits. An item that still breaks a rule (checks.item_problems) is left out, never served broken;
each one is logged and announced on `left_out` (counted by feedsvc/ops/metrics.py). `write`
then keeps the feed within the profile's byte budget, at whole items.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import nh3
from blinker import Namespace

from feedsvc.ingest.sanitize import plain_text
from feedsvc.profiles import Profile
from feedsvc.profiles.checks import ItemFacts, image_problems, item_problems
from feedsvc.profiles.text import cut, length
from feedsvc.render import feeds
from feedsvc.render.feeds.ext import MiEntryExtension, MiExtension, SnfExtension, WebfeedsExtension
from feedsvc.render.feeds.model import Entry, Feed, Scope
from feedsvc.render.feeds.urls import FEEDS, feed_path
from feedsvc.render.skips import LoggedOnce

log = logging.getLogger(__name__)

# Sent once per rule an item breaks when it is left out of a profile's feed; sender: the profile name;
# rule, item (the article id) and message (why) as keywords.
left_out = Namespace().signal("feedsvc.profile-item-left-out")
_logged = LoggedOnce(10_000)
PROFILE_FEEDS = f"{FEEDS}/profile"
URL_SCHEMES = {"http", "https", "mailto"}


# ---- URLs: the public feed paths, under /feeds/profile/<name> ----------------------------------

def profile_folder(name: str) -> str:
    return f"{PROFILE_FEEDS}/{name}"


def profile_feed_path(name: str, scope: Scope, fmt: str) -> str:
    return profile_folder(name) + feed_path(scope, fmt)[len(FEEDS):]


def profile_feed_url(name: str, scope: Scope, fmt: str, site_url: str) -> str:
    return site_url + profile_feed_path(name, scope, fmt)


def profile_opml_url(name: str, site_url: str) -> str:
    return f"{site_url}{profile_folder(name)}/feeds.opml"


def base_limit(profiles, default_limit: int) -> int:
    """How many articles to load once for every profile: enough for the largest window, and some
    to spare for items a profile leaves out."""
    wanted = [p.value("window", "max_count") or p.value("window", "min_count") or default_limit
              for p in profiles]
    return max([default_limit, *wanted]) * 3 // 2


# ---- namespaces ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Webfeeds:
    accent_color: str | None = None

    def register(self, fg, feed: Feed) -> None:
        fg.register_extension("webfeeds", WebfeedsExtension, atom=False, rss=True)
        fg.webfeeds.branding(icon=feed.site.icon, logo=feed.site.logo, accent_color=self.accent_color)

    def entry(self, fe, entry: Entry) -> None:
        pass


@dataclass(frozen=True)
class Snf:
    def register(self, fg, feed: Feed) -> None:
        fg.register_extension("snf", SnfExtension, atom=False, rss=True)
        fg.snf.logo(feed.site.logo)

    def entry(self, fe, entry: Entry) -> None:
        pass


@dataclass(frozen=True)
class Mi:
    def register(self, fg, feed: Feed) -> None:
        fg.register_extension("mi", MiExtension, MiEntryExtension, atom=False, rss=True)

    def entry(self, fe, entry: Entry) -> None:
        if entry.short_title:
            fe.mi.short_title(entry.short_title)


def extensions_of(profile: Profile) -> tuple:
    made = {"webfeeds": lambda: Webfeeds(profile.value("extensions", "accent_color")), "snf": Snf, "mi": Mi}
    return tuple(made[name]() for name in profile.value("extensions", "names", ()))


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
    minimum = profile.value("summary", "min")
    if not minimum or length(entry.summary) >= minimum or article is None:
        return entry.summary
    # Longer than the minimum by half again, so a cut at a word boundary still reaches it.
    return cut(plain_text(article.body_html), minimum * 3 // 2)


def _content(profile: Profile, entry: Entry) -> str | None:
    if not profile.value("text", "full", True) or entry.content_html is None:
        return None
    html = profile.rule("html")
    if not html:
        return entry.content_html
    return nh3.clean(entry.content_html, tags=set(html["tags"]),
                     attributes={tag: set(names) for tag, names in html.get("attributes", {}).items()},
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

def shape(profile: Profile, feed: Feed, *, fmt: str, self_url: str, now: datetime) -> Feed:
    """`feed` (public, full text, built once) as `profile` serves it in format `fmt` at `self_url`."""
    tag = profile.value("language", "tag")
    site = replace(feed.site, language=tag) if tag else feed.site
    entries = []
    for entry in feed.entries:
        article = feed.sources.get(entry.id)
        if article is not None and not article.syndicated_to(profile.name):
            continue   # the desk's choice, not a broken rule
        shaped = shape_entry(profile, entry, article)
        problems = item_problems(profile, facts_of(shaped), now=now, feed_language=site.language)
        if problems:
            _leave_out(profile, problems, article)
            continue
        entries.append(shaped)
    maximum = profile.value("window", "max_count")
    channel = profile.rule("channel")
    return replace(
        feed, site=site, entries=entries[:maximum] if maximum else entries,
        title=cut(feed.title, channel["title_max"]) if "title_max" in channel else feed.title,
        description=cut(feed.description, channel["description_max"]) if "description_max" in channel
        else feed.description,
        self_url=self_url, first_url=self_url, next_url=None,
        tombstones=feed.tombstones if profile.value("updates", "deletions", "tombstone") == "tombstone" else [],
        extensions=extensions_of(profile))


def _leave_out(profile: Profile, problems, article) -> None:
    version = (article.id, article.updated.isoformat()) if article is not None else (problems[0].item_id, "")
    for problem in problems:
        left_out.send(profile.name, rule=problem.rule, item=version[0], message=problem.message)
        if _logged.first((profile.name, problem.rule, *version)):
            log.warning("left out of the %s feeds: %s", profile.name, problem)


def write(profile: Profile, fmt: str, feed: Feed) -> bytes:
    """The feed in `fmt`, with as many leading whole items as fit the profile's byte budget."""
    body = feeds.write(fmt, feed)
    budget = profile.value("bytes", "max")
    if not budget or len(body) <= budget or not feed.entries:
        return body
    fits, too_many = 0, len(feed.entries)
    best = feeds.write(fmt, replace(feed, entries=[]))
    guess = max(1, len(feed.entries) * budget // len(body))  # items are of similar size: start near the answer
    while too_many - fits > 1:
        count = guess if fits < guess < too_many else (fits + too_many) // 2
        attempt = feeds.write(fmt, replace(feed, entries=feed.entries[:count]))
        if len(attempt) <= budget:
            fits, best = count, attempt
        else:
            too_many = count
        guess = 0
    return best
