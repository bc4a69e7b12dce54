"""The app's SQLite connections take their page cache from DATABASE_SQLITE_CACHE_KIB (gunicorn.conf.py sets
a small one: each pooled connection of each worker holds its own)."""
from __future__ import annotations

import sqlite3

from sqlalchemy import text

from feedsvc import create_app
from feedsvc.web import db


def _cache_size(app) -> int:
    with db.engine(app).connect() as conn:
        return conn.execute(text("PRAGMA cache_size")).scalar_one()


def test_the_setting_sizes_each_connections_page_cache(tmp_path):
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/a.db", "DATABASE_SQLITE_CACHE_KIB": 512})
    assert _cache_size(app) == -512   # negative: KiB (https://sqlite.org/pragma.html#pragma_cache_size)


def test_zero_keeps_sqlites_default(tmp_path):
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/b.db"})
    assert _cache_size(app) == sqlite3.connect(":memory:").execute("PRAGMA cache_size").fetchone()[0]
