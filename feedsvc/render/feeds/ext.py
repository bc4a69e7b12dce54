"""feedgen extensions for the elements feedgen 1.0 does not write, in feedgen's extension shape.

Each class adds its elements to the tree feedgen builds (`extend_rss` / `extend_atom`), so the
writers never edit serialized XML:
- StylesheetExtension: the <?xml-stylesheet?> that lets a browser show a page instead of raw XML;
- ChannelLinksExtension: atom:link rel="hub" (WebSub) and rel="first"/"next" (RFC 5005) in RSS,
  where feedgen writes only rel="self";
- MediaExtension: Media RSS media:content (with width, height, fileSize, description, credit) and
  media:thumbnail directly in the item (feedgen's own media extension wraps them in media:group),
  and a media:content medium="video" with its media:player for each player the article embeds;
- TombstoneExtension: RFC 6721 at:deleted-entry for withdrawn articles in Atom, its namespace
  declared only in a document that carries one (validators warn of a namespace they do not know);
- CreatorExtension: the item's dc:creator in RSS, the one Dublin Core element the feeds use
  (feedgen's own dc extension handles all fifteen generically and took a fifth of the RSS
  writing time).
"""
from __future__ import annotations

import threading
from copy import copy
from datetime import datetime
from functools import lru_cache

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from lxml import etree

ATOM_NS = "http://www.w3.org/2005/Atom"
DC_NS = "http://purl.org/dc/elements/1.1/"
MEDIA_NS = "http://search.yahoo.com/mrss/"
TOMBSTONE_NS = "http://purl.org/atompub/tombstones/1.0"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def _set(element, **attributes) -> None:
    for name, value in attributes.items():
        if value is not None and value != "":
            element.set(name, str(value))


class StylesheetExtension(BaseExtension):
    """<?xml-stylesheet type="text/xsl" href="…"?> before the root element, in RSS and Atom."""

    def __init__(self):
        self._href = None

    def href(self, href: str | None = None) -> str | None:
        if href is not None:
            if '"' in href or "?>" in href:
                raise ValueError(f"unusable stylesheet URL {href!r}")
            self._href = href
        return self._href

    def _add(self, root):
        if self._href:
            root.addprevious(etree.ProcessingInstruction("xml-stylesheet", f'type="text/xsl" href="{self._href}"'))
        return root

    extend_rss = extend_atom = _add


class ChannelLinksExtension(BaseExtension):
    """atom:link elements of an RSS channel other than rel="self" (which feedgen writes)."""

    def __init__(self):
        self._links: list[dict] = []

    def extend_ns(self):
        return {"atom": ATOM_NS}

    def link(self, href: str, rel: str, type: str | None = None) -> None:
        self._links.append({"href": href, "rel": rel, "type": type})

    def extend_rss(self, rss):
        channel = rss[0]
        for link in self._links:
            _set(etree.SubElement(channel, f"{{{ATOM_NS}}}link"), **link)
        return rss


class MediaExtension(BaseExtension):
    def extend_ns(self):
        return {"media": MEDIA_NS}


class MediaEntryExtension(BaseEntryExtension):
    """media:content and media:thumbnail of one item or entry."""

    def __init__(self):
        self._contents: list[tuple] = []
        self._thumbnails: list[tuple] = []
        self._videos: list[tuple] = []

    def content(self, url: str, *, medium: str = "image", type: str | None = None, width: int | None = None,
                height: int | None = None, file_size: int | None = None, description: str = "",
                credit: str = "") -> None:
        self._contents.append((url, medium, type, width, height, file_size, description, credit))

    def thumbnail(self, url: str, *, width: int | None = None, height: int | None = None) -> None:
        self._thumbnails.append((url, width, height))

    def video(self, player: str | None, *, title: str, file: str | None = None, type: str | None = None,
              duration: int | None = None, thumbnail: str | None = None, thumbnail_width: int | None = None,
              thumbnail_height: int | None = None) -> None:
        """A video: media:content medium="video" with the `file`'s url and type, or, seen through a
        player only, with no url (Media RSS 1.5.1: "If the url attribute is not included, a
        media:player element must be specified"); its media:player, media:title, media:thumbnail and
        `duration` in seconds (a media:content attribute), https://www.rssboard.org/media-rss#media-content."""
        self._videos.append((player, file, type, duration, title, thumbnail, thumbnail_width, thumbnail_height))

    def _add(self, item):
        if self._contents or self._thumbnails or self._videos:
            # Copies of the elements made once per value: the same lead image recurs in every feed
            # of its article, and copying a subtree costs a third of building it call by call.
            item.extend([copy(element) for element in
                         _media_elements((tuple(self._contents), tuple(self._thumbnails), tuple(self._videos)))])
        return item

    extend_rss = extend_atom = _add


