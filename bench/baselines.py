"""The same feed built other ways, to measure feedsvc's writers against: direct lxml, plain feedgen, Django.

Every builder takes the same stored articles (store.newest) and writes the same elements feedsvc's RSS
carries: channel title/link/description/language/lastBuildDate/ttl/image/atom:link self, and per item
title, link, guid, description (summary), content:encoded (the feed's full HTML, entries.feed_html,
shared so the content is identical), dc:creator per author, categories, pubDate, media:content and
media:thumbnail. Only the writing differs.
"""
from __future__ import annotations

from datetime import datetime, timezone
from email.utils import format_datetime

from lxml import etree

from feedsvc.ingest.records import Article
from feedsvc.render.feeds.entries import entry_id, feed_html
from feedsvc.render.feeds.model import Site

CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"
DC_NS = "http://purl.org/dc/elements/1.1/"
MEDIA_NS = "http://search.yahoo.com/mrss/"
ATOM_NS = "http://www.w3.org/2005/Atom"
NSMAP = {"content": CONTENT_NS, "dc": DC_NS, "media": MEDIA_NS, "atom": ATOM_NS}


def _now() -> datetime:
    return datetime(2025, 11, 1, tzinfo=timezone.utc)


def _sub(parent, tag: str, text: str | None = None, **attributes):
    element = etree.SubElement(parent, tag, {k: str(v) for k, v in attributes.items() if v is not None})
    if text is not None:
        element.text = text
    return element


def lxml_rss(site: Site, articles: list[Article]) -> bytes:
    """RSS 2.0 written element by element with lxml.etree."""
    rss = etree.Element("rss", version="2.0", nsmap=NSMAP)
    channel = _sub(rss, "channel")
    _sub(channel, "title", site.name)
    _sub(channel, "link", f"{site.url}/")
    _sub(channel, "description", site.description)
    _sub(channel, f"{{{ATOM_NS}}}link", href=f"{site.url}/feeds/rss.xml", rel="self", type="application/rss+xml")
    _sub(channel, "language", site.language)
    _sub(channel, "lastBuildDate", format_datetime(_now()))
    _sub(channel, "ttl", str(site.ttl_minutes))
    image = _sub(channel, "image")
    _sub(image, "url", site.logo), _sub(image, "title", site.name), _sub(image, "link", f"{site.url}/")
    for article in articles:
        item = _sub(channel, "item")
        _sub(item, "title", article.title)
        _sub(item, "link", article.url)
        _sub(item, "guid", entry_id(article.id, site), isPermaLink="false")
        _sub(item, "description", article.summary)
        _sub(item, f"{{{CONTENT_NS}}}encoded", feed_html(article))
        for author in article.authors:
            _sub(item, f"{{{DC_NS}}}creator", author.name)
        _sub(item, "category", article.section.name, domain=f"{site.url}/feeds/section")
        for tag in article.tags:
            _sub(item, "category", tag.name, domain=f"{site.url}/feeds/tag")
        _sub(item, "pubDate", format_datetime(article.published))
        if article.image:
            img = article.image
            _sub(item, f"{{{MEDIA_NS}}}content", url=img["url"], medium="image", width=img.get("width"),
                 height=img.get("height"))
            _sub(item, f"{{{MEDIA_NS}}}thumbnail", url=img["url"], width=img.get("width"), height=img.get("height"))
    return etree.tostring(rss, xml_declaration=True, encoding="UTF-8")


def lxml_atom(site: Site, articles: list[Article]) -> bytes:
    """Atom 1.0 written element by element with lxml.etree."""
    feed = etree.Element(f"{{{ATOM_NS}}}feed", nsmap={None: ATOM_NS, "media": MEDIA_NS})
    a = f"{{{ATOM_NS}}}"
    _sub(feed, a + "id", f"tag:{site.host},2025:feeds")
    _sub(feed, a + "title", site.name)
    _sub(feed, a + "updated", _now().isoformat())
    _sub(feed, a + "link", href=f"{site.url}/", rel="alternate", type="text/html")
    _sub(feed, a + "link", href=f"{site.url}/feeds/atom.xml", rel="self", type="application/atom+xml")
    _sub(_sub(feed, a + "author"), a + "name", site.name)
    for article in articles:
        entry = _sub(feed, a + "entry")
        _sub(entry, a + "id", entry_id(article.id, site))
        _sub(entry, a + "title", article.title)
        _sub(entry, a + "updated", article.updated.isoformat())
        _sub(entry, a + "published", article.published.isoformat())
        for author in article.authors:
            _sub(_sub(entry, a + "author"), a + "name", author.name)
        _sub(entry, a + "link", href=article.url, rel="alternate", type="text/html")
        _sub(entry, a + "summary", article.summary)
        _sub(entry, a + "content", feed_html(article), type="html")
        _sub(entry, a + "category", term=article.section.key, label=article.section.name)
        for tag in article.tags:
            _sub(entry, a + "category", term=tag.key, label=tag.name)
        if article.image:
            img = article.image
            _sub(entry, f"{{{MEDIA_NS}}}content", url=img["url"], medium="image", width=img.get("width"),
                 height=img.get("height"))
    return etree.tostring(feed, xml_declaration=True, encoding="UTF-8")


