"""What article and listing pages show, apart from HTTP: Hindi dates, page models, related articles, AMP.

Plain functions over Articles, the publication's settings (`feeds.Site`) and the store. The
blueprint (feedsvc/web/pages.py) chooses the page and answers; templates/pages/ lays out the
canonical pages; feedsvc/render/amp.py writes the AMP document.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from typing import Callable, Iterable
from urllib.parse import quote
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection

from feedsvc import store
from feedsvc.ingest import images
from feedsvc.ingest.frames import DEFAULT_FRAME_HOSTS, KNOWN_PLAYERS, Player, embed_label
from feedsvc.ingest.players import youtube_id, youtube_start
from feedsvc.ingest.records import Article
from feedsvc.ingest.sanitize import shown_in
from feedsvc.ingest.urls import uri
from feedsvc.render import amp, hindi_dates, jsonld
from feedsvc.render.feeds import scopes_of
from feedsvc.render.feeds.model import SCOPE_WORDS, Scope, Site
from feedsvc.render.feeds.scope import feed_urls
from feedsvc.render.feeds.urls import listing_path
from feedsvc.render.links import absolute, resolved
from feedsvc.render.pictures import MAIN_WIDTH_SIZES, body_pictures, body_srcset
from feedsvc.render.skips import each_rendered
from feedsvc.render.translations import Alternate, alternates

# CLDR's `hi` names the month and the part of the day: 23 जुलाई 2025, 3:30 दोपहर (render/hindi_dates.py)
DATE_PATTERN = "d MMMM y, h:mm B"
RELATED_LIMIT = 4
LISTING_LIMIT = 20
HOME_HEADING = "ताज़ा ख़बरें"
POST_LABELS = {"twitter": "X (ट्विटर) पर यह पोस्ट देखें", "instagram": "Instagram पर यह पोस्ट देखें",
               "facebook": "Facebook पर यह पोस्ट देखें"}
VIDEO_LABELS = {"youtube": "YouTube पर वीडियो देखें", "vimeo": "Vimeo पर वीडियो देखें"}


# ---- dates -----------------------------------------------------------------------------------

@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def hindi_datetime(moment: datetime, zone: str = "Asia/Kolkata", pattern: str = DATE_PATTERN) -> str:
    """'23 जुलाई 2025, 3:30 दोपहर IST': CLDR's `hi` in the newsroom's zone, with the zone as it writes it."""
    # The text depends only on the instant: remembered by it, in UTC (an aware time's own offset, or a
    # fold, would otherwise make equal keys of different instants).
    return _hindi_datetime(moment if moment.tzinfo is None else moment.astimezone(timezone.utc), zone, pattern)


# Formatting (then Babel's) was a tenth of a canonical page's time, and most dates a page shows (its related
# articles') are the same on every page of its section.
@lru_cache(maxsize=4096)
def _hindi_datetime(moment: datetime, zone: str, pattern: str) -> str:
    tz = _zone(zone)
    # A naive time is UTC's, as Babel took it (tests/test_hindi_dates.py compares); the zone's name keeps
    # what astimezone makes of it.
    local = (moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)).astimezone(tz)
    return f"{hindi_dates.formatted(local, pattern)} {moment.astimezone(tz).tzname()}"


def rfc3339(moment: datetime) -> str:
    """To the second, with the record's own offset: 2025-07-23T15:30:00+05:30."""
    return moment.replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class Stamp:
    """A moment as people read it (Hindi) and as machines read it (RFC 3339, for <time datetime>)."""
    iso: str
    text: str

    @classmethod
    def of(cls, moment: datetime, zone: str) -> "Stamp":
        return cls(rfc3339(moment), hindi_datetime(moment, zone))


# ---- URLs ------------------------------------------------------------------------------------

def article_path(slug: str) -> str:
    return f"/articles/{quote(slug)}"


def amp_path(slug: str) -> str:
    return f"/amp/{quote(slug)}"


