"""Article -> Entry: what every feed format shows of one article.

Feed readers show little beyond plain HTML: an <iframe> player is dropped by most of them, so
players become a linked thumbnail (YouTube, at its start time) or a link naming the provider, a
<video>/<audio> its poster and a link to the file, and the record's embeds not already in the body
are shown the same way. Every URL is written as a URI (RFC 3987 §3.1). The lead image goes first
in the content, for readers that ignore Media RSS.
"""
from __future__ import annotations

import hashlib
import html
import mimetypes
import re
from datetime import datetime
from functools import lru_cache
from types import EllipsisType
from urllib.parse import urlsplit

import lxml.html
import orjson

from feedsvc.ingest.frames import embed_label
from feedsvc.ingest.images import rendition
from feedsvc.ingest.players import youtube_id, youtube_watch_url
from feedsvc.ingest.records import Article
from feedsvc.ingest.sanitize import plain_text, shown_in
from feedsvc.ingest.urls import uri as output_url  # every URL a feed writes is a URI (RFC 3987 §3.1)
from feedsvc.ingest.videos import YOUTUBE_THUMBNAIL, videos_in
from feedsvc.render.feeds.model import Category, Entry, Image, Person, Site, Video
from feedsvc.render.feeds.urls import kind_directory_path
from feedsvc.render.hindi_dates import formatted as hindi_date
from feedsvc.render.links import resolved

# The date in every tag: URI this service mints (RFC 4151). Changing it would change every id.
TAG_DATE = "2025"


def _attr(value: str) -> str:
    """Text for a double-quoted HTML attribute; apostrophes stay as they are (readable in the source)."""
    return html.escape(value, quote=False).replace('"', "&quot;")


def entry_id(article_id: str, site: Site) -> str:
    """The permanent id of an article in every feed: built from the record id (ASCII by the record
    schema) and the store's id authority (feedsvc/web/id_authority.py), never from the URL it is
    served at, so writing URLs as URIs (RFC 3987 §3.1) or moving the site leaves every id as it was.
    The authority is ASCII (a host name, checked in config.py; an IDN site gives its A-label)."""
    return f"tag:{site.authority},{TAG_DATE}:articles/{article_id}"


def entry_from_article(article: Article, site: Site, *, full_text: bool) -> Entry:
    article = resolved(article, site.url)
    image = lead_image(article)
    players = has_players(article.body_html)
    return Entry(
        id=entry_id(article.id, site),
        url=output_url(article.url),
        title=article.title,
        summary=article.summary,
        content_html=feed_html(article, image, players=players) if full_text else None,
        published=_to_the_second(article.published),
        updated=_to_the_second(article.updated),
        authors=[_person(a.name, a.url) for a in article.authors],
        categories=categories_of(article, site),
        image=image,
        language=article.language,
        videos=videos_of(article, image, players=players),
    )


def _to_the_second(when: datetime) -> datetime:
    # Stored times are whole seconds already: replace() would copy each one for nothing.
    return when.replace(microsecond=0) if when.microsecond else when


def videos_of(article: Article, image: Image | None = None, *, players: bool | None = None) -> list[Video]:
    """The article's videos (ingest/videos.py: player embeds and frames, its own <video> files), so
    that feeds say the item carries a video; a file without a poster shows the lead image's thumbnail.
    `players` is has_players(article.body_html) when the caller has it already."""
    fallback = (image.thumbnail or image) if image else None
    videos = []
    # A body without player markup holds no frame or file for videos_in to find: only the embeds count.
    body = article.body_html if (has_players(article.body_html) if players is None else players) else ""
    for found in videos_in(article.embeds, body, article.title):
        thumbnail = (found.thumbnail, found.thumbnail_width, found.thumbnail_height) if found.thumbnail else \
            (fallback.url, fallback.width, fallback.height) if fallback else (None, None, None)
        videos.append(Video(output_url(found.player) if found.player else None, found.title,
                            output_url(thumbnail[0]) if thumbnail[0] else None, thumbnail[1], thumbnail[2],
                            file=output_url(found.file) if found.file else None, type=found.type,
                            duration=found.duration))
    return videos


def categories_of(article: Article, site: Site) -> list[Category]:
    return [_category(article.section.key, article.section.name, site.url, "section")] + [
        _category(t.key, t.name, site.url, "tag") for t in article.tags]


# Frozen values shared by every entry that has them: the same sections, tags and authors recur in
# every feed, and building them was a tenth of an entry's cost.
@lru_cache(maxsize=4096)
def _category(key: str, name: str, site_url: str, kind: str) -> Category:
    return Category(key, name, site_url + kind_directory_path(kind))


@lru_cache(maxsize=4096)
def _person(name: str, url: str | None) -> Person:
    return Person(name, output_url(url) if url else url)