# Per thread, so that only the thread that made a cached element ever reads it (lxml interns names
# in the making thread's dictionary). About 5 KB per entry kept: 512 hold a 500-item feed's images.
_made = threading.local()
MEDIA_ELEMENTS_KEPT = 512


def _media_elements(media: tuple) -> list:
    try:
        made = _made.media
    except AttributeError:
        made = _made.media = lru_cache(maxsize=MEDIA_ELEMENTS_KEPT)(_new_media_elements)
    return made(media)


def _new_media_elements(media: tuple) -> list:
    contents, thumbnails, videos = media
    item = etree.Element("item")
    for url, medium, type_, width, height, file_size, description, credit in contents:
        element = etree.SubElement(item, f"{{{MEDIA_NS}}}content")
        _set(element, url=url, fileSize=file_size, type=type_, medium=medium, width=width, height=height)
        if description:
            etree.SubElement(element, f"{{{MEDIA_NS}}}description", type="plain").text = description
        if credit:
            etree.SubElement(element, f"{{{MEDIA_NS}}}credit").text = credit
    for url, width, height in thumbnails:
        _set(etree.SubElement(item, f"{{{MEDIA_NS}}}thumbnail"), url=url, width=width, height=height)
    for player, file, type_, duration, title, thumbnail, width, height in videos:
        content = etree.SubElement(item, f"{{{MEDIA_NS}}}content")
        _set(content, url=file, type=type_, medium="video", duration=duration)
        if player:
            etree.SubElement(content, f"{{{MEDIA_NS}}}player", url=player)
        etree.SubElement(content, f"{{{MEDIA_NS}}}title", type="plain").text = title
        if thumbnail:
            _set(etree.SubElement(content, f"{{{MEDIA_NS}}}thumbnail"), url=thumbnail, width=width, height=height)
    return list(item)


class TombstoneExtension(BaseExtension):
    """RFC 6721 deleted entries of an Atom feed, written before the feed's entries."""

    def __init__(self):
        self._deleted: list[dict] = []

    def extend_ns(self):
        # The W3C Feed Validation Service does not know RFC 6721's namespace and warns "Use of
        # unknown namespace" wherever it is declared: only a feed with a tombstone needs it.
        return {"at": TOMBSTONE_NS} if self._deleted else {}

    def deleted_entry(self, ref: str, when: datetime, *, url: str | None = None, comment: str = "",
                      lang: str | None = None) -> None:
        self._deleted.append({"ref": ref, "when": when, "url": url, "comment": comment, "lang": lang})

    def extend_atom(self, feed):
        for deleted in self._deleted:
            element = etree.SubElement(feed, f"{{{TOMBSTONE_NS}}}deleted-entry", ref=deleted["ref"],
                                       when=deleted["when"].isoformat())
            if deleted["url"]:
                # feedgen builds the Atom tree without a namespace (the root declares it), so its
                # link children are plain "link" too.
                etree.SubElement(element, "link", rel="alternate", type="text/html", href=deleted["url"])
            if deleted["comment"]:
                comment = etree.SubElement(element, f"{{{TOMBSTONE_NS}}}comment")
                comment.text = deleted["comment"]
                if deleted["lang"]:
                    comment.set(XML_LANG, deleted["lang"])
        return feed


class CreatorExtension(BaseExtension):
    def extend_ns(self):
        return {"dc": DC_NS}


class CreatorEntryExtension(BaseEntryExtension):
    """One dc:creator naming every author of an RSS item, in the order given.

    Dublin Core allows the element to repeat, but common readers keep one of several (newsboat
    the last, rss-parser the first), so a co-written story showed a single author. One element
    with the names joined reads right everywhere; Atom and JSON Feed keep each author apart.
    """

    SEPARATOR = ", "

    def __init__(self):
        self._creators: list[str] = []

    def dc_creator(self, creators: list[str]) -> None:
        self._creators = list(creators)

    def extend_rss(self, item):
        if self._creators:
            etree.SubElement(item, f"{{{DC_NS}}}creator").text = self.SEPARATOR.join(self._creators)
        return item


