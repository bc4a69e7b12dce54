"""Sitemaps for search and news aggregators, built from indexed store queries and written as streams.

- the Google News sitemap: live articles of the last 48 hours, newest first, at most 1,000 (with
  none, the newest live article without news metadata: see `news_sitemap`);
- monthly article sitemaps (by UTC month of publication), split into parts so each file stays
  within the sitemaps.org limits (50,000 URLs, 50 MB), and the sitemap index that lists them;
- robots.txt naming both.

A sitemap has a fixed, tiny vocabulary, so entries are written as escaped text rather than
built as lxml elements (about 8x faster at 50,000 URLs); the tests parse every output and check
it against the XSDs in feedsvc/schemas.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Callable, Iterable, Iterator
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Row

from feedsvc.ingest.records import SLUG_MAX, YEARS, article_from_json
from feedsvc.render.skips import each_rendered
from feedsvc.store import LIVE, articles, live_now, utc

SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
NEWS_NS = "http://www.google.com/schemas/sitemap-news/0.9"
MAX_URLS = 50_000                 # sitemaps.org: per sitemap file, and per index
MAX_BYTES = 50 * 1024 * 1024      # sitemaps.org: 52,428,800 bytes uncompressed
NEWS_MAX_URLS = 1_000             # Google News: news:news tags per sitemap
NEWS_WINDOW = timedelta(hours=48)  # Google News: "articles published in the last two days"
CHUNK_BYTES = 64 * 1024

NEWS_PATH = "/sitemaps/news.xml"
INDEX_PATH = "/sitemap.xml"
_MONTH_FILE = re.compile(r"(\d{4})-(0[1-9]|1[0-2])(?:-([2-9]|[1-9]\d+))?")

_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
_URLSET_HEAD = f'{_XML_DECLARATION}<urlset xmlns="{SITEMAP_NS}">\n'
_NEWS_URLSET_HEAD = f'{_XML_DECLARATION}<urlset xmlns="{SITEMAP_NS}" xmlns:news="{NEWS_NS}">\n'
_URLSET_TAIL = "</urlset>\n"
_INDEX_HEAD = f'{_XML_DECLARATION}<sitemapindex xmlns="{SITEMAP_NS}">\n'
_INDEX_TAIL = "</sitemapindex>\n"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def article_loc(site_url: str, slug: str) -> str:
    """The URL of the article page this host serves (a sitemap lists only its own host's URLs)."""
    return f"{site_url}/articles/{slug}"


def w3c_datetime(naive_utc: datetime, tz: tzinfo) -> str:
    """A stored (naive UTC) time in W3C Datetime form with the newsroom's offset, to the second."""
    return naive_utc.replace(tzinfo=timezone.utc).astimezone(tz).isoformat(timespec="seconds")


def _chunks(head: str, entries: Iterable[str], tail: str) -> Iterator[bytes]:
    """head, entries, tail as UTF-8, in chunks of about CHUNK_BYTES so large files stream."""
    buffer, size = [head], len(head)
    for entry in entries:
        buffer.append(entry)
        size += len(entry)
        if size >= CHUNK_BYTES:
            yield "".join(buffer).encode("utf-8")
            buffer, size = [], 0
    buffer.append(tail)
    yield "".join(buffer).encode("utf-8")


# ---- the Google News sitemap -------------------------------------------------------------------

def news_query(now: datetime, window: timedelta = NEWS_WINDOW, limit: int = NEWS_MAX_URLS):
    """The newest live articles published in (now - window, now]; kept apart so its plan can be shown."""
    now = utc(now) if now.tzinfo else now
    return (select(articles.c.id, articles.c.version, articles.c.slug, articles.c.article)
            .where(articles.c.status == LIVE, articles.c.published > now - window, articles.c.published <= now,
                   articles.c.in_news_sitemap.is_(True))  # the record's syndication.news_sitemap
            .order_by(articles.c.published.desc(), articles.c.id.desc()).limit(min(limit, NEWS_MAX_URLS)))


def news_language(tag: str) -> str:
    """A BCP 47 tag as Google News wants it: the ISO 639 code alone, but zh-cn and zh-tw."""
    tag = tag.lower()
    return tag if tag in ("zh-cn", "zh-tw") else tag.split("-")[0]


def news_sitemap(conn: Connection, *, site_url: str, publication: str, language: str, now: datetime,
                 window: timedelta = NEWS_WINDOW, limit: int = NEWS_MAX_URLS) -> Iterator[bytes]:
    """Live articles published in (now - window, now], newest first, at most `limit` of them.

    `now` is injectable for tests (aware, or naive UTC); future-dated articles wait until their time.
    With no article in the window the file still holds one <url>, as the sitemaps.org schema
    requires of every urlset: the newest live article (or, on a site with none, its home page),
    without <news:news>. Google's news sitemap rules allow exactly that: "Once the articles are
    older than two days, either remove those URLs from the news sitemap or remove the <news:news>
    metadata" (developers.google.com/search/docs/crawling-indexing/sitemaps/news-sitemap). A 404
    would read as a broken sitemap to the crawlers robots.txt sends here.
    """
    rows = iter(conn.execute(news_query(now, window, limit)))
    first = next(rows, None)
    if first is None:
        return _chunks(_NEWS_URLSET_HEAD, [_newest_without_news(conn, site_url, now)], _URLSET_TAIL)

    def entry(row) -> str:
        article = article_from_json(row.article)
        # Each article's own language (an `en` story of a `hi` site is labelled en); `language`, the
        # site's, only stands in for a stored article that carries none.
        publication_xml = (f"<news:publication><news:name>{_escape(publication)}</news:name>"
                           f"<news:language>{_escape(news_language(article.language or language))}"
                           f"</news:language></news:publication>")
        return (f"<url><loc>{_escape(article_loc(site_url, row.slug))}</loc><news:news>{publication_xml}"
                f"<news:publication_date>{article.published.isoformat(timespec='seconds')}"
                f"</news:publication_date><news:title>{_escape(article.title)}</news:title>"
                f"</news:news></url>\n")
    return _chunks(_NEWS_URLSET_HEAD, _each_row("news_sitemap", itertools.chain([first], rows), entry),
                   _URLSET_TAIL)


def newest_live_query(now: datetime):
    """The newest live article already published at `now`: the news sitemap's entry when it has no news."""
    now = utc(now) if now.tzinfo else now
    return (select(articles.c.slug, articles.c.updated).where(articles.c.status == LIVE, articles.c.published <= now)
            .order_by(articles.c.published.desc(), articles.c.id.desc()).limit(1))


def _newest_without_news(conn: Connection, site_url: str, now: datetime) -> str:
    row = conn.execute(newest_live_query(now)).first()
    if row is None:
        return f"<url><loc>{_escape(site_url)}/</loc></url>\n"
    return _url_entry(article_loc(site_url, row.slug), w3c_datetime(row.updated, timezone.utc))


# ---- monthly article sitemaps and their index --------------------------------------------------

@dataclass(frozen=True)
class MonthlySitemap:
    """One file of the monthly article sitemaps: a UTC month of publication, or a part of one."""
    month: str      # "2025-07"
    part: int       # 1, 2, ...: a month with more articles than fit in one file is split
    urls: int
    lastmod: datetime  # naive UTC: the newest `updated` (or withdrawal) among its articles

    @property
    def path(self) -> str:
        return f"/sitemaps/articles-{self.month}{'' if self.part == 1 else f'-{self.part}'}.xml"


def parse_month_file(name: str) -> tuple[str, int] | None:
    """"2025-07" -> ("2025-07", 1), "2025-07-2" -> ("2025-07", 2); None for anything else, and for
    a month of a year no record may be published in (year 0 or 9999-12 has no datetime bounds)."""
    match = _MONTH_FILE.fullmatch(name)
    if match is None or int(match[1]) not in YEARS:
        return None
    return f"{match[1]}-{match[2]}", int(match[3] or 1)


def _url_entry(loc: str, lastmod: str) -> str:
    return f"<url><loc>{_escape(loc)}</loc><lastmod>{lastmod}</lastmod></url>\n"


def urls_per_file(site_url: str, max_urls: int = MAX_URLS, max_bytes: int = MAX_BYTES) -> int:
    """How many article URLs fit one file under both limits, from the longest entry possible."""
    longest = len(_url_entry(article_loc(site_url, "x" * SLUG_MAX), "2000-01-01T00:00:00+00:00").encode("utf-8"))
    room = max_bytes - len((_URLSET_HEAD + _URLSET_TAIL).encode("utf-8"))
    return max(1, min(max_urls, MAX_URLS, room // longest))


def _month_bounds(month: str) -> tuple[datetime, datetime]:
    year, number = map(int, month.split("-"))
    start = datetime(year, number, 1)
    return start, datetime(year + number // 12, number % 12 + 1, 1)


def _in_month(month: str, status: str = LIVE):
    start, end = _month_bounds(month)
    if status == LIVE:  # never one dated later than now, even if the scheduler is late (store.live_now)
        return (live_now(articles.c.published, articles.c.status), articles.c.published >= start,
                articles.c.published < end)
    return (articles.c.status == status, articles.c.published >= start, articles.c.published < end)


def _months(conn: Connection) -> Iterator[str]:
    """"YYYY-MM" from the month of the oldest live article to that of the newest (two index probes)."""
    def edge(order):
        return conn.execute(select(articles.c.published).where(live_now(articles.c.published, articles.c.status))
                            .order_by(order).limit(1)).scalar()
    first, last = edge(articles.c.published), edge(articles.c.published.desc())
    if first is None:
        return
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        yield f"{year:04d}-{month:02d}"
        year, month = year + month // 12, month % 12 + 1


def month_stats_query(month: str):
    """(live articles, newest updated) of a month; on the covering index, so its plan can be shown."""
    return select(func.count(), func.max(articles.c.updated)).where(*_in_month(month))


def month_withdrawn_query(month: str):
    return select(func.max(articles.c.withdrawn_at)).where(*_in_month(month, "withdrawn"))


def monthly_sitemaps(conn: Connection, per_file: int) -> list[MonthlySitemap]:
    """Every monthly sitemap file, oldest first.

    One range query per month on the covering index ix_articles_sitemap (status, published,
    updated, withdrawn_at): no table rows are read and nothing is sorted, whatever the size.
    """
    files = []
    for month in _months(conn):
        urls, lastmod = conn.execute(month_stats_query(month)).one()
        if not urls:
            continue
        # A withdrawal changes its month's file too, though no remaining record says so.
        withdrawn = conn.execute(month_withdrawn_query(month)).scalar()
        parts = -(-urls // per_file)
        for part in range(1, parts + 1):
            newest = lastmod if parts == 1 else _part_lastmod(conn, month, part, per_file)
            files.append(MonthlySitemap(month, part, min(per_file, urls - (part - 1) * per_file),
                                        max(newest, withdrawn) if withdrawn else newest))
    return files


def part_query(month: str, part: int, per_file: int, *columns):
    """The articles of one file of a month, oldest first: a range of the status+published index."""
    return (select(*columns).where(*_in_month(month))
            .order_by(articles.c.published, articles.c.id).offset((part - 1) * per_file).limit(per_file))


def _part_lastmod(conn: Connection, month: str, part: int, per_file: int) -> datetime:
    rows = part_query(month, part, per_file, articles.c.updated).subquery()
    return conn.execute(select(func.max(rows.c.updated))).scalar_one()


def month_sitemap_exists(conn: Connection, month: str, part: int, per_file: int) -> bool:
    count = conn.execute(select(func.count()).select_from(articles).where(*_in_month(month))).scalar_one()
    return 0 < part <= -(-count // per_file)


def month_sitemap(conn: Connection, month: str, part: int, *, per_file: int, site_url: str,
                  tz: ZoneInfo) -> Iterator[bytes]:
    """One monthly sitemap file: its articles oldest first, each with its `updated` as lastmod."""
    rows = conn.execution_options(stream_results=True, yield_per=2000).execute(
        part_query(month, part, per_file, articles.c.id, articles.c.version, articles.c.slug, articles.c.updated))
    entries = _each_row("sitemap", rows,
                        lambda row: _url_entry(article_loc(site_url, row.slug), w3c_datetime(row.updated, tz)))
    return _chunks(_URLSET_HEAD, entries, _URLSET_TAIL)


def _each_row(kind: str, rows: Iterable[Row], entry: Callable[[Row], str]) -> Iterator[str]:
    """entry(row) for each article row, streamed; a row it fails on is left out (render.skips)."""
    for row in rows:
        yield from each_rendered(kind, [row], entry, key=lambda row: (row.id, row.version))


def sitemap_index(files: list[MonthlySitemap], *, site_url: str, tz: ZoneInfo) -> Iterator[bytes]:
    """The monthly sitemaps; with none yet, the news sitemap, which always has a url (an index needs
    at least one sitemap in the sitemaps.org schema, as a urlset needs a url)."""
    if not files:
        return _chunks(_INDEX_HEAD, [f"<sitemap><loc>{_escape(site_url + NEWS_PATH)}</loc></sitemap>\n"], _INDEX_TAIL)
    entries = (f"<sitemap><loc>{_escape(site_url + f.path)}</loc>{_index_lastmod(f.lastmod, tz)}</sitemap>\n"
               for f in files[:MAX_URLS])
    return _chunks(_INDEX_HEAD, entries, _INDEX_TAIL)


def _index_lastmod(naive_utc: datetime, tz: ZoneInfo) -> str:
    # lastmod is optional: a stored `updated` the zone cannot hold (year 9999) leaves it out, not the file.
    try:
        return f"<lastmod>{w3c_datetime(naive_utc, tz)}</lastmod>"
    except (OverflowError, ValueError):
        return ""


# ---- robots.txt and the list of everything -----------------------------------------------------

def robots_txt(site_url: str) -> str:
    """Crawl everything but the ingest API; name the sitemap index and the news sitemap."""
    return ("User-agent: *\n"
            "Disallow: /api/\n"
            "\n"
            f"Sitemap: {site_url}{INDEX_PATH}\n"
            f"Sitemap: {site_url}{NEWS_PATH}\n")


def sitemap_paths(conn: Connection, per_file: int) -> list[str]:
    """Every sitemap path this site serves (for the static mirror)."""
    return [INDEX_PATH, NEWS_PATH] + [f.path for f in monthly_sitemaps(conn, per_file)]