def feedgen_rss(site: Site, articles: list[Article]) -> bytes:
    """RSS 2.0 through feedgen as its documentation shows, with its dc and media extensions."""
    from feedgen.feed import FeedGenerator

    fg = FeedGenerator()
    fg.load_extension("dc")
    fg.load_extension("media")
    fg.title(site.name)
    fg.link(href=f"{site.url}/feeds/rss.xml", rel="self")
    fg.link(href=f"{site.url}/", rel="alternate")
    fg.description(site.description)
    fg.language(site.language)
    fg.lastBuildDate(_now())
    fg.ttl(site.ttl_minutes)
    fg.image(url=site.logo, title=site.name, link=f"{site.url}/")
    for article in articles:
        fe = fg.add_entry(order="append")
        fe.title(article.title)
        fe.link(href=article.url)
        fe.guid(entry_id(article.id, site), permalink=False)
        fe.description(article.summary)
        fe.content(feed_html(article), type="CDATA")
        fe.dc.dc_creator([a.name for a in article.authors])
        fe.category([{"term": article.section.name, "scheme": f"{site.url}/feeds/section"}]
                    + [{"term": t.name, "scheme": f"{site.url}/feeds/tag"} for t in article.tags])
        fe.pubDate(article.published)
        if article.image:
            img = article.image
            size = {k: str(img[k]) for k in ("width", "height") if img.get(k)}   # feedgen wants strings
            fe.media.content(url=img["url"], medium="image", **size)
            fe.media.thumbnail(url=img["url"], **size)
    return fg.rss_str(encoding="UTF-8")


def django_rss(site: Site, articles: list[Article]) -> bytes:
    """RSS 2.0 through Django's feedgenerator, extended the way Django's docs show for extra elements."""
    _configure_django()
    from django.utils import feedgenerator

    class NewsFeed(feedgenerator.Rss201rev2Feed):
        def rss_attributes(self):
            return {**super().rss_attributes(), "xmlns:content": CONTENT_NS, "xmlns:dc": DC_NS,
                    "xmlns:media": MEDIA_NS}

        def add_item_elements(self, handler, item):
            super().add_item_elements(handler, item)
            handler.addQuickElement("content:encoded", item["content_html"])
            for name in item["creators"]:
                handler.addQuickElement("dc:creator", name)
            if item["image"]:
                img = item["image"]
                size = {k: str(img[k]) for k in ("width", "height") if img.get(k)}
                handler.addQuickElement("media:content", None, {"url": img["url"], "medium": "image", **size})
                handler.addQuickElement("media:thumbnail", None, {"url": img["url"], **size})

    feed = NewsFeed(title=site.name, link=f"{site.url}/", description=site.description, language=site.language,
                    feed_url=f"{site.url}/feeds/rss.xml", ttl=str(site.ttl_minutes))
    for article in articles:
        feed.add_item(title=article.title, link=article.url, description=article.summary,
                      unique_id=entry_id(article.id, site), unique_id_is_permalink=False,
                      pubdate=article.published, categories=[article.section.name] + [t.name for t in article.tags],
                      content_html=feed_html(article), creators=[a.name for a in article.authors],
                      image=article.image)
    return feed.writeString("utf-8").encode("utf-8")


def _configure_django() -> None:
    from django.conf import settings
    if not settings.configured:
        settings.configure(USE_TZ=True, TIME_ZONE="UTC")


BUILDERS = {"direct lxml": lxml_rss, "plain feedgen": feedgen_rss, "Django feedgenerator": django_rss}
