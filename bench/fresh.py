"""Row 4: how soon an API write shows in the static mirror, as nginx serves it.

feedsvc under gunicorn takes PUT /api/articles/<id>; `flask --app wsgi export DIR --watch` (a
separate process, as deployed) keeps the mirror; nginx serves it with the shipped config. Each write
is a new article published now; the clock runs from the API's answer (the write is committed) until
nginx's /feeds/rss.xml carries the article, then until its section's feed does too.
"""
from __future__ import annotations

import json
import random
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Iterator

from bench import synth

from .load import ROOT
from .serve import app_env, fetch
from .servers import Gunicorn, Nginx
from .stats import Row, Sample, Table

WRITES = 25
TOKEN = "bench-token-0123456789abcdef0123456"
TARGET_SECONDS = 1.0
POLL_SECONDS = 0.005
ROWS = {
    "mirror-freshness-site": "API write until nginx serves it in the mirror's site RSS, p99 (target ≤ 1 s)",
    "mirror-freshness-section": "API write until nginx serves it in the mirror's section RSS, p99 (target ≤ 1 s)",
}


def put(url: str, record: dict) -> None:
    request = urllib.request.Request(url, data=json.dumps(record, ensure_ascii=False).encode("utf-8"),
                                     method="PUT", headers={"Content-Type": "application/json",
                                                            "Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        if response.status not in (200, 201):
            raise RuntimeError(f"PUT {url}: {response.status}")


def visible_after(url: str, marker: bytes, since: float, timeout: float = 30.0) -> float:
    """Seconds from `since` until the document at `url` contains `marker`."""
    deadline = since + timeout
    while time.perf_counter() < deadline:
        status, _, body = fetch(url)
        if status == 200 and marker in body:
            return time.perf_counter() - since
        time.sleep(POLL_SECONDS)
    raise TimeoutError(f"{marker!r} not in {url} after {timeout} s")


@contextmanager
def deployed(database_url: str, mirror: Path, workdir: Path, name: str) -> Iterator[tuple[Gunicorn, Nginx]]:
    """(app, nginx) as deployed: feedsvc under gunicorn taking API writes, `export --watch --interval 0.1`
    keeping the mirror, nginx serving it with the shipped config (and the app behind it)."""
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {**app_env(database_url), "FEEDSVC_API_TOKENS": TOKEN}
    with ExitStack() as stack:
        app = stack.enter_context(Gunicorn("wsgi:app", env=env, log_path=logs / f"{name}-app.log"))
        watcher = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "export", str(mirror), "--watch", "--interval", "0.1"],
            cwd=ROOT, env={**app.env, "FEEDSVC_ACCESS_LOG": "0"},
            stdout=open(logs / f"{name}-export-watch.log", "wb"), stderr=subprocess.STDOUT)
        stack.callback(_stop, watcher)
        nginx = stack.enter_context(Nginx(mirror, workdir / f"nginx-{name}", app_port=app.port))
        watching(watcher, logs / f"{name}-export-watch.log")
        time.sleep(2)   # the watcher's first cycles (nothing to do: the mirror was synced) are over
        yield app, nginx


def watching(watcher: subprocess.Popen, log: Path, timeout: float = 300.0) -> None:
    """Wait until `export --watch` says it watches: its Python start-up (seconds on a loaded machine)
    is not part of what a row measures, as a deployed watcher runs all along."""
    deadline = time.monotonic() + timeout
    while b"watching the store" not in log.read_bytes():
        if watcher.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"export --watch never started watching: see {log}")
        time.sleep(0.05)


def p99(values: list[float]) -> float:
    return sorted(values)[min(len(values) - 1, int(round(0.99 * (len(values) - 1))))]


def run(table: Table, database_url: str, mirror: Path, workdir: Path, writes: int = WRITES) -> dict:
    rng = random.Random(8)
    site_lags, section_lags = [], []
    with deployed(database_url, mirror, workdir, "fresh") as (app, nginx):
        for i in range(writes):
            number = 9_000_000 + int(time.time()) % 100_000 * 10 + i
            now = datetime.now(synth.IST).replace(microsecond=0)
            record = synth.make_record(number, 8, now, now)
            put(app.url(f"/api/articles/{record['id']}"), record)
            written = time.perf_counter()
            marker = f"articles/{record['id']}<".encode()
            site_lags.append(visible_after(nginx.url("/feeds/rss.xml"), marker, written))
            section = record["section"]["key"]
            section_lags.append(visible_after(nginx.url(f"/feeds/section/{section}/rss.xml"), marker, written))
            time.sleep(rng.uniform(0.2, 0.6))   # not in step with the watcher's polling
    for key, name, lags in (("site", "site RSS", site_lags), ("section", "its section's RSS", section_lags)):
        sample, worst = Sample(lags, "s"), p99(lags)
        table.add(Row(f"mirror-freshness-{key}",
                      "static mirror freshness (API write -> nginx serves it; export --watch --interval 0.1)",
                      f"{name}: p99 {worst:.2f} s over {len(lags)} writes", sample, target="p99 ≤ 1 s",
                      met=worst <= TARGET_SECONDS, value=worst, statistic="p99"))
    return {"site_p99": max(site_lags)}


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
