"""Row `multi-node`: two app instances behind nginx, one PostgreSQL through PgBouncer, one Redis (bench/cluster.py).

A write through one instance until the other serves it (p99 over WRITES writes, the target ≤ 1 s),
and, as a condition of the target, the 5xx readers polling through nginx got while one instance was
killed outright (0). The database holds the small corpus plus the writes: how soon the other instance
sees a write depends on its change-counter recheck (FEEDSVC_FEED_STATE_RECHECK_MS, 500 ms under
deploy/gunicorn.conf.py) and one render, not on the number of articles.
"""
from __future__ import annotations

import os
from datetime import datetime

from bench import synth

from . import load
from .cluster import Cluster, kill9, pgbouncer_available, poll_while, seen_by_the_other, server_errors
from .scale import POSTGRESQL_URL
from .stats import Row, Sample, Table

WRITES = 30
TARGET_SECONDS = 1.0
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
ROWS = {"multi-node": "two gunicorn masters behind nginx, PostgreSQL via PgBouncer, Redis: a write through one until "
                      "the other serves it, p99 (target ≤ 1 s, and 0 5xx while one instance is killed under polling)"}


def run(table: Table, workdir, corpus_rows: int) -> None:
    if not pgbouncer_available():
        raise RuntimeError("the multi-node row needs Debian's pgbouncer: run `make system-deps`")
    with Cluster(workdir / "cluster", POSTGRESQL_URL, REDIS_URL) as cluster:
        load.flask("import-articles", str(load.corpus(corpus_rows)),
                   env={"FEEDSVC_DATABASE_URL": cluster.direct_url, "FEEDSVC_ACCESS_LOG": "0"})
        now = datetime.now(synth.IST).replace(microsecond=0)
        lags = [seen_by_the_other(cluster, synth.make_record(9_500_000 + n, 21, now, now)) for n in range(WRITES)]
        outcomes, during = poll_while(cluster, kill9)
    p99 = sorted(lags)[min(len(lags) - 1, int(round(0.99 * (len(lags) - 1))))]
    errors = server_errors(outcomes)
    cut = sum(n for outcome, n in outcomes.items() if isinstance(outcome, str))
    table.add(Row("multi-node", "several app machines (2 gunicorn masters × 2 workers, nginx, PgBouncer, Redis)",
                  f"write through one instance -> the other serves it: p99 {p99:.2f} s over {len(lags)} writes; "
                  f"one instance killed under polling: {errors} 5xx, {cut} answers cut mid-body, "
                  f"{during} requests in the 3 s after",
                  Sample(lags, "s"), target="p99 ≤ 1 s, 0 5xx", met=p99 <= TARGET_SECONDS and errors == 0,
                  value=p99, statistic="p99"))
