"""Rows 5–7: import speed, the newest-50 queries at a million rows (SQLite, PostgreSQL), worker memory.

The million-row SQLite database comes from bench/load.py (built once, kept in bench/out/). The
PostgreSQL rows are copied from it into a schema of this run's own, dropped afterwards: only the
columns the queries read (id, status, section, published, the video flag) are real;
the bodies stay empty since the query never touches them.
"""
from __future__ import annotations

import os
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

from feedsvc import create_app, store
from feedsvc.ingest import importer
from feedsvc.web import db

from . import load, wrk
from .serve import app_env, fetch
from .servers import Gunicorn, rss_kib, shared_and_private_kib
from .stats import REPEATS, Row, Sample, Table

IMPORT_ROWS = int(os.environ.get("BENCH_IMPORT_ROWS", 5000))
POSTGRESQL_URL = os.environ.get("BENCH_POSTGRESQL_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
QUERY_RUNS = 200
MEMORY_SECONDS = 15
SETTLE_SECONDS = 2
# Named for the default BENCH_ROWS (1,000,000); a smaller run keeps the names, its rows say the count.
IMPORT_RATE_ROWS = {
    "import-rate": "BENCH_IMPORT_ROWS (5,000) records parsed, validated, upserted in process (target ≥ 2,000/s)",
}
BIG_LOAD_ROWS = {
    "import-1m": "the BENCH_ROWS corpus in one `flask import-articles` (built once, kept in bench/out/)",
}
QUERY_ROWS = {
    f"newest-50-1m-{backend.lower()}-{scope}": f"newest 50 of the {label} at BENCH_ROWS rows, {backend} (target < {ms})"
    for backend, ms in (("SQLite", "1 ms"), ("PostgreSQL", "2.5 ms"))
    for scope, label in (("site", "whole site"), ("section", "busiest section"), ("video", "video scope"))
}
MEMORY_ROWS = {
    "worker-rss-1m": "RSS per gunicorn worker after load phase 1, BENCH_ROWS articles stored (target < 100 MiB)",
    "worker-rss-1m-phase2": "RSS per worker after an identical phase 2 (target < 100 MiB)",
    "worker-rss-1m-growth": "RSS growth per worker from phase 1 to 2 (target flat: < 2 MiB)",
}


# ---- row 5: import ------------------------------------------------------------------------------

def import_rate(table: Table) -> Sample:
    corpus = load.corpus(IMPORT_ROWS)
    rates = []
    for _ in range(3):
        with tempfile.TemporaryDirectory(dir=load.OUT) as folder:
            app = create_app({"DATABASE_URL": f"sqlite:///{folder}/import.db", "SITE_URL": "http://news.example"})
            db.engine(app).dispose()   # the app gives its settings; the import has its engine
            engine = importer.import_engine(app.config["DATABASE_URL"])  # as `flask import-articles` does
            store.migrate(engine)
            started = time.perf_counter()
            report = importer.import_files(engine, [corpus], site_url=app.config["SITE_URL"],
                                         site_name=app.config["SITE_NAME"])
            rates.append(report.stored / (time.perf_counter() - started))
            engine.dispose()
    section = "import into SQLite"
    sample = Sample(rates, "records/s", higher_is_better=True)
    table.add(Row("import-rate", section, f"{IMPORT_ROWS:,} records, parse + validate + upsert (in process)", sample,
                  target="≥ 2,000/s", met=sample.median >= 2000))
    return sample


def million_load(table: Table, loaded: load.Loaded, rows: int) -> None:
    how = "built in this run" if loaded.built_now else "built by an earlier run, kept in bench/out/"
    table.add(Row("import-1m", "import into SQLite", f"{loaded.records:,} records in one `flask import-articles` ({how})",
                  Sample([loaded.rate], "records/s", True),
                  note=f"{loaded.seconds / 60:.1f} min, built {loaded.built or 'at an unrecorded time'}, "
                       + (f"load {loaded.load[0]:.1f} then {loaded.load[1]:.1f}" if loaded.load else "load not recorded"),
                  target="one command", met=loaded.records >= rows))


# ---- row 6: newest 50 at a million rows ---------------------------------------------------------

def _busiest_section(conn) -> str:
    return conn.execute(text("SELECT scope FROM scope_state WHERE scope LIKE 'section:%' "
                             "ORDER BY version DESC LIMIT 1")).scalar_one()


def _time_query(conn, statement, runs: int = QUERY_RUNS) -> Sample:
    compiled = statement.compile(conn.engine, compile_kwargs={"literal_binds": True})
    sql = text(str(compiled))
    conn.execute(sql).all()
    values = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        for _ in range(runs):
            conn.execute(sql).all()
        values.append((time.perf_counter() - started) / runs * 1000)
    return Sample(values, "ms")


def _plan(conn, statement) -> list[str]:
    sql = str(statement.compile(conn.engine, compile_kwargs={"literal_binds": True}))
    if conn.dialect.name == "sqlite":
        return [row[-1] for row in conn.execute(text("EXPLAIN QUERY PLAN " + sql))]
    return [row[0] for row in conn.execute(text("EXPLAIN ANALYZE " + sql))]


def queries(table: Table, loaded: load.Loaded, plans: list[str]) -> None:
    engine = store.make_engine(loaded.url)
    store.migrate(engine)   # a database kept from an older run gains what the queries read (the video flag)
    with engine.connect() as conn:
        section = _busiest_section(conn)
        _measure_queries(table, conn, "SQLite", _scopes(section), 1.0, plans, loaded.records)
    engine.dispose()
    try:
        postgresql(table, loaded, section, plans)
    except Exception as exc:  # a missing server is reported, not fatal
        reason = f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:80]}"
        for key in ("site", "section", "video"):
            table.add(Row(f"newest-50-1m-postgresql-{key}", f"newest 50 at {loaded.records:,} rows",
                          f"PostgreSQL, {key}: not measured ({reason})", None))