@dataclass(frozen=True)
class ScopeLink:
    """A section, tag or author as a page shows it: its name, its listing page and its feeds."""
    scope: Scope
    href: str
    feeds: dict[str, str]  # format name -> feed URL

    @property
    def name(self) -> str:
        return self.scope.name

    @property
    def rss(self) -> str:
        return self.feeds["rss"]

    @classmethod
    def of(cls, scope: Scope, site: Site) -> "ScopeLink":
        return cls(scope, site.url + listing_path(scope), feed_urls(scope, site.url))


def section_link(article: Article, site: Site) -> ScopeLink:
    return ScopeLink.of(Scope("section", article.section.key, article.section.name), site)


def author_links(article: Article, site: Site) -> list[ScopeLink]:
    return [ScopeLink.of(Scope("author", a.key, a.name), site) for a in article.authors]


# ---- article pages ---------------------------------------------------------------------------

@dataclass(frozen=True)
class EmbedView:
    """One entry of a record's `embeds` as the canonical page shows it.

    kind "video": a privacy-enhanced player (youtube-nocookie.com), sandboxed as body players are
    (frames.py), plus a link; "post": a quote block linking to the post (no third-party script);
    "link": a plain link.
    """
    kind: str
    url: str
    title: str
    label: str
    frame_url: str | None = None
    player: Player | None = None


def embed_view(embed: dict) -> EmbedView:
    provider, url = embed.get("provider", "other"), uri(embed["url"])
    title = embed.get("title") or ""
    video = youtube_id(url) if provider == "youtube" else None
    if video:
        start = youtube_start(url)
        player = f"https://www.youtube-nocookie.com/embed/{quote(video)}" + (f"?start={start}" if start else "")
        return EmbedView("video", url, title, VIDEO_LABELS["youtube"], player,
                         KNOWN_PLAYERS["www.youtube-nocookie.com/embed"])
    if provider in POST_LABELS:
        return EmbedView("post", url, title, POST_LABELS[provider])
    return EmbedView("link", url, title, embed_label(provider, url))


def embeds_to_show(article: Article) -> list[dict]:
    """The record's embeds that the body does not already show: each embed appears once."""
    return [embed for embed in article.embeds if not shown_in(embed["url"], article.body_html)]


@dataclass(frozen=True)
class Teaser:
    """An article in a list (listing pages, related articles)."""
    article: Article
    href: str
    published: Stamp
    section: ScopeLink


def teaser(article: Article, site: Site) -> Teaser:
    return Teaser(resolved(article, site.url), site.url + article_path(article.slug), Stamp.of(article.published, site.timezone),
                  section_link(article, site))


@dataclass
class ArticlePage:
    """Everything the canonical page of one article shows."""
    article: Article
    canonical_url: str
    amp_url: str
    published: Stamp
    updated: Stamp | None  # only when the article was changed after publication
    section: ScopeLink
    tags: list[ScopeLink]
    authors: list[ScopeLink]
    embeds: list[EmbedView]
    corrections: list[tuple[Stamp | None, str]]
    related: list[Teaser]
    json_ld: dict
    open_graph: list[tuple[str, str]]
    feed_scopes: list[Scope] = field(default_factory=list)
    picture: Picture | None = None  # the lead image, when the article has one
    alternates: list[Alternate] = field(default_factory=list)  # hreflang: itself and its linked translations


def related_articles(conn: Connection, article: Article, limit: int = RELATED_LIMIT) -> list[Article]:
    """The newest other live articles of the article's section."""
    return related_among(section_newest(conn, article.section.key, limit), article, limit)


def section_newest(conn: Connection, section_key: str, limit: int = RELATED_LIMIT) -> list[Article]:
    """What a page's related articles are taken from: its section's newest, one more than it lists
    (the page's own article may be among them)."""
    return store.newest(conn, f"section:{section_key}", limit + 1)


def related_among(newest: list[Article], article: Article, limit: int = RELATED_LIMIT) -> list[Article]:
    return [other for other in newest if other.id != article.id][:limit]


