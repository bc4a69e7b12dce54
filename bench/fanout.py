"""Rows `fanout` and `fanout-mirror`: one API write of an article with 10 tags and 2 authors, and every
document it changes served fresh.

The write changes the feeds of 14 scopes (the site, its section, 10 tags, 2 authors): 3 public formats
each, and each aggregator profile's formats (feedsvc/profiles/) — 196 documents the app serves, of
which the 42 public ones are also files of the static mirror, kept by `flask export --watch` and
served by nginx. Before each write every document is fetched once (its ETag kept); after the API's
answer, FETCHERS readers ask for each document again with If-None-Match until it carries the new
article, as pollers do. The row is the time until the last of them did, p99 over BENCH_REPEATS writes.
"""
from __future__ import annotations

import os
import queue
import random
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

from bench import synth
from feedsvc.profiles import built_in
from feedsvc.render.feeds.formats import FORMATS

from .fresh import TOKEN, _stop, put, watching
from .load import ROOT
from .serve import app_env, fetch
from .servers import Gunicorn, Nginx
from .stats import Row, Sample, Table

FETCHERS = 8
TARGET_SECONDS = 1.0
TIMEOUT_SECONDS = 20.0   # a document later than this counts as this late (the row then says so)
ROWS = {
    "fanout": "API write of an article with 10 tags and 2 authors until the app serves every changed feed "
              "(14 scopes × 3 formats and every profile's formats) fresh, p99 (target ≤ 1 s)",
    "fanout-mirror": "the same write until nginx serves the static mirror's copies of its 42 public feeds fresh, "
                     "p99 (target ≤ 1 s)",
}


def scope_paths(record: dict) -> list[str]:
    """The feed folders of every scope the record is in: '' for the site, 'section/<key>/', ..."""
    return ["", f"section/{record['section']['key']}/", *(f"tag/{t['key']}/" for t in record["tags"]),
            *(f"author/{a['key']}/" for a in record["authors"])]


def affected(record: dict) -> tuple[list[str], list[str]]:
    """(public feed URLs, profile feed URLs) the record's write changes."""
    public = [f"/feeds/{scope}{fmt.filename}" for scope in scope_paths(record) for fmt in FORMATS.values()]
    profiles = [f"/feeds/profile/{profile.name}/{scope}{FORMATS[name].filename}"
                for profile in built_in().values() for name in profile.formats for scope in scope_paths(record)]
    return public, profiles


def wide_record(number: int, rng: random.Random) -> dict:
    now = datetime.now(synth.IST).replace(microsecond=0)
    record = synth.make_record(number, 8, now, now)
    record["tags"] = rng.sample(synth._ALL_TAGS, 10)
    record["authors"] = rng.sample(synth._ALL_AUTHORS, 2)
    return record


