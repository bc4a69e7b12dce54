"""Row `takedown`: how soon a DELETE through the API has the article gone from every public surface.

Deployed as for the freshness rows (bench/fresh.py: gunicorn, `export --watch --interval 0.1`, nginx
with the shipped config in front of the mirror and the app). Each repeat takes a live article that
every surface shows (checked first, so "gone" means something), DELETEs it, and times from the
API's answer until, through nginx, the site feed and its section's feed in all three formats no
longer list it, its page and AMP page answer 410, its embed card 410, oEmbed 404, no sitemap that
listed it (monthly, news) does any longer, and its page files (with .gz and .br) are gone from the
mirror. The row is the p99 of the slowest surface per repeat (issue 17: within 1 s).
"""
from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Callable
from urllib.parse import quote

from lxml import etree
from sqlalchemy import create_engine, select

from feedsvc.store import articles

from .fresh import TOKEN, deployed, p99
from .serve import fetch
from .stats import Row, Sample, Table

TAKEDOWNS = 25
TARGET_SECONDS = 1.0
TIMEOUT_SECONDS = 30.0
ROWS = {"takedown": "API DELETE until every public surface (feeds, 410 pages, AMP, embed, oEmbed, sitemaps, "
                    "mirror files) has the article gone, p99 (target ≤ 1 s)"}
SITE_URL = "http://news.example"   # bench.serve.app_env's FEEDSVC_SITE_URL
NS = {"atom": "http://www.w3.org/2005/Atom", "sm": "http://www.sitemaps.org/schemas/sitemap/0.9"}
FEED_FILES = ("rss.xml", "atom.xml", "feed.json")


def entry_ids(path: str, body: bytes) -> set[str]:
    """The ids of a feed's entries (an Atom tombstone is no entry)."""
    if path.endswith(".json"):
        return {item["id"] for item in json.loads(body)["items"]}
    root = etree.fromstring(body)
    if path.endswith("atom.xml"):
        return set(root.xpath("/atom:feed/atom:entry/atom:id/text()", namespaces=NS))
    return set(root.xpath("/rss/channel/item/guid/text()"))


def sitemap_locs(body: bytes) -> set[str]:
    return set(etree.fromstring(body).xpath("//sm:loc/text()", namespaces=NS))


Check = Callable[[], bool]   # True once the surface no longer shows the article


def surfaces(nginx_url: Callable[[str], str], mirror: Path, slug: str, section: str, entry: str,
             sitemaps: list[str]) -> dict[str, Check]:
    page = f"{SITE_URL}/articles/{slug}"

    def feed(path: str) -> Check:
        def gone() -> bool:
            status, _, body = fetch(nginx_url(path))
            return status == 200 and entry not in entry_ids(path, body)
        return gone

    def answers(path: str, expected: int) -> Check:
        return lambda: fetch(nginx_url(path))[0] == expected

    def sitemap(path: str) -> Check:
        def gone() -> bool:
            status, _, body = fetch(nginx_url(path))
            return status == 404 or (status == 200 and page not in sitemap_locs(body))
        return gone

    def files(name: str) -> Check:
        return lambda: not any((mirror / f"{name}{suffix}").exists() for suffix in ("", ".gz", ".br"))

    checks = {"site feed": feed("/feeds/rss.xml")}
    checks.update((f"section {name}", feed(f"/feeds/section/{section}/{name}")) for name in FEED_FILES)
    checks.update({"page 410": answers(f"/articles/{slug}", 410), "AMP 410": answers(f"/amp/{slug}", 410),
                   "embed 410": answers(f"/embed/{slug}", 410),
                   "oEmbed 404": answers(f"/oembed?url={quote(page, safe='')}", 404),
                   "page files": files(f"articles/{slug}.html"), "AMP files": files(f"amp/{slug}.html")})
    checks.update((f"sitemap {path}", sitemap(path)) for path in sitemaps)
    return checks


def listing_sitemaps(nginx_url: Callable[[str], str], page: str) -> list[str]:
    """The sitemaps (monthly ones and the news sitemap) that list the page now."""
    def lists(path: str) -> bool:
        status, _, body = fetch(nginx_url(path))
        return status == 200 and page in sitemap_locs(body)

    paths = [loc.removeprefix(SITE_URL) for loc in sitemap_locs(fetch(nginx_url("/sitemap.xml"))[2])]
    return [path for path in paths + ["/sitemaps/news.xml"] if lists(path)]


def candidates(database_url: str, count: int) -> list[tuple[str, str, str]]:
    """(id, slug, section key) of the newest live articles: the ones every feed shows."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(
                select(articles.c.id, articles.c.slug, articles.c.section_key)
                .where(articles.c.status == "published").order_by(articles.c.published.desc()).limit(count))]
    finally:
        engine.dispose()


def delete(url: str) -> None:
    request = urllib.request.Request(url, method="DELETE", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        if response.status != 200:
            raise RuntimeError(f"DELETE {url}: {response.status}")


def gone_after(checks: dict[str, Check], since: float) -> dict[str, float]:
    """Seconds from `since` until each surface no longer shows the article, all of them polled in turn."""
    pending, found = dict(checks), {}
    while pending:
        if time.perf_counter() - since > TIMEOUT_SECONDS:
            raise TimeoutError(f"after {TIMEOUT_SECONDS} s the article is still on: {', '.join(pending)}")
        for name, gone in list(pending.items()):
            if gone():
                found[name] = time.perf_counter() - since
                del pending[name]
    return found


def run(table: Table, database_url: str, mirror: Path, workdir: Path, takedowns: int = TAKEDOWNS) -> dict:
    lags: list[float] = []
    by_kind: dict[str, list[float]] = {}
    with deployed(database_url, mirror, workdir, "takedown") as (app, nginx):
        site_feed = json.loads(fetch(nginx.url("/feeds/feed.json"))[2])
        entries = {item["url"]: item["id"] for item in site_feed["items"]}
        for article_id, slug, section in candidates(database_url, takedowns * 2):
            if len(lags) == takedowns:
                break
            page = f"{SITE_URL}/articles/{slug}"
            entry = entries.get(page)
            if entry is None:
                continue
            checks = surfaces(nginx.url, mirror, slug, section, entry, listing_sitemaps(nginx.url, page))
            if any(gone() for gone in checks.values()):
                continue   # not on every surface yet (a sitemap follows within a minute): not a fair repeat
            delete(app.url(f"/api/articles/{article_id}"))
            found = gone_after(checks, time.perf_counter())
            lags.append(max(found.values()))
            for name, seconds in found.items():   # "section atom.xml", "sitemap /sitemaps/…": by kind
                by_kind.setdefault(name.split(" ")[0], []).append(seconds)
    if not lags:
        raise RuntimeError("no live article was on every surface to take down")
    worst = p99(lags)
    table.add(Row("takedown", "takedowns (API DELETE -> gone everywhere, through nginx and the mirror)",
                  f"every surface: p99 {worst:.2f} s over {len(lags)} DELETEs", Sample(lags, "s"),
                  target="p99 ≤ 1 s", met=worst <= TARGET_SECONDS, value=worst, statistic="p99",
                  note="p99 by surface: " + ", ".join(f"{kind} {p99(values):.2f} s" for kind, values in by_kind.items())))
    return {"takedown_p99": worst}
