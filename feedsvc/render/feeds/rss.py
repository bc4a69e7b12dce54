"""RSS 2.0 writer (feedgen): content:encoded, dc:creator, dcterms:modified, Media RSS, atom:link self/hub/first/next."""
from __future__ import annotations

from feedsvc.render.feeds.dcterms import DctermsEntryExtension, DctermsExtension
from feedsvc.render.feeds.ext import ChannelLinksExtension, CreatorEntryExtension, CreatorExtension
from feedsvc.render.feeds.model import Feed, Format
from feedsvc.render.feeds.xmlfeed import add_entry_basics, new_generator

RSS_DOCS = "https://www.rssboard.org/rss-specification"


def write(feed: Feed) -> bytes:
    mimetype = FORMAT.mimetype
    fg = new_generator(feed)
    fg.register_extension("links", ChannelLinksExtension, atom=False, rss=True)
    fg.register_extension("dc", CreatorExtension, CreatorEntryExtension, atom=False, rss=True)
    fg.register_extension("dcterms", DctermsExtension, DctermsEntryExtension, atom=False, rss=True)
    fg.docs(RSS_DOCS)
    fg.ttl(feed.site.ttl_minutes)
    fg.image(url=feed.site.logo, title=feed.title, link=feed.home_url)
    fg.link(href=feed.self_url, rel="self", type=mimetype)
    # feedgen takes the channel <link> from the last link given, so the home page goes last.
    fg.link(href=feed.home_url, rel="alternate", type="text/html")
    for hub in feed.site.hubs:
        fg.links.link(hub, "hub")
    fg.links.link(feed.first_url, "first", mimetype)
    if feed.next_url:
        fg.links.link(feed.next_url, "next", mimetype)
    for entry in feed.entries:
        fe = add_entry_basics(fg, entry, feed.extensions)
        fe.pub_date.when(entry.published)
        fe.dc.dc_creator([author.name for author in entry.authors])
        fe.dcterms.modified(entry.updated)
        image = entry.image
        # The enclosure, for readers that know no Media RSS; RSS 2.0 requires its byte length and
        # type, which only a probed (local) image has. Only RSS: feedgen writes Atom enclosure links
        # without their rel, which would read as a second alternate link.
        if image and image.length and image.type:
            fe.enclosure(image.url, str(image.length), image.type)
    return fg.rss_str(encoding="UTF-8", xml_declaration=True)


FORMAT = Format("rss", "rss.xml", "application/rss+xml; charset=utf-8", "RSS", write)
