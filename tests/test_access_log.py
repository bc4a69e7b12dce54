"""The access log's batched writing (feedsvc/ops/access_log.py): every line arrives, whole, in order."""
from __future__ import annotations

import http.client
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.servers import Gunicorn
from feedsvc.ops import access_log
from feedsvc.ops.access_log import BATCH_CHARS, BatchingStreamHandler

ROOT = Path(__file__).resolve().parent.parent


class CountingStream:
    """A text stream that remembers each write separately (one write call = one write(2) on stderr)."""

    def __init__(self):
        self.writes: list[str] = []

    def write(self, text: str) -> None:
        self.writes.append(text)

    def flush(self) -> None:
        pass

    @property
    def text(self) -> str:
        return "".join(self.writes)


@pytest.fixture
def logger():
    """A logger of its own per test, so handlers never leak into the real access logger."""
    made = logging.getLogger(f"feedsvc.test-access.{time.monotonic_ns()}")
    made.setLevel(logging.INFO)
    made.propagate = False
    yield made
    for handler in list(made.handlers):
        made.removeHandler(handler)
        handler.close()


def attach(logger, flush_seconds: float) -> tuple[BatchingStreamHandler, CountingStream]:
    stream = CountingStream()
    handler = BatchingStreamHandler(stream, flush_seconds)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    return handler, stream


def test_lines_wait_and_are_written_together_in_order(logger):
    handler, stream = attach(logger, flush_seconds=3600)
    for number in range(5):
        logger.info(f"पंक्ति {number}")
    assert stream.writes == []
    handler.flush()
    assert stream.writes == ["".join(f"पंक्ति {number}\n" for number in range(5))]


def test_a_full_batch_is_written_without_waiting(logger):
    handler, stream = attach(logger, flush_seconds=3600)
    line = "x" * 1000
    for _ in range(BATCH_CHARS // 1000 + 1):
        logger.info(line)
    assert len(stream.writes) == 1
    assert stream.text.splitlines() == [line] * (BATCH_CHARS // 1000 + 1)


def test_a_waiting_line_is_written_within_the_flush_interval(logger):
    _, stream = attach(logger, flush_seconds=0.05)
    logger.info("breaking")
    deadline = time.monotonic() + 10
    while stream.text != "breaking\n":
        assert time.monotonic() < deadline, "a lone line was never written"
        time.sleep(0.01)


def test_zero_interval_writes_each_line_at_once(logger):
    _, stream = attach(logger, flush_seconds=0)
    logger.info("one")
    assert stream.text == "one\n"
    logger.info("two")
    assert stream.text == "one\ntwo\n"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_write_its_parents_lines_again(logger, tmp_path):
    out = tmp_path / "log"
    with open(out, "a", encoding="utf-8") as stream:
        handler = BatchingStreamHandler(stream, 3600)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.info("parent")
        pid = os.fork()
        if pid == 0:   # the child: log its own line, write what it holds, leave without cleanup
            try:
                logger.info("child")
                handler.flush()
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        handler.flush()
    assert sorted(out.read_text("utf-8").splitlines()) == ["child", "parent"]


@pytest.mark.slow
def test_lines_still_waiting_are_written_when_the_process_exits(tmp_path):
    """A worker that stops (gunicorn's graceful exit, the end of a command) loses no line."""
    script = ("from feedsvc.ops import access_log\n"
              "access_log.install(3600 * 1000)\n"
              "access_log.write('GET', '/feeds/rss.xml', 'feed', 200, 10, 0.001, 'gzip', False, '127.0.0.1')\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    line = json.loads(done.stderr)
    assert line["path"] == "/feeds/rss.xml" and line["status"] == 200 and line["pid"] > 0


def test_the_line_keeps_devanagari_readable_and_redacts_partner_keys(logger):
    key = "fsk_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0U1v"
    handler, stream = attach(logger, flush_seconds=3600)
    real = access_log.logger
    access_log.logger = logger
    try:
        access_log.write("GET", "/section/खेल/", "page", 200, 1, 0.001, "identity", False, "127.0.0.1")
        access_log.write("GET", f"/partner/{key}/feeds/rss.xml", "partner_feed", 200, 1, 0.001, "gzip", True, None)
    finally:
        access_log.logger = real
    handler.flush()
    first, second = (json.loads(line) for line in stream.text.splitlines())
    assert "खेल" in stream.text and first["path"] == "/section/खेल/"
    assert key not in stream.text and second["path"] == "/partner/[redacted]/feeds/rss.xml"


def json_lines(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text("utf-8").splitlines() if line.startswith("{")]


@pytest.mark.slow
def test_gunicorn_workers_write_their_waiting_lines_when_they_stop(make_app, tmp_path):
    url = make_app().config["DATABASE_URL"]  # migrated
    log = tmp_path / "gunicorn.log"
    env = {"FEEDSVC_DATABASE_URL": url, "FEEDSVC_ACCESS_LOG_FLUSH_MS": str(3600 * 1000),
           "FEEDSVC_WEBSUB_SENDER": "worker", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    with Gunicorn("wsgi:app", env=env, workers=2, log_path=log) as server:
        for _ in range(6):
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            connection.request("GET", "/healthz")
            assert connection.getresponse().status == 200
            connection.close()
        assert json_lines(log) == []   # an hour's interval: all six still wait in the workers
    lines = json_lines(log)            # a graceful stop (SIGTERM) wrote them
    assert [line["path"] for line in lines] == ["/healthz"] * 6
