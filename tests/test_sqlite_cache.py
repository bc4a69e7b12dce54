"""The app's SQLite connections take their page cache from DATABASE_SQLITE_CACHE_KIB (gunicorn.conf.py sets
a small one: each pooled connection of each worker holds its own)."""
from __future__ import annotations

import sqlite3

from sqlalchemy import text

from feedsvc.web import db, documents


def _cache_size(app) -> int:
    with db.engine(app).connect() as conn:
        return conn.execute(text("PRAGMA cache_size")).scalar_one()


def test_the_setting_sizes_each_connections_page_cache(make_app):
    app = make_app(DATABASE_SQLITE_CACHE_KIB=512)
    assert _cache_size(app) == -512   # negative: KiB (https://sqlite.org/pragma.html#pragma_cache_size)


def test_zero_keeps_sqlites_default(make_app):
    app = make_app()
    assert _cache_size(app) == sqlite3.connect(":memory:").execute("PRAGMA cache_size").fetchone()[0]


def test_the_shared_fragment_file_takes_the_same_page_cache(make_app, tmp_path):
    app = make_app(DATABASE_SQLITE_CACHE_KIB=512, SERVER_PROCESSES=2, RATELIMIT_ENABLED=False,
                   FEED_FRAGMENTS_SHARED_DIR=str(tmp_path))
    shared = documents.fragments(app).shared
    with app.app_context():
        shared.get_all([])   # opens its connection
    assert shared._connection().execute("PRAGMA cache_size").fetchone()[0] == -512
