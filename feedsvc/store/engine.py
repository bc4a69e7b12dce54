"""Engines for SQLite (WAL) and PostgreSQL, and the Alembic upgrade every start runs."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine


def make_engine(url: str, *, lock_timeout: float = 30, bulk: bool = False, **kwargs) -> Engine:
    """An engine for SQLite (WAL) or PostgreSQL; `lock_timeout` bounds the wait for a locked SQLite
    file and for a PostgreSQL connection, so an outage becomes an error a request can answer.
    `bulk`: for one long writer (an import), with SQLite settings that a request process must not use."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": lock_timeout}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        if bulk:
            event.listen(engine, "connect", _sqlite_bulk_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if url.startswith("postgresql"):
        kwargs.setdefault("connect_args", {"connect_timeout": max(1, int(lock_timeout))})
    return create_engine(url, **kwargs)


def _sqlite_pragmas(dbapi_conn, _record):
    cursor = dbapi_conn.cursor()
    # Takes effect only on a new, empty database: an article row is about 12 KB (its stored form and
    # its record), which 8 KiB pages hold in half as many overflow pages; inserts take half the time.
    cursor.execute("PRAGMA page_size=8192")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL keeps this crash-safe; only a power cut may lose the last commit
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_bulk_pragmas(dbapi_conn, _record):
    cursor = dbapi_conn.cursor()
    # 64 MiB of page cache keeps the indexes of a million articles in memory while rows pour in
    # (2 MiB, the default, fits a request process, which must stay small); and the WAL is folded
    # into the database every 40 MiB rather than every 4 MiB, i.e. after each batch of articles.
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.execute("PRAGMA wal_autocheckpoint=10000")
    cursor.close()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (safe to run on every start)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


