"""Site paths made absolute when a document is built: the store keeps the site's own links as paths
("/articles/x", "/media/y.jpg"), so a new FEEDSVC_SITE_URL moves every link of every output at once.

Links to other sites are stored absolute and pass through unchanged.
"""
from __future__ import annotations

import dataclasses
import html
import re

from feedsvc.ingest.records import Article

# The URL attributes the sanitiser keeps (feedsvc/ingest/sanitize.py), as nh3 writes them: always
# double-quoted, '"' escaped inside values, so ' href="/' inside a tag can only start a site path.
_URL_ATTRIBUTES = (" href=", " src=", " poster=", " cite=")
# A site path's start in an attribute value. Searched with re, not `in`: Devanagari makes a body a
# two-byte string, which str's substring search walks at a third of the speed of re's.
_SITE_PATH = re.compile('="/')
# A whole start tag of nh3 output: text escapes "<", attribute values may hold ">" only in quotes.
_START_TAG = re.compile(r'<[a-zA-Z][a-zA-Z0-9]*(?:[^>"]|"[^"]*")*>')


def absolute(link: str, site_url: str) -> str:
    """A stored link as a document shows it: a site path under `site_url`, anything else as it is."""
    return site_url + link if link.startswith("/") else link


def absolute_links(safe_html: str, site_url: str) -> str:
    """Sanitised body HTML with its site paths under `site_url`. Bodies without one (most: their
    links point elsewhere) cost one search."""
    if _SITE_PATH.search(safe_html) is None:
        return safe_html
    prefixes = [(f'{attribute}"/', f'{attribute}"{html.escape(site_url)}/') for attribute in _URL_ATTRIBUTES]

    def in_tag(match: re.Match) -> str:
        tag = match.group()
        if '="/' in tag:
            for relative, resolved in prefixes:
                tag = tag.replace(relative, resolved)
        return tag
    return _START_TAG.sub(in_tag, safe_html)


def resolved(article: Article, site_url: str) -> Article:
    """`article` with every stored site path (its URL, lead image, authors' pages, body links and images)
    under `site_url`: what every renderer reads. A shallow copy: this runs for every entry of a feed."""
    shown = object.__new__(Article)
    shown.__dict__.update(article.__dict__)  # a shallow copy at a tenth of copy.copy's cost
    shown.url = absolute(article.url, site_url)
    if article.image and article.image.get("url", "").startswith("/"):
        shown.image = dict(article.image, url=site_url + article.image["url"])
    if any(a.url and a.url.startswith("/") for a in article.authors):
        shown.authors = [dataclasses.replace(a, url=absolute(a.url, site_url)) if a.url else a for a in article.authors]
    shown.body_html = absolute_links(article.body_html, site_url)
    if article.body_images:  # keyed by src as the body writes it, so by the resolved src from here on
        shown.body_images = {absolute(src, site_url): dict(image, url=absolute(image["url"], site_url))
                             for src, image in article.body_images.items()}
    return shown
