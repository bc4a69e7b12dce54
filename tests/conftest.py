"""Shared fixtures: apps on every configured database backend, clients, sample data, records."""
from __future__ import annotations

import copy
import json
import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from feedsvc import create_app, store
from feedsvc.ops import access_log
from feedsvc.web import db

ROOT = Path(__file__).resolve().parent.parent
ARTICLES = ROOT / "articles"
DATA = Path(__file__).resolve().parent / "data"
SITE_URL = "http://news.example"
API_TOKEN = "test-token-एक"

# SQLite always; PostgreSQL when FEEDSVC_TEST_POSTGRESQL_URL names a server (CI sets it, see .ci/run).
POSTGRESQL_URL = os.environ.get("FEEDSVC_TEST_POSTGRESQL_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRESQL_URL else [])


def _fresh_database(kind: str, folder: Path):
    """(url, cleanup) of an empty database: a SQLite file, or a PostgreSQL schema of its own."""
    if kind == "sqlite":
        return f"sqlite:///{folder / 'feedsvc.db'}", lambda: None
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(POSTGRESQL_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRESQL_URL else "?"

    def cleanup():
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    return f"{POSTGRESQL_URL}{separator}options=-csearch_path%3D{schema}", cleanup


def build_app(database_url: str, **overrides):
    config = {"TESTING": True, "DATABASE_URL": database_url, "SITE_URL": SITE_URL,
              "API_TOKENS": [API_TOKEN], **overrides}
    app = create_app(config)
    store.migrate(db.engine(app))
    return app


@pytest.fixture(autouse=True, scope="session")
def access_lines_at_once():
    """Access lines written as they are logged (not batched), so pytest shows each with its test."""
    access_log.install(flush_ms=0)


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def database_url(backend, tmp_path):
    url, cleanup = _fresh_database(backend, tmp_path)
    yield url
    cleanup()


@pytest.fixture
def app(database_url):
    app = build_app(database_url)
    yield app
    db.engine(app).dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def engine(app):
    return db.engine(app)


@pytest.fixture(scope="session", params=BACKENDS)
def sample_app(request, tmp_path_factory):
    """An app with every sample article imported; shared by the session, so tests must not write to it."""
    url, cleanup = _fresh_database(request.param, tmp_path_factory.mktemp(f"sample-{request.param}"))
    # Hundreds of tests read this one app from one address; rate limits have tests of their own.
    app = build_app(url, RATELIMIT_ENABLED=False)
    result = app.test_cli_runner().invoke(args=["import-articles", str(ARTICLES)])
    assert result.exit_code == 0, result.output
    yield app
    db.engine(app).dispose()
    cleanup()


@pytest.fixture
def sample_client(sample_app):
    return sample_app.test_client()


def sample_records() -> list[dict]:
    return [json.loads(p.read_text("utf-8")) for p in sorted(ARTICLES.glob("*.json"))]


@pytest.fixture(scope="session")
def samples() -> list[dict]:
    return sample_records()


@pytest.fixture
def api_headers():
    return {"Authorization": f"Bearer {API_TOKEN}"}


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


def ordered_index_plan(conn, query) -> str:
    """The plan a query gets when an ordered index walk is possible at all (see the comment below)."""
    compiled = query.compile(conn.engine, compile_kwargs={"literal_binds": True})
    if conn.dialect.name == "sqlite":
        return "\n".join(row[-1] for row in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
    # A few hundred rows are cheaper to sort than to walk in index order, so PostgreSQL would rightly
    # sort here; forbidding sorts and scans asks whether an ordered index plan exists at all.
    # The benchmark shows the plans the planner picks by itself at 1,000,000 rows.
    for setting in ("enable_sort", "enable_seqscan", "enable_bitmapscan"):
        conn.execute(text(f"SET LOCAL {setting} = off"))
    return "\n".join(row[0] for row in conn.execute(text(f"EXPLAIN {compiled}")))