def news_article_json_ld(article: Article, site: Site) -> dict:
    """schema.org NewsArticle, shared by the canonical and the AMP page; an author's URL is their own
    page when the record gives one, else their page here."""
    authors = zip(article.authors, author_links(article, site), strict=True)
    return jsonld.news_article(
        headline=article.title, url=uri(article.url), published=rfc3339(article.published),
        modified=rfc3339(article.updated),
        authors=[{"name": a.name, "url": uri(a.url or link.href)} for a, link in authors],
        publisher_name=site.name, publisher_logo=site.logo,
        images=[uri(url) for url in structured_data_images(article.image)], description=article.summary,
        language=article.language, corrections=article.corrections)


def structured_data_images(image: dict | None) -> list[str]:
    """The NewsArticle's images: its 16x9, 4x3 and 1x1 renditions, or the image as given."""
    if not image:
        return []
    return [r["url"] for r in (images.rendition(image, n) for n in images.STRUCTURED_DATA) if r] or [image["url"]]


@dataclass(frozen=True)
class Picture:
    """A lead image as <picture>: a <source> per modern format, an <img> in JPEG for the rest."""
    src: str
    width: int | None
    height: int | None
    srcset: str = ""
    sources: tuple[tuple[str, str], ...] = ()   # (MIME type, srcset), best compression first
    sizes: str = MAIN_WIDTH_SIZES

    @classmethod
    def of(cls, image: dict) -> "Picture":
        lead = images.rendition(image, "lead")
        if lead is None:
            return cls(image["url"], image.get("width"), image.get("height"))
        sources = tuple((images.FORMATS[fmt][1], images.srcset(image, fmt))
                        for fmt in images.rendition_formats(image) if fmt != "jpeg")
        return cls(lead["url"], lead["width"], lead["height"], images.srcset(image, "jpeg"), sources)


def open_graph(article: Article, site: Site, section: ScopeLink) -> list[tuple[str, str]]:
    """(property, content) pairs of the Open Graph and article: meta tags."""
    tags = [("og:type", "article"), ("og:site_name", site.name), ("og:locale", "hi_IN"),
            ("og:title", article.title), ("og:description", article.summary), ("og:url", uri(article.url))]
    if article.image:
        image = article.image
        # The social rendition (1200x630, the size Facebook and X preview) when ingest made one.
        shown = images.rendition(image, "social") or image
        tags.append(("og:image", uri(shown["url"])))
        if shown.get("type"):
            tags.append(("og:image:type", shown["type"]))
        if shown.get("width") and shown.get("height"):
            tags += [("og:image:width", str(shown["width"])), ("og:image:height", str(shown["height"]))]
        tags.append(("og:image:alt", image.get("caption") or article.title))
    tags += [("article:published_time", rfc3339(article.published)),
             ("article:modified_time", rfc3339(article.updated)),
             ("article:section", section.name)]
    tags += [("article:tag", tag.name) for tag in article.tags]
    return tags


def canonical_href(site: Site) -> Callable[[Article], str]:
    """An article's canonical URL as documents write it (a URI), for hreflang alternates."""
    return lambda version: uri(absolute(version.url, site.url))


def amp_href(site: Site) -> Callable[[Article], str]:
    """An article's AMP page: AMP pages link the AMP pages of its translations, as the canonical
    pages link theirs (https://amp.dev/documentation/examples/guides/internationalization/)."""
    return lambda version: site.url + amp_path(version.slug)


def article_page(article: Article, site: Site, related: list[Article], translations: Iterable[Article] = ()) -> ArticlePage:
    """`translations`: live articles among those the record lists (render/translations.py picks the linked ones)."""
    shown_alternates = alternates(article, translations, canonical_href(site))
    article = resolved(article, site.url)
    article.body_html = body_pictures(article.body_html, article.body_images)  # `resolved` made a copy
    section, authors = section_link(article, site), author_links(article, site)
    tags = [ScopeLink.of(Scope("tag", t.key, t.name), site) for t in article.tags]
    # Edits within the minute of publication are not news; the Hindi text shows minutes only.
    changed = (article.updated - article.published).total_seconds() >= 60
    updated = Stamp.of(article.updated, site.timezone) if changed else None
    return ArticlePage(
        article=article, canonical_url=uri(article.url), amp_url=site.url + amp_path(article.slug),
        published=Stamp.of(article.published, site.timezone), updated=updated, section=section, tags=tags,
        authors=authors,
        embeds=[embed_view(e) for e in embeds_to_show(article)], corrections=correction_notes(article, site),
        related=each_rendered("related_articles", related, lambda other: teaser(other, site)),
        json_ld=news_article_json_ld(article, site), open_graph=open_graph(article, site, section),
        feed_scopes=scopes_of(article), picture=Picture.of(article.image) if article.image else None,
        alternates=shown_alternates)


