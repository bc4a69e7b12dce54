"""Engines for SQLite (WAL) and PostgreSQL, and the Alembic upgrade every start runs."""
from __future__ import annotations

import functools
import os
import threading
from pathlib import Path
from typing import Callable

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine


def make_engine(url: str, *, lock_timeout: float = 30, bulk: bool = False, prepared_statements: bool = True,
                sqlite_cache_kib: int = 0, **kwargs) -> Engine:
    """An engine for SQLite (WAL) or PostgreSQL; `lock_timeout` bounds the wait for a locked SQLite
    file and for a PostgreSQL connection (a new one, or one of the pool's), so an outage becomes an
    error a request can answer. `bulk`: for one long writer (an import), with SQLite settings that a
    request process must not use. `prepared_statements=False` for a pooler in transaction mode.
    `sqlite_cache_kib`: each SQLite connection's page cache (0: SQLite's default)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": lock_timeout}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        if sqlite_cache_kib > 0:
            event.listen(engine, "connect", functools.partial(_sqlite_cache, sqlite_cache_kib))
        if bulk:
            event.listen(engine, "connect", _sqlite_bulk_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_timeout", lock_timeout)
    if url.startswith("postgresql"):
        connect_args: dict[str, int | None] = {"connect_timeout": max(1, int(lock_timeout))}
        if not prepared_statements:
            # psycopg prepares a query server-side once it has run prepare_threshold (5) times on a
            # connection; None turns that off (https://www.psycopg.org/psycopg3/docs/advanced/prepare.html:
            # "You can disable the use of prepared statements on a connection by setting its
            # prepare_threshold attribute to None", a connect() keyword since 3.1). PgBouncer in
            # transaction mode hands each transaction any server connection, where a statement prepared
            # on another does not exist; its FAQ: "the only way to keep using PgBouncer in this mode is
            # to disable prepared statements in the client" (quoted in pgbouncer/pgbouncer#757; 1.21
            # added max_prepared_statements, Debian 12 ships 1.18). tests/test_multi_node.py shows both.
            connect_args["prepare_threshold"] = None
        kwargs.setdefault("connect_args", connect_args)
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


def _sqlite_cache(kib: int, dbapi_conn, _record):
    dbapi_conn.execute(f"PRAGMA cache_size=-{int(kib)}")   # negative: KiB, not pages (sqlite.org/pragma.html#pragma_cache_size)


def _sqlite_bulk_pragmas(dbapi_conn, _record):
    cursor = dbapi_conn.cursor()
    # 64 MiB of page cache keeps the indexes of a million articles in memory while rows pour in
    # (2 MiB, the default, fits a request process, which must stay small); and the WAL is folded
    # into the database every 40 MiB rather than every 4 MiB, i.e. after each batch of articles.
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.execute("PRAGMA wal_autocheckpoint=10000")
    cursor.close()


def change_probe(engine: Engine) -> Callable[[], int] | None:
    """For a SQLite file: a function returning a number that moves whenever any connection, in any
    process, has committed to the database since the previous call; None for other databases.

    It reads `PRAGMA data_version` on a connection of its own that never writes (sqlite.org/pragma.html
    #pragma_data_version: "The integer values returned by two invocations of "PRAGMA data_version"
    from the same connection will be different if changes were committed to the database by any
    other connection in the interim"). About 4 µs a call (two fcntl locks and an fstat; in process,
    2026-12-07), where reading a scope's counter through the pool took about 250 µs. It never waits
    for a lock: while the file is locked it raises at once, and the caller reads the store itself
    (which waits its timeout once). The connection is closed with the engine's pool (dispose).
    """
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return None
    cargs, cparams = engine.dialect.create_connect_args(engine.url)
    cparams = {**cparams, "timeout": 0, "check_same_thread": False}
    lock = threading.Lock()
    held: list = [None, None]   # (connection, the process that opened it): a forked child opens its own

    def probe() -> int:
        with lock:
            if held[1] != os.getpid():
                connection = engine.dialect.loaded_dbapi.connect(*cargs, **cparams)
                connection.isolation_level = None   # autocommit: each PRAGMA reads the newest commit
                held[:] = [connection, os.getpid()]
            return held[0].execute("PRAGMA data_version").fetchone()[0]

    def close(*_args) -> None:
        # An idle connection to a WAL database keeps a shared lock: let go of it with the pool's.
        with lock:
            if held[0] is not None and held[1] == os.getpid():
                held[0].close()
            held[:] = [None, None]
    event.listen(engine, "engine_disposed", close)
    return probe


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (safe to run on every start)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    # Not in a transaction of ours: env.py runs each migration in its own (see there).
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


