"""Where readers and people look for a feed first: /feed, /rss.xml, /atom.xml, /feed.json, ...

WordPress (/feed, /feed/), Hugo (/index.xml), static-site habits (/rss.xml, /atom.xml, /feed.json)
and people typing /rss make feed readers and people try these paths before any autodiscovery.
Each answers 301 to the site's feed in the format its name says (the others RSS, the format every
reader reads), built from the one feed URL map (render/feeds/urls.py).
"""
from __future__ import annotations

from flask import Blueprint, redirect, request

from feedsvc.render.feeds.formats import FORMATS
from feedsvc.render.feeds.model import Scope
from feedsvc.render.feeds.urls import feed_path

bp = Blueprint("probes", __name__)

DEFAULT_FORMAT = "rss"
# path -> format: each format's own file name at the root (/rss.xml, /atom.xml, /feed.json), then the rest.
PROBES = {**{f"/{fmt.filename}": name for name, fmt in FORMATS.items()},
          **dict.fromkeys(("/feed", "/feed/", "/rss", "/index.xml"), DEFAULT_FORMAT)}
# Permanent, but cached for a day only, so a mistake here does not outlive its fix in readers' caches.
CACHE_CONTROL = "public, max-age=86400"


def to_site_feed():
    # A path, not a URL (RFC 9110 §10.2.2 allows it): the redirect stays on the host the reader asked,
    # and the feed's own rel="self" then names the canonical URL.
    response = redirect(feed_path(Scope("site"), PROBES[request.path]), code=301)
    response.headers["Cache-Control"] = CACHE_CONTROL
    return response


for _path in PROBES:
    bp.add_url_rule(_path, "to_site_feed", to_site_feed, methods=["GET", "HEAD"])