def correction_notes(article: Article, site: Site) -> list[tuple[Stamp | None, str]]:
    """(when, what) of each correction, for the dated note of the canonical and the AMP page."""
    return [(_correction_stamp(c.get("date"), site.timezone), c.get("text", "")) for c in article.corrections]


def _correction_stamp(value: str | None, zone: str) -> Stamp | None:
    if not value:
        return None
    try:
        return Stamp.of(datetime.fromisoformat(value), zone)
    except ValueError:
        return None


def amp_page(article: Article, site: Site, frame_hosts: tuple[str, ...] = DEFAULT_FRAME_HOSTS,
             translations: Iterable[Article] = ()) -> str:
    """The AMP document of an article: its body through amp.convert_body, its embeds as AMP components.

    `frame_hosts` is the FRAME_HOSTS setting: which body frames stay players; `translations` as for article_page."""
    shown_alternates = alternates(article, translations, amp_href(site))
    article = resolved(article, site.url)
    published = Stamp.of(article.published, site.timezone)
    image = dict(article.image, url=uri(article.image["url"])) if article.image else {}
    sizes = {image["url"]: (image["width"], image["height"])} if image.get("width") and image.get("height") else {}
    # The body's images as ingest probed them: AMP needs every amp-img's real size to reserve its box.
    sizes.update((src, (found["width"], found["height"])) for src, found in article.body_images.items())
    srcsets = {src: body_srcset(found, "jpeg") for src, found in article.body_images.items()}
    return amp.amp_document(
        headline=article.title, canonical_url=uri(article.url),
        body=amp.convert_body(article.body_html, sizes, frame_hosts, srcsets),
        json_ld=news_article_json_ld(article, site), lang=article.language, lead_image=image or None,
        byline=", ".join(a.name for a in article.authors), published_iso=published.iso,
        published_text=published.text, site_name=site.name, site_url=site.url + "/",
        embeds=[amp.embed_to_amp(e.get("provider", "other"), e["url"], e.get("title", ""))
                for e in embeds_to_show(article)],
        alternates=[(a.hreflang, a.href) for a in shown_alternates], corrections=correction_notes(article, site))


# ---- listing pages ---------------------------------------------------------------------------

@dataclass
class ListingPage:
    """The newest articles of the site or of one section, tag or author, one page at a time."""
    scope: ScopeLink
    heading: str
    lead: str
    teasers: list[Teaser]
    next_href: str | None

    @property
    def feed_scopes(self) -> list[Scope]:
        return [] if self.scope.scope.kind == "site" else [self.scope.scope]


def listing_page(scope: Scope, articles: list[Article], site: Site, *, limit: int = LISTING_LIMIT) -> ListingPage:
    """`articles` is one page of up to `limit` (+1 to learn whether an older page exists)."""
    link = ScopeLink.of(scope, site)
    shown = articles[:limit]
    next_href = None
    if len(articles) > limit:
        last = shown[-1]
        next_href = f"{link.href}?after={store.Cursor(store.utc(last.published), last.id).token()}"
    if scope.kind == "site":
        heading, lead = HOME_HEADING, site.description
    else:
        words = SCOPE_WORDS[scope.kind]
        heading, lead = words.heading.format(name=scope.name), words.lead.format(name=scope.name)
    return ListingPage(link, heading, lead, each_rendered("listing_page", shown, lambda a: teaser(a, site)), next_href)
