"""Unpublished articles stay private: a draft, its old slugs and a deleted never-published draft answer
every public route exactly as a slug never used, and never reach a feed, a tombstone, a sitemap or a hub."""
from __future__ import annotations

import json

import pytest
from lxml import etree

from feedsvc.render import sitemaps
from feedsvc.web import db
from tests.support.apps import SITE_URL
from tests.support.records import put_record
from tests.support.visibility import SCOPES, assert_as_unknown, outbox_rows, scope_versions

TOMBSTONE = "{http://purl.org/atompub/tombstones/1.0}deleted-entry"
ATOM_FEEDS = ("/feeds/atom.xml", "/feeds/section/national/atom.xml", "/feeds/tag/parliament/atom.xml",
              "/feeds/author/test-reporter/atom.xml")
LATER = "2025-08-02T09:15:00+05:30"


@pytest.fixture
def app(database_url, make_app):
    """The conftest's app with a hub that is never contacted (the sender is a separate worker): outbox rows stay."""
    app = make_app(WEBSUB_HUBS=["http://127.0.0.1:9/hub"], WEBSUB_SENDER="worker")
    yield app


@pytest.fixture
def draft(client, api_headers, make_record, live) -> dict:
    """A draft renamed once: 'draft-old-slug' is its old slug, 'draft-new-slug' its current one."""
    record = make_record(id="draft-1", slug="draft-old-slug", status="draft")
    put_record(client, api_headers, record)
    record = dict(record, slug="draft-new-slug", updated=LATER)
    put_record(client, api_headers, record)
    return record


def tombstones(client) -> list[str]:
    return [t.get("ref") for path in ATOM_FEEDS for t in etree.fromstring(client.get(path).data).iter(TOMBSTONE)]


def test_a_draft_and_its_old_slug_answer_as_an_unknown_slug(client, draft):
    assert_as_unknown(client, "draft-new-slug", "draft-old-slug")


def test_a_deleted_draft_answers_as_an_unknown_slug(client, api_headers, draft):
    assert client.delete("/api/articles/draft-1", headers=api_headers).status_code == 200
    assert_as_unknown(client, "draft-new-slug", "draft-old-slug")


def sitemap_files(app) -> list:
    with db.engine(app).connect() as conn:
        return sitemaps.monthly_sitemaps(conn, per_file=1000)


def test_deleting_a_never_published_draft_leaves_no_tombstone_ping_or_trace(app, client, api_headers, draft):
    # Feeds are fetched only after: a cached copy would hide a tombstone.
    before = (outbox_rows(app), scope_versions(app), sitemap_files(app))
    assert client.delete("/api/articles/draft-1", headers=api_headers).status_code == 200
    assert tombstones(client) == []
    assert (outbox_rows(app), scope_versions(app), sitemap_files(app)) == before


def test_a_draft_put_as_withdrawn_leaves_no_tombstone(app, client, api_headers, draft):
    rows = outbox_rows(app)
    put_record(client, api_headers, dict(draft, status="withdrawn", updated="2025-08-03T09:15:00+05:30"))
    assert tombstones(client) == [] and outbox_rows(app) == rows
    assert_as_unknown(client, "draft-new-slug")


def test_a_published_then_deleted_article_keeps_its_tombstone_ping_and_410(app, client, api_headers, live):
    rows = outbox_rows(app)
    assert client.delete("/api/articles/live-1", headers=api_headers).status_code == 200
    assert tombstones(client) == ["tag:news.example,2025:articles/live-1"] * len(ATOM_FEEDS)
    assert outbox_rows(app) > rows
    assert client.get("/articles/live-story").status_code == 410
    assert client.get("/embed/live-story").status_code == 410


def test_an_unpublished_article_deleted_later_still_gets_its_tombstone_and_ping(app, client, api_headers, live):
    put_record(client, api_headers, dict(live, status="draft", updated=LATER))
    versions, rows = scope_versions(app), outbox_rows(app)
    assert client.delete("/api/articles/live-1", headers=api_headers).status_code == 200
    assert tombstones(client) == ["tag:news.example,2025:articles/live-1"] * len(ATOM_FEEDS)
    assert outbox_rows(app) > rows
    assert all(scope_versions(app)[scope] == versions[scope] + 1 for scope in SCOPES)
    assert client.get("/articles/live-story").status_code == 410


def test_a_draft_never_reaches_a_feed_or_sitemap(client, draft):
    for path in ATOM_FEEDS + ("/feeds/feed.json",):
        assert b"draft-1" not in client.get(path).data and b"draft-" not in client.get(path).data
    index = etree.fromstring(client.get(sitemaps.INDEX_PATH).data)
    for loc in index.iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc"):
        assert b"draft-" not in client.get(loc.text.removeprefix(SITE_URL)).data
    assert "draft" not in json.dumps(client.get("/feeds/feed.json").get_json())