def lead_image(article: Article) -> Image | None:
    """The article's image as feeds show it: its lead rendition (a JPEG of the configured lead size)
    when ingest made one, else the image as the record gives it; with its thumbnail and banner renditions."""
    image = article.image
    if not image:
        return None
    try:
        return _lead_image(_ByValue(image))
    except TypeError:   # a value JSON cannot hold: not remembered, still shown
        return _image_of(image)


class _ByValue:
    """A stored image (a dict) keyed by a digest of its JSON, so that lru_cache can remember what it
    gives: an article reappears in many feeds, and every build parsed its image afresh."""
    __slots__ = ("value", "key")

    def __init__(self, value: dict):
        # In the stored key order, not sorted (sorting took half the time): an equal image stored in
        # another order only makes a second entry, and both give the same Image. The digest, not the
        # JSON itself: a key stays in the cache, and 512 JSON texts of images with their renditions
        # were 2 MiB per worker (tracemalloc after the worker-rss-1m load, 100,000 articles).
        self.value: dict | None = value
        self.key = hashlib.blake2b(orjson.dumps(value), digest_size=16).digest()

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ByValue) and self.key == other.key


# 512 images, not 2048: an entry kept here held its stored image twice (the dict and its JSON) with the
# Image, about 5 KB, so 2048 were 10 MiB per worker once full (bench row worker-rss-1m); building one
# afresh (with its <figure>) costs 16 µs, and 276 cold feeds at 100,000 articles took the same CPU
# with either size (time.process_time, 15.1-16.9 s, hits 9,919 of 13,330 lookups with 512). It now
# keeps the Image and a 16-byte digest only.
@lru_cache(maxsize=512)
def _lead_image(image: _ByValue) -> Image:
    value, image.value = image.value, None   # the cache keeps this key: without its dict (another 2 MiB)
    assert value is not None
    return _image_of(value)   # Image is frozen: one instance may serve every entry


def _image_of(image: dict) -> Image:
    lead = rendition(image, "lead") or {"url": image["url"], "width": image.get("width"),
                                         "height": image.get("height"), "length": image.get("length"),
                                         "type": image.get("type") or _image_type(image["url"])}
    # Caption and credit may carry markup from the CMS; every feed shows them as plain text
    # (media:description type="plain", media:credit, the figure's alt and figcaption).
    return Image(**_image_fields(lead), caption=plain_text(image.get("caption", "")),
                 credit=plain_text(image.get("credit", "")), thumbnail=_rendition_image(image, "thumbnail"),
                 banner=_rendition_image(image, "social"))


def _image_fields(found: dict) -> dict:
    return {"url": output_url(found["url"]), "width": found["width"], "height": found["height"],
            "type": found["type"], "length": found["length"]}


def _rendition_image(image: dict, name: str) -> Image | None:
    found = rendition(image, name)
    return Image(**_image_fields(found)) if found else None


@lru_cache(maxsize=64)
def _extension_type(extension: str) -> str | None:
    return mimetypes.types_map.get(extension.lower())


def _image_type(url: str) -> str | None:
    path = urlsplit(url).path
    return _extension_type(path[path.rfind("."):]) if "." in path.rsplit("/", 1)[-1] else None


# ---- content ----------------------------------------------------------------------------------

def feed_html(article: Article, image: Image | None | EllipsisType = ..., *, players: bool | None = None) -> str:
    """The article body as feed content: lead image, body with players replaced, embeds, corrections.

    `image` is the article's lead_image and `players` has_players(article.body_html) when the
    caller has them already (`...`: not looked up yet, as None means the article has none).
    """
    body = article.body_html
    if has_players(body) if players is None else players:
        body = _replace_iframes(_replace_players(body))
    parts = []
    if image is ...:
        image = lead_image(article)
    if image:
        src, figure = _figure(image)
        if src not in body:
            parts.append(figure)
    parts.append(body)
    parts.extend(f"<p>{embed_link(e['provider'], e['url'], e.get('title', ''))}</p>"
                 for e in article.embeds if not shown_in(e["url"], body))
    if article.corrections:
        parts.append(_corrections(article.corrections))
    return "".join(parts)


def embed_link(provider: str, url: str, title: str = "") -> str:
    """A player or post as readers can show it: a linked thumbnail for YouTube (at its start time),
    else a link naming the provider."""
    watch = youtube_watch_url(url) if provider in ("youtube", "other") else None
    if watch is not None:   # a YouTube video: `url` names one
        video = youtube_id(url)
        alt = _attr(title or "YouTube वीडियो")
        caption = html.escape(f"▶ {embed_label('youtube', url)}" + (f": {title}" if title else ""), quote=False)
        return (f'<a href="{_attr(watch)}"><img src="{YOUTUBE_THUMBNAIL.format(id=video)}" width="480" height="360" '
                f'alt="{alt}"><br>{caption}</a>')
    label = embed_label(provider, url)
    text = f"▶ {label}: {title}" if title else f"▶ {label}"
    return f'<a href="{_attr(output_url(url))}">{html.escape(text, quote=False)}</a>'


