"""Atom 1.0 writer (feedgen): authors, links self/alternate/hub/first/next, logo/icon, RFC 6721 tombstones."""
from __future__ import annotations

from feedsvc.render.feeds.ext import TombstoneExtension
from feedsvc.render.feeds.model import Feed, Format
from feedsvc.render.feeds.xmlfeed import add_entry_basics, new_generator

# Shown by readers that display tombstones: "this article has been withdrawn".
WITHDRAWN_COMMENT = "यह ख़बर वापस ले ली गई है।"


def write(feed: Feed) -> bytes:
    mimetype = FORMAT.mimetype
    fg = new_generator(feed)
    fg.register_extension("tombstones", TombstoneExtension, atom=True, rss=False)
    # The publication is the feed's author; every entry names its own authors as well.
    fg.author(name=feed.site.name, uri=f"{feed.site.url}/")
    fg.logo(feed.site.logo)
    fg.icon(feed.site.icon)
    links = [{"href": feed.home_url, "rel": "alternate", "type": "text/html"},
             {"href": feed.self_url, "rel": "self", "type": mimetype},
             {"href": feed.first_url, "rel": "first", "type": mimetype}]
    links += [{"href": hub, "rel": "hub"} for hub in feed.site.hubs]
    if feed.next_url:
        links.append({"href": feed.next_url, "rel": "next", "type": mimetype})
    fg.link(links)
    for tombstone in feed.tombstones:
        fg.tombstones.deleted_entry(tombstone.ref, tombstone.when, url=tombstone.url,
                                    comment=WITHDRAWN_COMMENT, lang=feed.language)
    for entry in feed.entries:
        fe = add_entry_basics(fg, entry)
        fe.author([{"name": a.name, **({"uri": a.url} if a.url else {})} for a in entry.authors])
    return fg.atom_str(encoding="UTF-8", xml_declaration=True)


FORMAT = Format("atom", "atom.xml", "application/atom+xml; charset=utf-8", "Atom", write)