def _scopes(section: str) -> list[tuple[str, str, str]]:
    return [("site", "site", "whole site"), ("section", section, section), ("video", "video", "video scope")]


def _measure_queries(table, conn, backend, scopes, target_ms, plans, rows) -> None:
    for key, scope, label in scopes:
        statement = store.newest_ids_query(scope, 50)
        sample = _time_query(conn, statement)
        table.add(Row(f"newest-50-1m-{backend.lower()}-{key}", f"newest 50 at {rows:,} rows", f"{backend}, {label}", sample,
                      target=f"< {target_ms:g} ms", met=sample.median < target_ms))
        plans.append(f"{backend}, {label}:\n    " + "\n    ".join(_plan(conn, statement)))


def postgresql(table: Table, loaded: load.Loaded, section: str, plans: list[str]) -> None:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRESQL_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = None
    try:
        engine = store.make_engine(f"{POSTGRESQL_URL}?options=-csearch_path%3D{schema}")
        store.migrate(engine)
        _copy_index_columns(loaded.database, engine)
        with engine.connect() as conn:
            _measure_queries(table, conn, "PostgreSQL", _scopes(section), 2.5, plans, loaded.records)
    finally:
        if engine is not None:
            engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _copy_index_columns(sqlite_path: Path, engine) -> None:
    source = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
    rows = source.execute("SELECT id, status, section_key, published, has_video FROM articles "
                          "INDEXED BY ix_articles_section_status_published")
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        with cursor.copy("COPY articles (id, slug, status, section_key, section_name, published, updated, "
                         "version, modified_at, article, record, has_video) FROM STDIN") as copy:
            for article_id, status, section, published, has_video in rows:
                copy.write_row((article_id, article_id, status, section, section, published, published, 1,
                                published, "", "", bool(has_video)))
        cursor.execute("INSERT INTO scope_state SELECT DISTINCT 'section:' || section_key, section_key, 1, "
                       "now() FROM articles")
        raw.commit()
        raw.driver_connection.autocommit = True    # VACUUM refuses to run inside a transaction
        raw.driver_connection.execute("VACUUM ANALYZE articles")  # as autovacuum would: statistics, visibility map
    finally:
        raw.close()
        source.close()


# ---- row 7: memory per worker -------------------------------------------------------------------

# Documents about every scope, asked first in every run of the memory load: the OPML lists every feed
# (50,000 tags: the biggest document a worker serves), the directory sorts every scope's name.
WHOLE_SITE = ("/feeds.opml", "/feeds", "/sitemaps/news.xml")
# Scopes whose feeds every run asks for too: the ones most readers poll, and the longest feeds.
HEAD_KINDS = ("site", "video", "section")


def memory(table: Table, loaded: load.Loaded, workdir: Path) -> None:
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)   # `--only worker-rss-1m` runs no step that made it
    env = app_env(loaded.url)
    with Gunicorn("wsgi:app", env=env, workers=2, log_path=logs / "memory.log") as app:
        head, tail = _load_paths(loaded)
        paths_file = workdir / "memory-paths.txt"
        paths_file.write_text("\n".join(head + tail) + "\n")
        # Built once before the load (the OPML of 50,000 tags takes longer than wrk waits for an answer):
        # a few times each, as sequential requests may land on either worker.
        for path in WHOLE_SITE * 3:
            assert fetch(app.url(path))[0] == 200, path
        walk = _Walk(app, paths_file, len(head), len(tail))
        warm_up = _warm_up(app, walk)
        phases = []
        for _ in range(2):
            walk.run()
            phases.append(_settled_rss(app))
        shares = _shares(app)
    section = (f"memory per gunicorn worker, {loaded.records:,} articles stored ({len(head) + len(tail):,} URLs: "
               f"every feed of every scope, OPML, directory, sitemap, {ARTICLE_PAGES} article pages; each run asks "
               f"the {len(head)} of the site, sections and whole-site documents, then walks on through the rest, "
               f"{walk.walked:,} of them in all; {warm_up} s warm-up until every worker's caches are full, "
               f"then 2 phases of {MEMORY_SECONDS} s)")
    first, second = phases
    peak = max(max(p.values()) for p in phases)
    table.add(Row("worker-rss-1m", section, "RSS after load phase 1, per worker", Sample(list(first.values()), "MiB"),
                  target="< 100 MiB", met=max(first.values()) < 100, value=max(first.values()), statistic="max"))
    table.add(Row("worker-rss-1m-phase2", section, "RSS after phase 2 (the same load, walking on), per worker",
                  Sample(list(second.values()), "MiB"), target="< 100 MiB", met=peak < 100,
                  value=max(second.values()), statistic="max", note=shares))
    growth = [second[pid] - first[pid] for pid in first if pid in second]
    table.add(Row("worker-rss-1m-growth", section, "growth phase 1 -> 2, per worker", Sample(growth or [0.0], "MiB"),
                  target="flat (< 2 MiB)", met=bool(growth) and max(growth) < 2,
                  value=max(growth or [0.0]), statistic="max"))


