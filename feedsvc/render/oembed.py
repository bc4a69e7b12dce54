"""oEmbed 1.0 provider (https://oembed.com): which URLs we embed, the `rich` response, its JSON and XML forms,
and the discovery <link>s for article pages.

URL schemes served: <SITE_URL>/articles/* and <SITE_URL>/amp/* (http and https alike); endpoint
<SITE_URL>/oembed with `format=json|xml` as a query parameter. The representation is an <iframe> of the
embed card /embed/<slug>, sandboxed so the card can open links in a new tab and nothing else.
"""
from __future__ import annotations

import json
from urllib.parse import quote, urlsplit

from lxml import etree
from markupsafe import Markup, escape

from feedsvc.ingest.urls import uri
from feedsvc.render.feeds.model import Scope
from feedsvc.render.feeds.urls import listing_path
from feedsvc.render.links import resolved

VERSION = "1.0"
FORMATS = ("json", "xml")
CONTENT_TYPES = {"json": "application/json", "xml": "text/xml; charset=utf-8"}
DISCOVERY_TYPES = {"json": "application/json+oembed", "xml": "text/xml+oembed"}
ARTICLE_PREFIXES = ("/articles/", "/amp/")
ENDPOINT = "/oembed"
# The card at its natural size: a 16:9 lead image above ~230px of headline, summary, byline and source.
CARD_WIDTH = 560
CARD_TEXT_HEIGHT = 230
IMAGE_RATIO = 9 / 16
# The embed may open its links in a new top-level tab; it may never run script or navigate the host page.
SANDBOX = "allow-popups allow-popups-to-escape-sandbox"


class OEmbedError(Exception):
    """A request the provider answers with an error status (404, 400, 501), and why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def slug_from_url(url: str, site_url: str) -> str | None:
    """The article slug a canonical or AMP URL of our site names, or None if the URL is not one of ours."""
    try:
        parts, site = urlsplit(url.strip()), urlsplit(site_url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or parts.netloc.lower() != site.netloc.lower():
        return None
    path = parts.path
    base = site.path.rstrip("/")  # SITE_URL may live under a path prefix
    if base:
        if not path.startswith(base + "/"):
            return None
        path = path[len(base):]
    for prefix in ARTICLE_PREFIXES:
        if path.startswith(prefix):
            slug = path[len(prefix):].rstrip("/")
            return slug if slug and "/" not in slug else None
    return None


def parse_dimension(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit() or int(value) < 1:
        raise OEmbedError(400, f"{name} must be a positive whole number of pixels, got {value!r}")
    return int(value)


def _fit(natural: int, limit: int | None) -> int:
    return natural if limit is None else min(natural, limit)


def card_size(has_image: bool, maxwidth: int | None, maxheight: int | None) -> tuple[int, int]:
    """(width, height) of the card iframe: the natural size, shrunk to maxwidth/maxheight, never above them.

    The card's own CSS lets the image take whatever height is left, so any size still reads well.
    """
    width = _fit(CARD_WIDTH, maxwidth)
    natural_height = CARD_TEXT_HEIGHT + (round(width * IMAGE_RATIO) if has_image else 0)
    return width, _fit(natural_height, maxheight)


def thumbnail(candidates, maxwidth: int | None, maxheight: int | None) -> dict:
    """thumbnail_url/width/height of the first candidate image ({url, width, height}) that fits.

    The candidates are the lead image, then the site's logo, so a link preview always has a picture.
    We serve each image at one size only; the spec says a thumbnail must respect maxwidth and maxheight
    and that its URL, width and height come together, so an image larger than asked for, or of unknown
    size, is passed over rather than described with a size it does not have.
    """
    for image in candidates:
        if not image or not image.get("width") or not image.get("height"):
            continue
        width, height = image["width"], image["height"]
        if (maxwidth is None or width <= maxwidth) and (maxheight is None or height <= maxheight):
            return {"thumbnail_url": uri(image["url"]), "thumbnail_width": width, "thumbnail_height": height}
    return {}


def iframe_html(embed_url: str, title: str, width: int, height: int) -> str:
    """The `html` of the rich response: well-formed markup (every attribute quoted, the element closed)."""
    return (f'<iframe src="{escape(embed_url)}" width="{width}" height="{height}" title="{escape(title)}" '
            f'sandbox="{SANDBOX}" loading="lazy" referrerpolicy="strict-origin-when-cross-origin" '
            f'frameborder="0"></iframe>')


def author_fields(authors, site_url: str) -> dict:
    """author_name (every author) and author_url (the first author's own page, else their page with us)."""
    if not authors:
        return {}
    first = authors[0]
    return {"author_name": ", ".join(a.name for a in authors),
            "author_url": uri(first.url) if first.url else site_url + listing_path(Scope("author", first.key))}


def response_for(article, *, embed_url: str, site_name: str, site_url: str, cache_age: int,
                 maxwidth: int | None = None, maxheight: int | None = None, logo: dict | None = None) -> dict:
    """The oEmbed `rich` response for an Article, in the spec's key order.

    `logo` ({url, width, height}) is the thumbnail when the article has no lead image that fits.
    """
    article = resolved(article, site_url)
    width, height = card_size(bool(article.image), maxwidth, maxheight)
    return {
        "version": VERSION,
        "type": "rich",
        "title": article.title,
        **author_fields(article.authors, site_url),
        "provider_name": site_name,
        "provider_url": site_url + "/",
        "cache_age": cache_age,
        **thumbnail((article.image, logo), maxwidth, maxheight),
        "html": iframe_html(embed_url, article.title, width, height),
        "width": width,
        "height": height,
    }


def to_json(data: dict) -> str:
    return json.dumps(data, ensure_ascii=False)


def to_xml(data: dict) -> bytes:
    """The spec's XML form: a standalone UTF-8 document, root <oembed>, one child element per key."""
    root = etree.Element("oembed")
    for key, value in data.items():
        etree.SubElement(root, key).text = str(value)
    return etree.tostring(root, xml_declaration=True, encoding="utf-8", standalone=True, pretty_print=True)


def endpoint_url(site_url: str, article_url: str, fmt: str) -> str:
    """The endpoint URL for one article and format: nothing but url and format, as discovery requires."""
    return f"{site_url}{ENDPOINT}?url={quote(article_url, safe='')}&format={fmt}"


def discovery_links(article_url: str, site_url: str, title: str | None = None) -> Markup:
    """The two <link rel="alternate"> tags (JSON and XML) that let consumers find the oEmbed endpoint.

    Put them in the <head> of the canonical article page (and the AMP page, if the pages helper likes).
    """
    label = f' title="{escape(title)}"' if title else ""
    return Markup("\n".join(
        f'<link rel="alternate" type="{DISCOVERY_TYPES[fmt]}" href="{escape(endpoint_url(site_url, article_url, fmt))}"{label}>'
        for fmt in FORMATS))
