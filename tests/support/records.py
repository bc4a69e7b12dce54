"""Article records: the valid one tests vary, the samples, and storing them as the CMS does."""
from __future__ import annotations

import copy
import json

import pytest
from sqlalchemy import select

from feedsvc.ingest.records import article_from_json, parse_record
from feedsvc.ingest.write import commit_write, upsert
from feedsvc.store import article_authors, article_tags, articles
from feedsvc.web import db
from tests.support.apps import ARTICLES, SITE_URL

VALID_RECORD = {
    "id": "test-2025-08-01-monsoon",
    "slug": "monsoon-session-begins",
    "title": "Monsoon | मानसून सत्र आज से शुरू, कई विधेयक पेश होंगे",
    "summary": "संसद का मानसून सत्र आज से शुरू हो रहा है।",
    "body_html": "<p>संसद का मानसून सत्र आज से शुरू हो रहा है।</p><h2>क्या है एजेंडा</h2><p>सरकार कई विधेयक पेश करेगी।</p>",
    "section": {"key": "national", "name": "देश"},
    "tags": [{"key": "parliament", "name": "संसद"}],
    "authors": [{"key": "test-reporter", "name": "परीक्षा संवाददाता"}],
    "published": "2025-08-01T09:15:00+05:30",
    "updated": "2025-08-01T09:15:00+05:30",
    "image": {"url": "/media/test.jpg", "width": 1200, "height": 675, "caption": "संसद भवन", "credit": "फ़ाइल"},
    "status": "published",
}


def sample_image_settings():
    """The image settings an app with the default configuration ingests the samples with."""
    from feedsvc.config import DEFAULTS, from_environ
    from feedsvc.ingest import images
    media = from_environ().get("MEDIA_DIR", DEFAULTS["MEDIA_DIR"])   # the test process's (tests/support/folders.py)
    return images.ImageSettings(SITE_URL, media, images.parse_sizes(DEFAULTS["IMAGE_RENDITIONS"]),
                                images.usable_formats(DEFAULTS["IMAGE_FORMATS"]),
                                images.parse_widths(DEFAULTS["IMAGE_BODY_RENDITIONS"]))


def sample_records() -> list[dict]:
    return [json.loads(p.read_text("utf-8")) for p in sorted(ARTICLES.glob("*.json"))]


@pytest.fixture(scope="session")
def samples() -> list[dict]:
    return sample_records()


@pytest.fixture
def make_record():
    """A fresh valid record; keyword arguments replace fields (None removes one)."""
    def make(**changes) -> dict:
        record = copy.deepcopy(VALID_RECORD)
        for key, value in changes.items():
            if value is None:
                record.pop(key, None)
            else:
                record[key] = value
        return record
    return make


def put_record(client, api_headers, record: dict) -> None:
    response = client.put(f"/api/articles/{record['id']}", data=json.dumps(record, ensure_ascii=False),
                          content_type="application/json", headers=api_headers)
    assert response.status_code in (200, 201), response.get_data(as_text=True)


@pytest.fixture
def record(client, api_headers, make_record) -> dict:
    """The valid record, stored in the test's app through the ingest API."""
    record = make_record()
    put_record(client, api_headers, record)
    return record


def assert_each_record_whole(engine) -> None:
    """Every article's tag and author rows belong to the same version as its stored JSON."""
    with engine.connect() as conn:
        tags: dict[str, set[str]] = {}
        authors: dict[str, set[str]] = {}
        for row in conn.execute(select(article_tags.c.article_id, article_tags.c.tag_key)):
            tags.setdefault(row.article_id, set()).add(row.tag_key)
        for row in conn.execute(select(article_authors.c.article_id, article_authors.c.author_key)):
            authors.setdefault(row.article_id, set()).add(row.author_key)
        for row in conn.execute(select(articles.c.id, articles.c.article, articles.c.record)):
            article = article_from_json(row.article)
            assert json.loads(row.record)["title"] == article.title
            assert tags.get(row.id, set()) == {t.key for t in article.tags}, row.id
            assert authors.get(row.id, set()) == {a.key for a in article.authors}, row.id


def write(app, record: dict):
    """Store one record through the one write path, as the API does, without an HTTP request."""
    return commit_write(db.engine(app), upsert, parse_record(record, site_url=SITE_URL),
                        site_name=app.config["SITE_NAME"])
