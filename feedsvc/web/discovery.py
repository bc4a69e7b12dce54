"""Discovery for crawlers and aggregators: /robots.txt, /sitemap.xml, /sitemaps/news.xml, monthly sitemaps.

Views only choose the document and its validator; feedsvc.render.sitemaps builds it, and the feeds'
`serve` keeps it in the render cache and answers through feedsvc.web.http (304, encodings, caching).
Every sitemap is a function of the live articles, so the site scope's change counter (bumped by
every write that adds, edits or withdraws a live article) decides whether a copy is current.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, current_app

from feedsvc import store
from feedsvc.render import sitemaps
from feedsvc.web import db
from feedsvc.web.documents import serve

bp = Blueprint("discovery", __name__)

XML = "application/xml; charset=utf-8"
# The news sitemap also changes with the clock (its 48-hour window moves): it is built for the start
# of the current minute, so every worker builds the same bytes under the same ETag.
NEWS_CLOCK_SECONDS = 60


def _settings() -> tuple[str, ZoneInfo, int]:
    config = current_app.config
    per_file = sitemaps.urls_per_file(config["SITE_URL"], config["SITEMAP_MAX_URLS"], config["SITEMAP_MAX_BYTES"])
    return config["SITE_URL"], ZoneInfo(config["TIMEZONE"]), per_file


def _site_state():
    """(version stamp, last modified) of the whole site: what every sitemap depends on."""
    state = store.scope_state_of(db.connection(), "site")
    if state is None:
        return (0, None), None
    return (state.version, state.modified_at), state.modified_at


@bp.get("/robots.txt")
def robots_txt():
    return Response(sitemaps.robots_txt(current_app.config["SITE_URL"]), content_type="text/plain; charset=utf-8")


@bp.get(sitemaps.INDEX_PATH)
def sitemap_index():
    site_url, tz, per_file = _settings()

    def build() -> bytes:
        files = sitemaps.monthly_sitemaps(db.connection(), per_file)
        return b"".join(sitemaps.sitemap_index(files, site_url=site_url, tz=tz))

    return serve(("sitemap-index", site_url, str(tz), per_file), _site_state, build, content_type=XML)


@bp.get(sitemaps.NEWS_PATH)
def news_sitemap():
    config = current_app.config
    now = datetime.fromtimestamp(time.time() // NEWS_CLOCK_SECONDS * NEWS_CLOCK_SECONDS, timezone.utc)

    def build() -> bytes:
        return b"".join(sitemaps.news_sitemap(db.connection(), site_url=config["SITE_URL"],
                                              publication=config["SITE_NAME"], language=config["SITE_LANGUAGE"],
                                              now=now))

    key = ("sitemap-news", config["SITE_URL"], config["SITE_NAME"], config["SITE_LANGUAGE"], now.isoformat())
    return serve(key, _site_state, build, content_type=XML)


@bp.get("/sitemaps/articles-<name>.xml")
def month_sitemap(name: str):
    site_url, tz, per_file = _settings()
    found = sitemaps.parse_month_file(name)
    if found is None or not sitemaps.month_sitemap_exists(db.connection(), *found, per_file):
        abort(404)

    def build() -> bytes:
        # Built from a stream of rows (a server-side cursor on PostgreSQL), kept whole for the cache.
        return b"".join(sitemaps.month_sitemap(db.connection(), *found, per_file=per_file, site_url=site_url, tz=tz))

    return serve(("sitemap-month", *found, site_url, str(tz), per_file), _site_state, build, content_type=XML)
