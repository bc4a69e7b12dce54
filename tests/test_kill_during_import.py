"""A process killed (SIGKILL) in the middle of an import leaves every record fully old or fully new."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select

from feedsvc import store
from feedsvc.store import articles
from tests.support.records import assert_each_record_whole

pytestmark = pytest.mark.slow
COUNT = 4000


def corpus(path, make_record, version):
    with path.open("w", encoding="utf-8") as out:
        for i in range(COUNT):
            record = make_record(
                id=f"kill-{i:05d}", slug=f"kill-{i:05d}", title=f"संस्करण {version}: खबर {i}",
                updated=f"2025-08-0{version}T10:00:00+05:30", tags=[{"key": f"v{version}-t{i % 7}", "name": "टैग"}],
                authors=[{"key": f"v{version}-writer", "name": "लेखक"}])
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


def run_import(database_url, path, wait=True):
    env = {**os.environ, "FEEDSVC_DATABASE_URL": database_url, "FEEDSVC_SITE_URL": "http://news.example"}
    process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "import-articles", str(path)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if wait:
        process.communicate(timeout=300)
    return process


def stored_count(engine, version=None):
    with engine.connect() as conn:
        q = select(func.count()).select_from(articles)
        if version:
            q = q.where(articles.c.article.like(f'%"title":"संस्करण {version}:%'))
        return conn.execute(q).scalar_one()


def test_sigkill_mid_import_then_rerun_finishes(database_url, engine, make_record, tmp_path):
    old, new = tmp_path / "v1.jsonl", tmp_path / "v2.jsonl"
    corpus(old, make_record, 1)
    corpus(new, make_record, 2)
    assert run_import(database_url, old).returncode == 0
    assert stored_count(engine, 1) == COUNT

    process = run_import(database_url, new, wait=False)
    deadline = time.monotonic() + 120
    while stored_count(engine, 2) == 0 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    half_done = stored_count(engine, 2)
    assert 0 < half_done < COUNT, "the kill should land between the first and the last commit"
    assert stored_count(engine) == COUNT
    assert_each_record_whole(engine)

    rerun = run_import(database_url, new)
    assert rerun.returncode == 0, rerun.stderr
    assert stored_count(engine, 2) == COUNT
    assert_each_record_whole(engine)
    with engine.connect() as conn:
        assert len(store.newest(conn, "tag:v2-t3", 10_000)) == len(range(3, COUNT, 7))
        assert store.newest(conn, "tag:v1-t3", 10) == []
