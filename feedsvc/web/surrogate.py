"""Surrogate keys: every response names what it holds, so a CDN can drop exactly what a write changed.

A feed, listing or widget names its scope ("site", "section:<key>", ...), read from the route; the
documents about every scope (OPML, the feed directory, sitemaps, robots.txt) name "site", which
every write changes; an article's page, AMP page, embed card and oEmbed answer name the article
("article:<id>", set by the view that found it). feedsvc/publish/purge.py purges the same keys.

Fastly reads them from `Surrogate-Key`, space-separated; Cloudflare from `Cache-Tag`,
comma-separated (both strip the header before it reaches a reader):
https://www.fastly.com/documentation/reference/http/http-headers/Surrogate-Key/
https://developers.cloudflare.com/cache/how-to/purge-cache/purge-by-tags/
"""
from __future__ import annotations

from flask import Flask, g, request

from feedsvc import store
from feedsvc.publish.purge import article_key, surrogate_key

# Endpoints whose documents are about the whole site: every write changes them.
SITE_WIDE = {"feeds.opml_document", "feeds.directory", "feeds.kind_directory", "discovery.robots_txt",
             "discovery.sitemap_index", "discovery.news_sitemap", "discovery.month_sitemap"}
_KEYS = "surrogate_keys"


def name(*keys: str) -> None:
    """Add already-made keys to what the current response holds."""
    g.setdefault(_KEYS, []).extend(keys)


def name_article(article_id: str, *scopes: str) -> None:
    """The current response shows this article (and lists from these scopes)."""
    name(article_key(article_id), *(surrogate_key(s) for s in scopes))


def route_keys() -> list[str]:
    """The scope the matched route names, from its URL."""
    args, endpoint = request.view_args or {}, request.endpoint or ""
    if "kind" in args and "key" in args:
        return [surrogate_key(store.scope_id(args["kind"], args["key"]))]
    if endpoint == "embed.latest":
        section = request.args.get("section", "").strip()
        return [surrogate_key(f"section:{section}" if section else "site")]
    return ["site"] if endpoint in SITE_WIDE else []


def tag_response(response):
    keys = list(dict.fromkeys(route_keys() + g.get(_KEYS, [])))
    if keys:
        response.headers["Surrogate-Key"] = " ".join(keys)
        response.headers["Cache-Tag"] = ",".join(keys)
    return response


def init_app(app: Flask) -> None:
    app.after_request(tag_response)