class _Walk:
    """Runs of wrk over the memory load's paths: each asks the `head` paths first, then walks on through
    the rest from where the previous run stopped. With 50,000 tags the list holds ~150,000 feeds, and a
    run gets through ~1,000 requests on this machine: run after run from the list's start (as before),
    every run asked the same ~1,000 feeds of little tags, and no OPML, directory, site or section
    feed at all, while a worker serving readers gets every feed of every scope in time."""

    def __init__(self, app, paths_file: Path, head: int, rest: int):
        self.app, self.paths_file, self.head, self.rest = app, paths_file, head, rest
        self.start = self.walked = 0

    def run(self) -> None:
        rate = wrk.run(self.app.url("/"), paths_file=self.paths_file, head=self.head, start=self.start,
                       seconds=MEMORY_SECONDS, connections=8)
        walked = max(0, round(rate * MEMORY_SECONDS) - self.head)   # wrk reports a rate, not where it stopped
        self.start = (self.start + walked) % max(1, self.rest)
        self.walked = min(self.rest, self.walked + walked)


def _warm_up(app, walk: _Walk, most_rounds: int = 8) -> int:
    """Load until no worker's RSS moves by a MiB in a round, so the phases compare steady states:
    wrk's connections land unevenly on the workers, and a worker that has not yet rendered every
    kind of document grows while it does (its render caches filling), which is not a leak. Returns the seconds."""
    before = _settled_rss(app)
    for round_ in range(1, most_rounds + 1):
        walk.run()
        after = _settled_rss(app)
        if round_ >= 2 and all(abs(after[pid] - before.get(pid, 0)) < 1 for pid in after):
            break
        before = after
    return round_ * MEMORY_SECONDS


def _settled_rss(app) -> dict[int, float]:
    """MiB per worker once the requests still in flight when wrk stopped are done. Read at once, a
    worker sometimes showed 10-15 MiB more, gone two seconds later; read after the pause, twelve
    rounds of load stayed within 0.5 MiB of 87 MiB (measured at 1,000,000 articles)."""
    time.sleep(SETTLE_SECONDS)
    return {pid: rss_kib(pid) / 1024 for pid in app.worker_pids()}


def _shares(app) -> str:
    """The target is RSS, which counts every page a worker maps, those it shares with the master and
    the other workers included; PSS (shared pages split between their holders) and USS (its own pages
    only) say what one more worker costs the machine, given alongside."""
    measured = {pid: shared_and_private_kib(pid) for pid in app.worker_pids()}
    pss = ", ".join(f"{value[0] / 1024:.1f}" for value in measured.values())
    uss = ", ".join(f"{value[1] / 1024:.1f}" for value in measured.values())
    return f"after phase 2, per worker: PSS {pss} MiB, USS (private) {uss} MiB"


ARTICLE_PAGES = 300


def _load_paths(loaded: load.Loaded) -> tuple[list[str], list[str]]:
    """(head, rest): the whole-site documents and every feed of the site and sections; every feed of
    every tag and author and ARTICLE_PAGES article pages, shuffled. Every feed of every scope: the
    target is what a worker costs serving all of them, whatever any per-scope state of it holds."""
    db = sqlite3.connect(f"file:{loaded.database}?mode=ro", uri=True)
    try:
        scopes = [s for (s,) in db.execute("SELECT scope FROM scope_state")]
        slugs = [s for (s,) in db.execute("SELECT slug FROM articles WHERE rowid IN "
                                          "(SELECT abs(random()) % (SELECT max(rowid) FROM articles) FROM "
                                          f"articles LIMIT {ARTICLE_PAGES})")]
    finally:
        db.close()
    head, rest = list(WHOLE_SITE), []
    for scope in sorted(scopes):
        base = "/feeds" if scope == "site" else "/feeds/" + scope.replace(":", "/")
        feeds = [f"{base}/rss.xml", f"{base}/atom.xml", f"{base}/feed.json"]
        (head if scope.partition(":")[0] in HEAD_KINDS else rest).extend(feeds)
    rest += [f"/articles/{slug}" for slug in slugs]
    random.Random(7).shuffle(rest)
    return head, rest


def median(values) -> float:
    return statistics.median(values)