class LanguageExtension(BaseExtension):
    """Entries' languages; declares nothing (RSS's dc: comes with CreatorExtension, Atom needs none)."""


class LanguageEntryExtension(BaseEntryExtension):
    """An entry's own language: xml:lang on an Atom entry, dc:language in an RSS item (an `en`
    article inside a `hi` feed must not be read as Hindi)."""

    def __init__(self):
        self._language: str | None = None

    def language(self, language: str) -> None:
        self._language = language

    def extend_atom(self, entry):
        if self._language:
            entry.set(XML_LANG, self._language)
        return entry

    def extend_rss(self, item):
        if self._language:
            etree.SubElement(item, f"{{{DC_NS}}}language").text = self._language
        return item


# ---- aggregator profiles' namespaces (feedsvc/render/profiles.py chooses them per profile) ----------

WEBFEEDS_NS = "http://webfeeds.org/rss/1.0"
SNF_NS = "http://www.smartnews.be/snf"
MI_NS = "http://schemas.ingestion.microsoft.com/common/"


class WebfeedsExtension(BaseExtension):
    """Feedly's webfeeds: channel elements (icon, logo, accentColor), as published feeds use them."""

    def __init__(self):
        self._values: dict[str, str | None] = {}

    def extend_ns(self):
        return {"webfeeds": WEBFEEDS_NS}

    def branding(self, *, icon: str, logo: str, accent_color: str | None = None) -> None:
        self._values = {"icon": icon, "logo": logo, "accentColor": accent_color}

    def extend_rss(self, rss):
        channel = rss[0]
        for name, value in self._values.items():
            if value:
                etree.SubElement(channel, f"{{{WEBFEEDS_NS}}}{name}").text = value
        return rss


class SnfExtension(BaseExtension):
    """SmartFormat's channel <snf:logo><url>…</url></snf:logo>; SnfEntryExtension writes the items'."""

    def __init__(self):
        self._logo: str | None = None

    def extend_ns(self):
        return {"snf": SNF_NS}

    def logo(self, url: str) -> None:
        self._logo = url

    def extend_rss(self, rss):
        if self._logo:
            logo = etree.SubElement(rss[0], f"{{{SNF_NS}}}logo")
            etree.SubElement(logo, f"{{{SNF_NS}}}url").text = self._logo
        return rss


class SnfEntryExtension(BaseEntryExtension):
    """An item's <snf:analytics>: a tracking tag SmartNews runs in its own article viewer, in CDATA."""

    def __init__(self):
        self._analytics: str | None = None

    def analytics(self, tag: str) -> None:
        if "]]>" in tag:
            raise ValueError("an snf:analytics tag cannot hold ']]>' (it ends the CDATA section)")
        self._analytics = tag

    def extend_rss(self, item):
        if self._analytics:
            etree.SubElement(item, f"{{{SNF_NS}}}analytics").text = etree.CDATA(self._analytics)
        return item


class MediaStatusExtension(BaseExtension):
    """Declares nothing: the media: namespace comes with MediaExtension (every RSS and Atom feed)."""


class MediaStatusEntryExtension(BaseEntryExtension):
    """<media:status>deleted</media:status>: SmartFormat's deletion of an item it already has.

    SmartNews reads the state as the element's text (its "Deleting Articles" page: change "the
    <media:status> value" to deleted), where Media RSS 1.5.1 puts it in a state attribute; only
    the profile that asks for it writes one (feedsvc/render/profiles.py)."""

    def __init__(self):
        self._state: str | None = None

    def status(self, state: str) -> None:
        self._state = state

    def extend_rss(self, item):
        if self._state:
            etree.SubElement(item, f"{{{MEDIA_NS}}}status").text = self._state
        return item


class MiExtension(BaseExtension):
    """MSN's namespace; registered only for a feed with an mi: element (render/profiles.Mi)."""

    def extend_ns(self):
        return {"mi": MI_NS}


class MiEntryExtension(BaseEntryExtension):
    """MSN's <mi:shortTitle> of one item (its card title, used instead of cutting the title)."""

    def __init__(self):
        self._short_title: str | None = None

    def short_title(self, text: str | None) -> None:
        self._short_title = text

    def extend_rss(self, item):
        if self._short_title:
            etree.SubElement(item, f"{{{MI_NS}}}shortTitle").text = self._short_title
        return item