def _provider_of(src: str) -> tuple[str, str]:
    """(provider, page URL) of a player URL: the page a reader can open, not the bare player."""
    watch = youtube_watch_url(src)
    if watch is not None:
        return "youtube", watch
    parts = urlsplit(src)
    if parts.hostname == "player.vimeo.com" and parts.path.startswith("/video/"):
        return "vimeo", "https://vimeo.com/" + parts.path[len("/video/"):].strip("/")
    return "other", src


# Any element feeds rewrite (_replace_players, _replace_iframes) or find videos in (videos_in).
# Most bodies hold none: one search for all three costs what one `"<video" in body` does, as
# Devanagari makes the body a two-byte string that str's substring search walks slowly; the five
# such tests an entry made were a fifth of building it.
_PLAYER_MARKUP = re.compile(r"<(?:video|audio|iframe)")


def has_players(body_html: str) -> bool:
    """Whether "<video", "<audio" or "<iframe" occurs in the body: where none does, the players and
    frames are left as they are and no video is found in it."""
    return _PLAYER_MARKUP.search(body_html) is not None


# <video>/<audio> as the sanitiser writes them (attribute values double-quoted, every element closed).
_PLAYER = re.compile(r'<(video|audio)((?:[^>"]|"[^"]*")*)>(.*?)</\1>', re.DOTALL)
_PLAYER_ATTRIBUTE = re.compile(r'\s(src|poster)="([^"]*)"')
PLAYER_LABELS = {"video": "▶ वीडियो देखें", "audio": "▶ ऑडियो सुनें"}


def _replace_players(body: str) -> str:
    """Each <video>/<audio>: its poster linked to its file and a link, as readers show no players."""
    return _PLAYER.sub(_player_link, body) if "<video" in body or "<audio" in body else body


def _player_link(found: re.Match) -> str:
    tag, own, inner = found.groups()
    attributes = dict(_PLAYER_ATTRIBUTE.findall(own))
    sources = [value for name, value in _PLAYER_ATTRIBUTE.findall(inner) if name == "src"]
    src = attributes.get("src") or next(iter(sources), "")
    poster = attributes.get("poster")
    if not src:
        return f'<p><img src="{poster}" alt=""></p>' if poster else ""
    image = f'<img src="{poster}" alt=""><br>' if poster else ""
    return f'<p><a href="{src}">{image}{PLAYER_LABELS[tag]}</a></p>'


def _replace_iframes(body: str) -> str:
    if "<iframe" not in body:
        return body
    root = lxml.html.fragment_fromstring(body, create_parent="div")
    for iframe in list(root.iter("iframe")):
        src = iframe.get("src", "")
        if src.startswith("https://"):
            provider, page = _provider_of(src)
            replacement = lxml.html.fragment_fromstring(embed_link(provider, page, iframe.get("title", "")))
            replacement.tail = iframe.tail
            iframe.getparent().replace(iframe, replacement)
        else:
            # The sanitiser dropped its source (not https, or srcdoc): nothing to link to.
            iframe.drop_tree()
    return html.escape(root.text or "", quote=False) + "".join(
        lxml.html.tostring(child, encoding="unicode") for child in root)


@lru_cache(maxsize=512)   # as _lead_image, whose instances it is keyed by
def _figure(image: Image) -> tuple[str, str]:
    """(the image URL as an attribute value, the <figure> that shows it): remembered per image, as
    lead_image hands out one instance per stored image."""
    size = "".join(f' {name}="{value}"' for name, value in (("width", image.width), ("height", image.height))
                   if value)
    caption = " — ".join(part for part in (image.caption, image.credit) if part)
    figcaption = f"<figcaption>{html.escape(caption, quote=False)}</figcaption>" if caption else ""
    src = _attr(image.url)
    return src, f'<figure><img src="{src}" alt="{_attr(image.caption)}"{size}>{figcaption}</figure>'


def _corrections(corrections: list[dict]) -> str:
    items = "".join(
        f'<li><time datetime="{_attr(c["date"])}">'
        f'{hindi_date(datetime.fromisoformat(c["date"]), "d MMMM y")}</time>: '
        f"{html.escape(c['text'], quote=False)}</li>"
        for c in corrections)
    return f"<h3>सुधार (Corrections)</h3><ul>{items}</ul>"
