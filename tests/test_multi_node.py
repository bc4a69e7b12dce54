"""Several app machines: two gunicorn masters behind nginx, one PostgreSQL through PgBouncer, one Redis.

The setup of deploy/SCALING.md on one host (bench/cluster.py starts it): what one instance stores the
other serves within a second; stopping one instance under a steady poll load costs readers nothing,
killing one costs them no 5xx (nginx passes their requests on); rate limits and the desk's counts add
up across instances; and the connections every process holds stay within the documented formula,
through PgBouncer in transaction mode, which needs prepared statements off.
"""
from __future__ import annotations

import os
import threading
import time
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row
from sqlalchemy import create_engine, func, select

from bench import synth
from bench.cluster import (
    Cluster,
    as_client,
    kill9,
    pgbouncer_available,
    poll_while,
    put,
    request,
    seen_by_the_other,
    server_errors,
)
from feedsvc.store import desk_feed_days

from .support.apps import POSTGRESQL_URL

REDIS_URL = os.environ.get("FEEDSVC_TEST_REDIS_URL")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not POSTGRESQL_URL, reason="needs FEEDSVC_TEST_POSTGRESQL_URL"),
    pytest.mark.skipif(not REDIS_URL, reason="needs FEEDSVC_TEST_REDIS_URL"),
    pytest.mark.skipif(not pgbouncer_available(), reason="needs Debian's pgbouncer (make system-deps)"),
    pytest.mark.skipif(not Path("/usr/sbin/nginx").exists(), reason="needs Debian's nginx (make system-deps)"),
]

# Renders per client address: enough for the poll load's few documents (nginx passes them all on as
# one address), few enough to exhaust quickly from another.
RENDERS_PER_MINUTE = 40
AUTH_FAILURES_PER_MINUTE = 6


def new_record(number: int) -> dict:
    now = datetime.now(synth.IST).replace(microsecond=0)
    return synth.make_record(number, 21, now, now)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    settings = {"FEEDSVC_RATELIMIT_PUBLIC": f"{RENDERS_PER_MINUTE}/minute;1000/hour",
                "FEEDSVC_RATELIMIT_CEILING_FACTOR": "1000",   # the poll load is one address: only renders count here
                "FEEDSVC_RATELIMIT_AUTH_FAILURES": f"{AUTH_FAILURES_PER_MINUTE}/minute;100/hour",
                "FEEDSVC_DESK_FLUSH_SECONDS": "1"}
    with Cluster(tmp_path_factory.mktemp("cluster"), POSTGRESQL_URL, REDIS_URL, env=settings) as cluster:
        for number in range(1, 6):
            assert put(cluster.nginx.port, new_record(number)) in (200, 201)
        yield cluster


def test_a_write_through_one_instance_is_served_by_the_other_within_a_second(cluster):
    lags = [seen_by_the_other(cluster, new_record(number)) for number in range(100, 105)]
    assert max(lags) < 1.0, lags


def test_rate_limits_add_up_across_instances(cluster):
    first, second = cluster.apps
    # Renders: each ?limit= is a document of its own, rendered once; the budget is one per client address.
    statuses = [request((first, second)[k % 2].port, "GET", f"/feeds/rss.xml?limit={k + 1}",
                        headers=as_client("10.30.0.1"))[0] for k in range(RENDERS_PER_MINUTE + 4)]
    assert statuses == [200] * RENDERS_PER_MINUTE + [429] * 4
    # Wrong API tokens: after the allowance, refused from that address on both instances, the right token too.
    statuses = [put((first, second)[k % 2].port, new_record(200 + k), token="x" * 40, address="10.30.0.2")
                for k in range(AUTH_FAILURES_PER_MINUTE + 2)]
    assert statuses == [403] * AUTH_FAILURES_PER_MINUTE + [429] * 2
    assert put(first.port, new_record(300), address="10.30.0.2") == 429
    assert put(second.port, new_record(301), address="10.30.0.2") == 429


def test_desk_counters_add_up_across_instances(cluster):
    first, second = cluster.apps
    path = "/feeds/atom.xml"
    for port, times in ((first.port, 7), (second.port, 5)):
        for _ in range(times):
            assert request(port, "GET", path, headers=as_client("10.40.0.1"))[0] == 200
    engine = create_engine(cluster.direct_url)
    try:
        deadline = time.monotonic() + 10
        while True:
            with engine.connect() as conn:
                polls = conn.execute(select(func.sum(desk_feed_days.c.polls))
                                     .where(desk_feed_days.c.feed == path)).scalar() or 0
            if polls == 12 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        engine.dispose()
    assert polls == 12


def test_connections_stay_within_the_documented_bounds(cluster):
    # Renders on every worker at once (each thread a client of its own, within its budget), then count:
    # clients of PgBouncer (the app processes' pools) and PgBouncer's own connections to PostgreSQL.
    def render_many(number: int) -> None:
        for k in range(1, 30):
            port = cluster.apps[(number + k) % len(cluster.apps)].port
            assert request(port, "GET", f"/feeds/rss.xml?limit={k}", headers=as_client(f"10.50.0.{number}"))[0] == 200

    threads = [threading.Thread(target=render_many, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with psycopg.connect(cluster.pgbouncer.admin_conninfo(), autocommit=True, row_factory=dict_row) as console:
        clients = [row for row in console.execute("SHOW CLIENTS").fetchall() if row["database"] == "feedsvc"]
        servers = [row for row in console.execute("SHOW SERVERS").fetchall() if row["database"] == "feedsvc"]
    assert 0 < len(clients) <= cluster.most_app_connections()
    assert 0 < len(servers) <= cluster.server_pool


def test_prepared_statements_break_through_a_transaction_pooler_and_are_off(cluster):
    # Two clients on PgBouncer's one-connection pool: each prepares its first query under the same name on
    # the same server connection, which PostgreSQL refuses; the app's engine never prepares.
    single = cluster.pgbouncer.database_url("single").replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(single, prepare_threshold=0, autocommit=True) as one, \
            psycopg.connect(single, prepare_threshold=0, autocommit=True) as other:
        one.execute("SELECT 1")
        with pytest.raises(psycopg.errors.DuplicatePreparedStatement):
            other.execute("SELECT 1")
    with psycopg.connect(single, prepare_threshold=None, autocommit=True) as one, \
            psycopg.connect(single, prepare_threshold=None, autocommit=True) as other:
        for _ in range(10):
            assert one.execute("SELECT 1").fetchone() == (1,) == other.execute("SELECT 1").fetchone()


def test_stopping_one_instance_under_polling_loses_no_request(cluster):
    # A deploy or a restart: gunicorn stops taking connections and finishes what it has (SIGTERM).
    outcomes, during = poll_while(cluster, lambda instance: instance.stop())
    assert during > 50, f"the load stalled: {during} requests in the 3 s after the stop"
    assert set(outcomes) == {200}, dict(outcomes)


def test_killing_one_instance_under_polling_gives_no_5xx(cluster):
    # A crash: every process of the instance dies at once. Requests it had not answered yet are passed to
    # the other by nginx; an answer it was in the middle of sending is cut (nginx had sent its head, so
    # no one can retry it): at most one per reader. None is a 5xx.
    outcomes, during = poll_while(cluster, kill9)
    assert during > 50, f"the load stalled: {during} requests in the 3 s after the kill"
    assert server_errors(outcomes) == 0, dict(outcomes)
    assert set(outcomes) <= {200, "IncompleteRead", "RemoteDisconnected", "ConnectionResetError"}, dict(outcomes)
    assert sum(n for status, n in outcomes.items() if status != 200) <= 6, dict(outcomes)
