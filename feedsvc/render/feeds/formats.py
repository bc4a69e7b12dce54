"""Every feed format, in the order pages and OPML list them; each is declared beside its writer.

To add a format: write its module (a `write(feed) -> bytes` and a `FORMAT`) and list it here; its
URLs, content type, autodiscovery links, OPML, directory, fast path and mirror follow.
"""
from __future__ import annotations

from feedsvc.render.feeds import atom, jsonfeed, rss
from feedsvc.render.feeds.model import Format

FORMATS: dict[str, Format] = {f.name: f for f in (rss.FORMAT, atom.FORMAT, jsonfeed.FORMAT)}
BY_FILENAME: dict[str, Format] = {f.filename: f for f in FORMATS.values()}
