"""Sitemaps and robots.txt: validity against the XSDs, the 48-hour news window, the 1,000 URL cap,
monthly splitting within the protocol limits, lastmod from the records, and the queries' plans."""
from __future__ import annotations

import gzip
import json
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from lxml import etree
from sqlalchemy import text

from bench.synth import IST, generate_records
from feedsvc import store
from feedsvc.ingest import importer
from feedsvc.render import sitemaps
from feedsvc.validate import validate_document
from feedsvc.web import db
from tests.support.apps import BACKENDS, SITE_URL, AppFactory, fresh_database
from tests.support.plans import ordered_index_plan

pytestmark = [pytest.mark.xdist_group("sitemaps"), pytest.mark.postgresql_once]

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "feedsvc" / "schemas"
NS = {"sm": sitemaps.SITEMAP_NS, "news": sitemaps.NEWS_NS}
KOLKATA = ZoneInfo("Asia/Kolkata")
XML = "application/xml; charset=utf-8"


def import_records(app, records) -> None:
    """Store records through the import path (as JSON Lines), in batches as `import-articles` does."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "records.jsonl"
        path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records), "utf-8")
        report = importer.import_files(db.engine(app), [path], site_url=SITE_URL,
                                     site_name=app.config["SITE_NAME"])
    assert not report.errors and report.stored == len(records)


def fetch(client, path: str) -> bytes:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    assert response.headers["Content-Type"] == XML
    return response.get_data()


def locs(body: bytes) -> list[str]:
    return [e.text for e in etree.fromstring(body).iterfind("sm:url/sm:loc", NS)]


def assert_valid(body: bytes, kind: str) -> None:
    """No problems from the validation module (XSDs + limits), and the raw XSD agrees."""
    assert validate_document(body, kind) == []
    schema = "siteindex.xsd" if kind == "sitemapindex" else "sitemap.xsd"
    assert etree.XMLSchema(etree.parse(str(SCHEMA_DIR / schema))).validate(etree.fromstring(body))


# ---- a generated corpus over several months (shared, read only) --------------------------------

@dataclass(frozen=True)
class Stored:
    """What the sitemaps show of a generated record (its slug is given, so no parsing is needed)."""
    id: str
    slug: str
    published: datetime
    updated: datetime


CORPUS_SIZE = 600
PER_FILE = 50


@pytest.fixture(scope="module", params=BACKENDS)
def corpus_app(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"sitemaps-{request.param}")
    with fresh_database(request.param, folder) as url, AppFactory(url, instance=folder / "instance") as make_app:
        app = make_app(SITEMAP_MAX_URLS=PER_FILE)
        records = list(generate_records(CORPUS_SIZE, seed=11, start=datetime(2025, 11, 1, 6, 0, tzinfo=IST),
                                        span_days=150))
        import_records(app, records)
        app.corpus = [Stored(r["id"], r["slug"], datetime.fromisoformat(r["published"]),
                             datetime.fromisoformat(r["updated"])) for r in records]
        yield app


def test_index_lists_monthly_sitemaps_that_hold_every_live_article_once(corpus_app):
    client = corpus_app.test_client()
    index = fetch(client, "/sitemap.xml")
    assert_valid(index, "sitemapindex")
    entries = etree.fromstring(index).findall("sm:sitemap", NS)
    months = {e.findtext("sm:loc", namespaces=NS).rsplit("articles-", 1)[1][:7] for e in entries}
    assert months == {store.utc(a.published).strftime("%Y-%m") for a in corpus_app.corpus}
    assert len(months) >= 5

    seen = []
    for entry in entries:
        loc = entry.findtext("sm:loc", namespaces=NS)
        assert loc.startswith(f"{SITE_URL}/sitemaps/articles-")
        body = fetch(client, loc[len(SITE_URL):])
        assert_valid(body, "sitemap")
        urls = etree.fromstring(body).findall("sm:url", NS)
        assert 0 < len(urls) <= PER_FILE
        # The index's lastmod is the newest lastmod of the file it points at.
        assert entry.findtext("sm:lastmod", namespaces=NS) == max(
            (u.findtext("sm:lastmod", namespaces=NS) for u in urls), key=datetime.fromisoformat)
        seen += locs(body)
    expected = [f"{SITE_URL}/articles/{a.slug}" for a in corpus_app.corpus]
    assert sorted(seen) == sorted(expected) and len(set(seen)) == len(seen)


def test_month_with_more_articles_than_fit_is_split_into_parts(corpus_app):
    files = [f for f in _files(corpus_app) if f.month == "2025-08"]
    in_august = [a for a in corpus_app.corpus if store.utc(a.published).strftime("%Y-%m") == "2025-08"]
    assert len(in_august) > 2 * PER_FILE  # the corpus is built to need three parts here
    assert [f.part for f in files] == [1, 2, 3] and sum(f.urls for f in files) == len(in_august)
    assert [f.path for f in files] == ["/sitemaps/articles-2025-08.xml", "/sitemaps/articles-2025-08-2.xml",
                                       "/sitemaps/articles-2025-08-3.xml"]
    client = corpus_app.test_client()
    # Oldest first across the parts, so a new article only ever lands in the last part.
    first, second = locs(fetch(client, files[0].path)), locs(fetch(client, files[1].path))
    order = [f"{SITE_URL}/articles/{a.slug}" for a in sorted(in_august, key=lambda a: (store.utc(a.published), a.id))]
    assert first + second == order[:2 * PER_FILE]


def _files(app):
    with db.engine(app).connect() as conn:
        return sitemaps.monthly_sitemaps(conn, PER_FILE)


def test_url_lastmod_is_the_records_updated_with_the_newsroom_offset(corpus_app):
    article = max(corpus_app.corpus, key=lambda a: a.updated - a.published)  # one edited after publication
    assert article.updated > article.published
    month = store.utc(article.published).strftime("%Y-%m")
    client = corpus_app.test_client()
    for f in (f for f in _files(corpus_app) if f.month == month):
        root = etree.fromstring(fetch(client, f.path))
        for url in root.iterfind("sm:url", NS):
            if url.findtext("sm:loc", namespaces=NS) == f"{SITE_URL}/articles/{article.slug}":
                lastmod = url.findtext("sm:lastmod", namespaces=NS)
                assert lastmod.endswith("+05:30")
                assert datetime.fromisoformat(lastmod) == article.updated
                return
    pytest.fail("article not found in its month's sitemap")


def test_missing_months_and_parts_are_404(corpus_app):
    client = corpus_app.test_client()
    for path in ("/sitemaps/articles-2024-01.xml", "/sitemaps/articles-2025-08-4.xml",
                 "/sitemaps/articles-2025-08-1.xml", "/sitemaps/articles-2025-13.xml",
                 "/sitemaps/articles-latest.xml"):
        assert client.get(path).status_code == 404, path


def test_head_answers_without_a_body(corpus_app):
    response = corpus_app.test_client().head("/sitemaps/articles-2025-08.xml")
    assert response.status_code == 200 and response.headers["Content-Type"] == XML and response.get_data() == b""


def test_robots_txt_names_both_sitemaps(corpus_app):
    response = corpus_app.test_client().get("/robots.txt")
    assert response.status_code == 200 and response.headers["Content-Type"] == "text/plain; charset=utf-8"
    lines = response.get_data(as_text=True).splitlines()
    assert "User-agent: *" in lines and "Disallow: /api/" in lines
    assert f"Sitemap: {SITE_URL}/sitemap.xml" in lines and f"Sitemap: {SITE_URL}/sitemaps/news.xml" in lines


@pytest.mark.parametrize("query,index", [
    (lambda: sitemaps.news_query(datetime(2025, 11, 1)), "ix_articles_status_published"),
    (lambda: sitemaps.part_query("2025-08", 2, PER_FILE, store.articles.c.slug, store.articles.c.updated),
     "ix_articles_status_published"),
    (lambda: sitemaps.month_stats_query("2025-08"), "ix_articles_sitemap"),
    (lambda: sitemaps.month_withdrawn_query("2025-08"), "ix_articles_sitemap"),
], ids=["news", "month-part", "month-stats", "month-withdrawn"])
def test_sitemap_queries_read_an_index_without_sorting(corpus_app, query, index):
    with db.engine(corpus_app).connect() as conn:
        plan = ordered_index_plan(conn, query())
    assert index in plan and "TEMP B-TREE" not in plan and "Sort" not in plan, plan
    if "stats" in index or "sitemap" in index:
        assert "COVERING INDEX" in plan or "Index Only Scan" in plan, plan  # no table rows read


# ---- limits ------------------------------------------------------------------------------------

def test_default_file_limit_is_the_protocols_50000_urls():
    assert sitemaps.urls_per_file(SITE_URL) == 50_000
    assert sitemaps.urls_per_file(SITE_URL, max_urls=10**6) == 50_000


def test_byte_limit_also_splits_files(database_url, make_record, make_app):
    max_bytes = 2_000
    app = make_app(SITEMAP_MAX_BYTES=max_bytes)
    records = [make_record(id=f"b-{n}", slug=f"{'लंबा'[:0]}long-slug-{n:03d}-" + "x" * 60,
                           published=f"2025-08-{1 + n % 28:02d}T09:00:00+05:30",
                           updated=f"2025-08-{1 + n % 28:02d}T09:00:00+05:30") for n in range(40)]
    import_records(app, records)
    per_file = sitemaps.urls_per_file(SITE_URL, max_bytes=max_bytes)
    assert per_file < 40
    client = app.test_client()
    index = fetch(client, "/sitemap.xml")
    paths = [loc.text[len(SITE_URL):] for loc in etree.fromstring(index).iterfind("sm:sitemap/sm:loc", NS)]
    assert len(paths) == -(-40 // per_file)
    total = 0
    for path in paths:
        body = fetch(client, path)
        assert len(body) <= max_bytes
        assert_valid(body, "sitemap")
        total += len(locs(body))
    assert total == 40


@pytest.mark.slow
def test_a_full_month_of_50001_articles_splits_at_exactly_50000(make_app):
    """The real protocol limit. The rows are generated by SQLite itself (an import would take a minute)."""
    app = make_app()
    engine = db.engine(app)
    stamp = "printf('%s000', strftime('%Y-%m-%d %H:%M:%f', '2025-03-01', '+' || (n * 30 + {}) || ' seconds'))"
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO articles (id, slug, status, section_key, section_name, published, updated, version, "
            "modified_at, article, record) "
            "WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n < 50000) "
            f"SELECT printf('big-%06d', n), printf('big-%06d', n), 'published', 'national', 'देश', "
            f"{stamp.format(0)}, {stamp.format(5)}, 1, '2025-03-01 00:00:00.000000', '{{}}', '{{}}' FROM seq"))
    client = app.test_client()
    index = etree.fromstring(fetch(client, "/sitemap.xml"))
    assert [loc.text for loc in index.iterfind("sm:sitemap/sm:loc", NS)] == [
        f"{SITE_URL}/sitemaps/articles-2025-03.xml", f"{SITE_URL}/sitemaps/articles-2025-03-2.xml"]
    first = fetch(client, "/sitemaps/articles-2025-03.xml")
    assert len(first) <= sitemaps.MAX_BYTES
    # The XSD itself (maxOccurs 50000); the validation module's per-URL checks are too slow at this size.
    assert etree.XMLSchema(etree.parse(str(SCHEMA_DIR / "sitemap.xsd"))).validate(etree.fromstring(first))
    urls = locs(first)
    assert len(urls) == 50_000 and urls[0] == f"{SITE_URL}/articles/big-000000"
    second = fetch(client, "/sitemaps/articles-2025-03-2.xml")
    assert locs(second) == [f"{SITE_URL}/articles/big-050000"]
    assert b"<lastmod>2025-03-18T14:10:05+05:30</lastmod>" in second  # 50,000 x 30 s + 5 s after 1 March UTC


# ---- the Google News sitemap -------------------------------------------------------------------

NOW = datetime(2025, 8, 3, 12, 0, tzinfo=timezone.utc)


def _at(hours_before: float) -> str:
    return (NOW - timedelta(hours=hours_before)).astimezone(KOLKATA).isoformat(timespec="seconds")


def _news(app, now=NOW, **kwargs) -> bytes:
    with db.engine(app).connect() as conn:
        return b"".join(sitemaps.news_sitemap(conn, site_url=SITE_URL, publication=app.config["SITE_NAME"],
                                              language=app.config["SITE_LANGUAGE"], now=now, **kwargs))


def test_news_sitemap_holds_the_last_48_hours_newest_first(app, make_record):
    def rec(name, hours, **changes):
        return make_record(id=name, slug=name, title=f"{name} | ख़बर", published=_at(hours), updated=_at(hours),
                           **changes)
    import_records(app, [rec("fresh", 1), rec("yesterday", 30), rec("almost-old", 47.9), rec("old", 48.1),
                         rec("scheduled", -1), rec("pulled", 2, status="withdrawn"),
                         rec("unfinished", 3, status="draft")])
    body = _news(app)
    assert_valid(body, "newssitemap")
    assert locs(body) == [f"{SITE_URL}/articles/{s}" for s in ("fresh", "yesterday", "almost-old")]
    # The same store a day later: only what is still within 48 hours.
    assert locs(_news(app, now=NOW + timedelta(hours=24))) == [
        f"{SITE_URL}/articles/{s}" for s in ("scheduled", "fresh")]


def test_news_sitemap_without_recent_news_lists_the_newest_article_without_news_metadata(app, make_record):
    """Google: older URLs may stay in a news sitemap without <news:news>; the schema needs one url."""
    import_records(app, [make_record(id=name, slug=name, published=_at(hours), updated=_at(hours - 1))
                         for name, hours in (("older", 100), ("newest-old", 60), ("scheduled", -5))])
    body = _news(app)
    assert_valid(body, "newssitemap")
    assert locs(body) == [f"{SITE_URL}/articles/newest-old"]
    root = etree.fromstring(body)
    assert root.find("sm:url/news:news", NS) is None
    assert datetime.fromisoformat(root.findtext("sm:url/sm:lastmod", namespaces=NS)) == \
        datetime.fromisoformat(_at(59)).replace(microsecond=0)


def test_news_entries_carry_publication_date_with_offset_and_the_exact_title(app, make_record):
    record = make_record(published=_at(5), updated=_at(1))
    import_records(app, [record])
    root = etree.fromstring(_news(app))
    news = root.find("sm:url/news:news", NS)
    assert news.findtext("news:publication/news:name", namespaces=NS) == "समाचार दर्पण"
    assert news.findtext("news:publication/news:language", namespaces=NS) == "hi"
    assert news.findtext("news:publication_date", namespaces=NS) == _at(5)
    assert news.findtext("news:publication_date", namespaces=NS).endswith("+05:30")
    assert news.findtext("news:title", namespaces=NS) == record["title"]
    assert "&amp;" not in record["title"]


@pytest.mark.slow
def test_news_sitemap_stops_at_1000_urls_keeping_the_newest(app):
    start = datetime.now(timezone.utc) - timedelta(minutes=5)
    records = list(generate_records(1_003, seed=5, start=start.astimezone(IST), span_days=1))
    import_records(app, records)
    body = fetch(app.test_client(), "/sitemaps/news.xml")
    assert_valid(body, "newssitemap")
    newest = sorted(records, key=lambda r: datetime.fromisoformat(r["published"]), reverse=True)[:1000]
    assert locs(body) == [f"{SITE_URL}/articles/{r['slug']}" for r in newest]
    assert len(_news(app, now=start, limit=10_000).split(b"<url>")) - 1 == 1000  # the cap is Google's, not a default


def test_empty_site_serves_valid_sitemaps(client):
    # An index needs a sitemap (sitemaps.org schema): with no month yet, the news sitemap.
    index = fetch(client, "/sitemap.xml")
    assert_valid(index, "sitemapindex")
    assert [e.text for e in etree.fromstring(index).iterfind("sm:sitemap/sm:loc", NS)] == [
        f"{SITE_URL}/sitemaps/news.xml"]
    # A urlset needs a url (sitemaps.org schema): with no article at all, the home page.
    news = fetch(client, "/sitemaps/news.xml")
    assert_valid(news, "newssitemap")
    assert locs(news) == [f"{SITE_URL}/"]


# ---- HTTP: caching, and following writes -------------------------------------------------------

def put(client, record, headers):
    return client.put(f"/api/articles/{record['id']}", data=json.dumps(record, ensure_ascii=False),
                      content_type="application/json", headers=headers)


def test_sitemaps_answer_conditional_gets_and_compress(client, api_headers, make_record):
    put(client, make_record(), api_headers)
    for path in ("/sitemap.xml", "/sitemaps/news.xml", "/sitemaps/articles-2025-08.xml"):
        first = client.get(path)
        assert first.status_code == 200 and first.headers["ETag"] and "public" in first.headers["Cache-Control"]
        assert client.get(path, headers={"If-None-Match": first.headers["ETag"]}).status_code == 304
        packed = client.get(path, headers={"Accept-Encoding": "gzip"})
        assert packed.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(packed.get_data()) == first.get_data()


def test_a_withdrawal_leaves_the_sitemap_and_moves_its_lastmod(client, api_headers, make_record):
    keep = make_record(id="keep", slug="keep")
    pulled = make_record(id="pulled", slug="pulled", published="2025-08-02T09:00:00+05:30",
                         updated="2025-08-02T09:00:00+05:30")
    put(client, keep, api_headers)
    put(client, pulled, api_headers)
    before = client.get("/sitemap.xml")
    assert locs(fetch(client, "/sitemaps/articles-2025-08.xml")) == [
        f"{SITE_URL}/articles/keep", f"{SITE_URL}/articles/pulled"]
    assert client.delete("/api/articles/pulled", headers=api_headers).status_code == 200
    assert locs(fetch(client, "/sitemaps/articles-2025-08.xml")) == [f"{SITE_URL}/articles/keep"]
    after = client.get("/sitemap.xml", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200  # the old copy is no longer current
    lastmod = etree.fromstring(after.get_data()).findtext("sm:sitemap/sm:lastmod", namespaces=NS)
    assert datetime.fromisoformat(lastmod) > datetime.fromisoformat(pulled["updated"])  # the withdrawal's time


@pytest.mark.parametrize("month", ["0000-01", "0001-01", "9999-12", "1969-12", "2101-01"])
def test_months_outside_the_years_a_record_may_have_are_404(client, month):
    # Year 0 and the month after 9999-12 have no datetime: asking for them once answered 500.
    assert client.get(f"/sitemaps/articles-{month}.xml").status_code == 404
    assert sitemaps.parse_month_file(month) is None
