"""What the RSS and Atom writers share: a feedgen FeedGenerator filled from a Feed, entry by entry."""
from __future__ import annotations

from feedgen.entry import FeedEntry
from feedgen.feed import FeedGenerator

from feedsvc.render.feeds.ext import (
    LanguageEntryExtension,
    LanguageExtension,
    MediaEntryExtension,
    MediaExtension,
    StylesheetExtension,
)
from feedsvc.render.feeds.model import Entry, Feed, Image
from feedsvc.render.feeds.pubdate import PubDateEntryExtension, PubDateExtension

GENERATOR = "feedsvc"


def new_generator(feed: Feed) -> FeedGenerator:
    """A FeedGenerator with the feed-level fields both formats carry."""
    fg = FeedGenerator()
    fg.register_extension("stylesheet", StylesheetExtension)
    # First of the entry extensions: its <pubDate> goes where feedgen's own would (pubdate.py).
    fg.register_extension("pub_date", PubDateExtension, PubDateEntryExtension, atom=False, rss=True)
    fg.register_extension("media", MediaExtension, MediaEntryExtension)
    fg.register_extension("entry_language", LanguageExtension, LanguageEntryExtension)
    if feed.stylesheet:
        fg.stylesheet.href(feed.stylesheet)
    fg.id(feed.id)
    fg.title(feed.title)
    fg.description(feed.description)
    fg.language(feed.language)
    fg.updated(feed.updated)
    fg.rights(feed.site.copyright)
    fg.generator(GENERATOR)
    for extension in feed.extensions:
        extension.register(fg, feed)
    return fg


def add_entry_basics(fg: FeedGenerator, entry: Entry, extensions: tuple = ()) -> FeedEntry:
    """Append one entry with everything RSS and Atom write alike, and its profile `extensions`'
    elements; the caller adds the rest, the publication date included (RSS's from pubdate.py)."""
    fe = fg.add_entry(order="append")
    fe.guid(entry.id, permalink=False)
    fe.title(entry.title)
    fe.link(href=entry.url, rel="alternate", type="text/html")
    fe.summary(entry.summary)
    if entry.content_html is not None:
        fe.content(entry.content_html, type="html")
    fe.updated(entry.updated)
    fe.entry_language.language(entry.language)
    fe.category([{"term": c.term, "label": c.label, "scheme": c.scheme} for c in entry.categories])
    if entry.image:
        add_image(fe, entry.image)
    for video in entry.videos:
        fe.media.video(video.player, file=video.file, type=video.type, duration=video.duration, title=video.title,
                       thumbnail=video.thumbnail, thumbnail_width=video.thumbnail_width,
                       thumbnail_height=video.thumbnail_height)
    for extension in extensions:
        extension.entry(fe, entry)
    return fe


def add_image(fe: FeedEntry, image: Image) -> None:
    """The lead image as Media RSS: the image (its lead rendition) and its thumbnail rendition."""
    fe.media.content(image.url, type=image.type, width=image.width, height=image.height, file_size=image.length,
                     description=image.caption, credit=image.credit)
    thumbnail = image.thumbnail or image
    fe.media.thumbnail(thumbnail.url, width=thumbnail.width, height=thumbnail.height)
