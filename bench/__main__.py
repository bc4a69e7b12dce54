"""`python -m bench` (`make bench`): every row of issue 8's table, measured in one run, as one table.

Loopback only, bounded (fixed wrk durations and write counts), stops by itself; never part of the
test suite. Environment: BENCH_ROWS (default 1,000,000: the big database, built once and kept in
bench/out/), BENCH_IMPORT_ROWS (5,000), BENCH_REPEATS (5), BENCH_POSTGRESQL_URL
(postgresql+psycopg://postgres@127.0.0.1:5432/test). The table is also written to bench/out/last-run.md.
"""
from __future__ import annotations

import os
import platform
import shutil
import sys
import time
from pathlib import Path

from feedsvc import create_app
from feedsvc.web import db

from . import build, fresh, load, scale, serve, stats, wrk
from .stats import Row, Sample, Table

SMALL_ROWS = 600   # enough for a 500-item feed; the serving and mirror rows use this database
WORK = load.OUT / "work"


def noise() -> Sample:
    """The machine's own noise: one fixed piece of pure-Python work, timed again and again."""
    def work():
        total = 0
        for i in range(300_000):
            total += i * i % 7
        return total
    return stats.timed(work, repeats=15)


def prepare_small(env: dict) -> tuple[str, Path]:
    """A working copy of the small database, and the static mirror of it brought up to date."""
    from feedsvc.publish.mirror import Mirror

    small = load.database(SMALL_ROWS)
    WORK.mkdir(parents=True, exist_ok=True)
    database = WORK / "bench.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(str(database) + suffix).unlink(missing_ok=True)
    shutil.copyfile(small.database, database)   # the mirror row writes to it; each run starts afresh
    url = f"sqlite:///{database}"
    app = create_app({"DATABASE_URL": url, "SITE_URL": env["FEEDSVC_SITE_URL"], "ACCESS_LOG": False})
    mirror = Mirror(app, WORK / "mirror")
    try:
        print(f"mirror: {mirror.sync(progress_bar=True)}", file=sys.stderr)
    finally:
        mirror.close()
        db.engine(app).dispose()
    return url, WORK / "mirror"


def step(name: str):
    print(f"== {name}", file=sys.stderr, flush=True)
    return time.perf_counter()


def main() -> int:
    if not wrk.available() or not Path("/usr/sbin/nginx").exists():
        print("bench needs wrk and nginx: run `make bench-deps` (Debian packages wrk, nginx)", file=sys.stderr)
        return 2
    repeats = int(os.environ.get("BENCH_REPEATS", stats.REPEATS))
    rows = load.rows_wanted()
    started = time.perf_counter()
    table, facts, plans = Table(), {}, []
    load_before = os.getloadavg()
    step("machine noise")
    calibration = noise()
    env = serve.app_env("")
    step(f"small database ({SMALL_ROWS} articles) and its static mirror")
    url, mirror = prepare_small(env)
    step("row 1: building feeds")
    app = create_app({"DATABASE_URL": url, "SITE_URL": env["FEEDSVC_SITE_URL"], "ACCESS_LOG": False})
    facts.update(build.run(table, app))
    db.engine(app).dispose()
    step("rows 2-3: serving and 304 (wrk)")
    facts.update(serve.run(table, url, mirror, WORK, max(repeats, 7)))   # bimodal rows: more repeats
    step("row 4: mirror freshness")
    facts.update(fresh.run(table, url, mirror, WORK))
    step("row 5: import")
    scale.import_rate(table)
    step(f"row 5: {rows:,} records in one command (cached in bench/out/)")
    big = scale.million_load(table, rows)
    step("row 6: newest 50 queries")
    scale.queries(table, big, plans)
    step("row 7: memory per worker")
    scale.memory(table, big, WORK)
    table.add(Row("machine noise", "fixed pure-Python work, 15 repeats", calibration,
                  note="spread = (max-min)/median"))
    report = render(table, facts, plans, calibration, load_before, time.perf_counter() - started)
    print(report)
    (load.OUT / "last-run.md").write_text(report + "\n", "utf-8")
    return 0


def render(table: Table, facts: dict, plans: list[str], calibration: Sample, load_before, seconds: float) -> str:
    met = [r for r in table.rows if r.met is True]
    missed = [r for r in table.rows if r.met is False]
    lines = [
        f"feedsvc bench — {time.strftime('%Y-%m-%d %H:%M')} — {platform.node()}, {os.cpu_count()} cores, "
        f"load average {load_before[0]:.1f} before / {os.getloadavg()[0]:.1f} after, {seconds / 60:.1f} min",
        "",
        table.render(),
        "",
        f"Targets met: {len(met)}; missed: {len(missed)}"
        + (" — " + "; ".join(f"{r.what} ({r.ratio:.2f}× vs {r.target})" if r.ratio is not None
                              else f"{r.what} ({r.sample.text() if r.sample else '-'} vs {r.target})"
                              for r in missed) if missed else ""),
        f"Machine noise: the same work took {calibration.range_text()} ms (median {calibration.median:.1f} ms, "
        f"spread {calibration.spread:.0%}); rows whose spread is larger than that were disturbed while measured.",
        "Corpus: article bodies average {:.1f} KiB; gzip -6 shrinks a body alone to {:.2f} of its size, the "
        "50-item RSS to {:.2f}, the 500-item RSS to {:.2f}.".format(
            facts.get("body_kib", 0), facts.get("body_gzip_ratio", 0), facts.get("rss_50_gzip_ratio", 0),
            facts.get("rss_500_gzip_ratio", 0)),
        "",
        "Query plans:",
        *plans,
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