def fresh_after(base: str, urls: list[str], marker: bytes, since: float, etags: dict[str, str]) -> float:
    """Seconds from `since` until every URL's answer carries `marker` (FETCHERS readers at once), at
    most TIMEOUT_SECONDS."""
    pending: queue.Queue = queue.Queue()
    for url in urls:
        pending.put(url)
    seen: dict[str, float] = {}
    failure: list[str] = []

    def reader() -> None:
        while len(seen) + len(failure) < len(urls):
            try:
                url = pending.get(timeout=0.05)
            except queue.Empty:
                continue
            headers = {"If-None-Match": etags[url]} if url in etags else {}
            status, answer_headers, body = fetch(base + url, headers)
            if status == 200 and marker in body:
                seen[url] = time.perf_counter() - since
                etags[url] = answer_headers.get("ETag", "")
            elif time.perf_counter() - since > TIMEOUT_SECONDS:
                failure.append(url)
            else:
                pending.put(url)

    threads = [threading.Thread(target=reader) for _ in range(FETCHERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failure:
        print(f"fanout: {len(failure)} documents still without the write after {TIMEOUT_SECONDS} s, "
              f"e.g. {failure[0]}", file=sys.stderr)
        return TIMEOUT_SECONDS
    return max(seen.values())


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes have used (from /proc; a process gone counts 0): what
    the fan-out costs the app whatever else the machine is running, unlike the wall-clock row."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])   # utime, stime: fields 14 and 15 of proc(5)
    return total / os.sysconf("SC_CLK_TCK")


def remember_etags(base: str, urls: list[str], etags: dict[str, str]) -> None:
    for url in urls:
        status, headers, _ = fetch(base + url)
        if status == 200 and headers.get("ETag"):
            etags[url] = headers["ETag"]


def run(table: Table, database_url: str, mirror: Path, workdir: Path, writes: int) -> dict:
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {**app_env(database_url), "FEEDSVC_API_TOKENS": TOKEN}
    rng = random.Random(21)
    app_lags, mirror_lags, app_cpu, mirror_cpu, documents = [], [], [], [], 0
    with ExitStack() as stack:
        app = stack.enter_context(Gunicorn("wsgi:app", env=env, log_path=logs / "fanout-app.log"))
        watcher = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "export", str(mirror), "--watch", "--interval", "0.1"],
            cwd=ROOT, env={**app.env, "FEEDSVC_ACCESS_LOG": "0"},
            stdout=open(logs / "fanout-watch.log", "wb"), stderr=subprocess.STDOUT)
        stack.callback(_stop, watcher)
        nginx = stack.enter_context(Nginx(mirror, workdir / "nginx-fanout", app_port=app.port))
        watching(watcher, logs / "fanout-watch.log")
        time.sleep(2)   # the watcher's first cycles are over
        for i in range(writes):
            record = wide_record(9_100_000 + int(time.time()) % 100_000 * 10 + i, rng)
            public, profiles = affected(record)
            documents = len(public) + len(profiles)
            app_etags: dict[str, str] = {}
            mirror_etags: dict[str, str] = {}
            remember_etags(app.url(""), public + profiles, app_etags)
            remember_etags(nginx.url(""), public, mirror_etags)
            workers = app.worker_pids()
            cpu_before, watcher_before = cpu_seconds(workers), cpu_seconds([watcher.pid])
            put(app.url(f"/api/articles/{record['id']}"), record)
            written = time.perf_counter()
            marker = f"articles/{record['id']}".encode()
            with ThreadPoolExecutor(2) as both:   # the app and the mirror read at once
                app_lag = both.submit(fresh_after, app.url(""), public + profiles, marker, written, app_etags)
                mirror_lag = both.submit(fresh_after, nginx.url(""), public, marker, written, mirror_etags)
                lags = {"app": app_lag.result(), "mirror": mirror_lag.result()}
            app_cpu.append(cpu_seconds(workers) - cpu_before)
            mirror_cpu.append(cpu_seconds([watcher.pid]) - watcher_before)
            app_lags.append(lags["app"])
            mirror_lags.append(lags["mirror"])
            time.sleep(rng.uniform(0.3, 0.8))
    section = "one write's fan-out (10 tags, 2 authors; every profile), served fresh"
    cpu = sorted(app_cpu)[len(app_cpu) // 2]
    watcher_cpu = sorted(mirror_cpu)[len(mirror_cpu) // 2]
    notes = {"fanout": f"the app's workers spent a median {cpu:.2f} CPU-s per write until every document was fresh",
             "fanout-mirror": f"the watcher (`flask export --watch`) spent a median {watcher_cpu:.2f} CPU-s per write "
                              "until the app and the mirror both served it (the watcher then goes on with the profiles' feeds)"}
    for name, what, lags in (("fanout", f"the app: {documents} documents", app_lags),
                             ("fanout-mirror", "nginx, the mirror's 42 public feeds", mirror_lags)):
        p99 = sorted(lags)[min(len(lags) - 1, int(round(0.99 * (len(lags) - 1))))]
        table.add(Row(name, section, f"{what}: p99 {p99:.2f} s over {len(lags)} writes", Sample(lags, "s"),
                      target="p99 ≤ 1 s", met=p99 <= TARGET_SECONDS, value=p99, statistic="p99",
                      note=notes.get(name, "")))
    return {"fanout_documents": documents, "fanout_app_cpu_seconds": cpu, "fanout_mirror_cpu_seconds": watcher_cpu}
