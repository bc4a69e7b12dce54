"""Rows `fanout` and `fanout-mirror`: one API write of an article with 10 tags and 2 authors to the big
store (BENCH_ROWS articles, the corpus's 50,000 tags), and every document it changes served fresh.

The write changes the feeds of 14 scopes (the site, its section, 10 tags, 2 authors): 3 public formats
each, and each aggregator profile's formats (feedsvc/profiles/) — 196 documents the app serves, of
which the 42 public ones are also files of the static mirror, kept by `flask export --watch` and
served by nginx. Before each write every document is fetched once (its ETag kept); after the API's
answer, FETCHERS readers ask for each document again with If-None-Match until it carries the new
article, as pollers do. The row is the time until the last of them did, p99 over BENCH_REPEATS writes.

The store: the app and the watcher run on a copy of the big database the step makes (and deletes
after), so the writes (and the desk counters the reads bump) leave the kept one as it was built for the
rows after and the next run. A copy is a plain file copy: its time is in the rows' notes.

The mirror: a full export of the big store is half an hour or more (row `mirror-full`), and with
50,000 tags its feeds alone are 700,000 documents. So the watcher starts on an empty folder with
`--from-now` (feedsvc/publish/mirror.py: no full pass, only what changes from then on; nginx passes
whatever has no file to the app), and before the measured writes one warm-up write per measured write,
to the same section, tags and authors, has it write those scopes' feeds: every document the row reads
on nginx is then a file of the mirror (checked before each write), one write old. What that mirror
lacks beside a full one: no article page of an earlier write, so no stale pages to sweep in the
background (PAGE_SWEEP per cycle in a full mirror), and its first sitemap turn writes every monthly
sitemap.
"""
from __future__ import annotations

import os
import queue
import random
import shutil
import sqlite3
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

from . import load
from .fresh import TOKEN, _stop, put, watching
from .load import ROOT
from .serve import app_env, fetch
from .servers import Gunicorn, Nginx
from .stats import Row, Sample, Table

FETCHERS = 8
TARGET_SECONDS = 1.0
TIMEOUT_SECONDS = 20.0   # a document later than this counts as this late (the row then says so)
ROWS = {
    "fanout": "API write of an article with 10 tags and 2 authors to the BENCH_ROWS-article store (50,000 tags) "
              "until the app serves every changed feed (14 scopes × 3 formats and every profile's formats) "
              "fresh, p99 (target ≤ 1 s)",
    "fanout-mirror": "the same write until nginx serves the static mirror's copies of its 42 public feeds fresh "
                     "(`export --watch --from-now`: the mirror holds what changed since it started), p99 "
                     "(target ≤ 1 s)",
}
SECTION_TAGS = 5     # of the written article's 10: its section's, and other sections' (synth._ALL_TAGS)
OWN_SECTION_TAGS = 3
SETTLED_CPU = 0.05   # a watcher using this share of a core more than idle over SETTLED_SECONDS has caught up
SETTLED_SECONDS = 1.0
# After the warm-up's lists are written (the last of its documents in the watcher's feeds cycle), for
# its pages and the news sitemap, which the other thread writes.
SETTLE_SECONDS = 30.0


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
    """A new article published now with 10 tags as the corpus draws them (synth.make_record): its
    section's, other sections', and narrow ones from the long tail, popular ones likelier; 2 authors."""
    now = datetime.now(synth.IST).replace(microsecond=0)
    record = synth.make_record(number, 8, now, now)
    own = next(s.tags for s in synth._SECTION_OBJS if s.key == record["section"]["key"])
    tags = rng.sample(own, OWN_SECTION_TAGS)
    tags += rng.sample([t for t in synth._ALL_TAGS if t not in tags], SECTION_TAGS - OWN_SECTION_TAGS)
    while len(tags) < 10:
        narrow = synth.LONG_TAIL_TAGS[int(len(synth.LONG_TAIL_TAGS) * rng.random() ** 2)]
        if narrow not in tags:
            tags.append(narrow)
    record["tags"] = [dict(t) for t in tags]
    record["authors"] = [dict(a) for a in rng.sample(synth._ALL_AUTHORS, 2)]
    return record


def warm_up_record(record: dict, number: int) -> dict:
    """Another new article in every scope of `record`: written first, it has the watcher make those
    scopes' files."""
    now = datetime.now(synth.IST).replace(microsecond=0)
    return {**synth.make_record(number, 9, now, now),
            **{key: record[key] for key in ("section", "tags", "authors")}}


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


def store_copy(loaded: load.Loaded, workdir: Path) -> tuple[Path, float]:
    """(a copy of the big database for the step's writes, the seconds the copy took)."""
    copy = workdir / "fanout.sqlite"
    remove_database(copy)
    workdir.mkdir(parents=True, exist_ok=True)
    sources = [Path(str(loaded.database) + suffix) for suffix in ("", "-wal")]
    needed = sum(source.stat().st_size for source in sources if source.exists())
    free = shutil.disk_usage(workdir).free
    if free < needed * 1.05:
        raise RuntimeError(f"the fan-out rows write to a copy of {loaded.database}: {needed / 1e9:.1f} GB, "
                           f"but {workdir} has {free / 1e9:.1f} GB free")
    started = time.perf_counter()
    for source in sources:
        if source.exists():
            shutil.copyfile(source, str(copy) + source.name[len(loaded.database.name):])
    return copy, time.perf_counter() - started


def remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def tag_count(database: Path) -> int:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        count = conn.execute("SELECT count(*) FROM scope_state WHERE scope LIKE 'tag:%'").fetchone()[0]
    conn.close()
    return count


def marker(record: dict) -> bytes:
    """What every document carrying the record has: its page's URL."""
    return f"articles/{record['id']}".encode()


def mirrored(mirror: Path, urls: list[str], carrying: bytes | None = None, timeout: float = 0.0) -> list[str]:
    """The URLs among `urls` with no file in the mirror (or one without `carrying`), after waiting up
    to `timeout` seconds for them."""
    deadline = time.monotonic() + timeout
    while True:
        missing = [url for url in urls if not _holds(mirror / url.lstrip("/"), carrying)]
        if not missing or time.monotonic() > deadline:
            return missing
        time.sleep(0.1)


def _holds(path: Path, carrying: bytes | None) -> bool:
    try:
        return carrying is None or carrying in path.read_bytes()
    except FileNotFoundError:
        return False


def cpu_rate(pid: int, seconds: float) -> float:
    """The share of a core the process uses over the next `seconds`."""
    before = cpu_seconds([pid])
    time.sleep(seconds)
    return (cpu_seconds([pid]) - before) / seconds


def settle(pid: int, idle: float, timeout: float = SETTLE_SECONDS) -> float:
    """Wait until the process uses no more than `idle` (its share of a core with nothing to do) plus
    SETTLED_CPU over SETTLED_SECONDS (its work is done), or `timeout` seconds: a polling watcher's
    share moves with the machine's load, so this is a grace period, not a proof. The seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout and cpu_rate(pid, SETTLED_SECONDS) > idle + SETTLED_CPU:
        pass
    return time.monotonic() - started


def run(table: Table, loaded: load.Loaded, workdir: Path, writes: int) -> dict:
    copy, copy_seconds = store_copy(loaded, workdir)
    try:
        return measure(table, loaded, copy, copy_seconds, workdir, writes)
    finally:
        remove_database(copy)


def measure(table: Table, loaded: load.Loaded, database: Path, copy_seconds: float, workdir: Path,
            writes: int) -> dict:
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    mirror = workdir / "mirror-fanout"
    shutil.rmtree(mirror, ignore_errors=True)
    tags = tag_count(database)
    env = {**app_env(f"sqlite:///{database}"), "FEEDSVC_API_TOKENS": TOKEN}
    rng = random.Random(21)
    records = [wide_record(9_100_000 + i, rng) for i in range(writes)]
    warm_ups = [warm_up_record(record, 9_200_000 + i) for i, record in enumerate(records)]
    app_lags, mirror_lags, app_cpu, mirror_cpu, documents = [], [], [], [], 0
    with ExitStack() as stack:
        app = stack.enter_context(Gunicorn("wsgi:app", env=env, log_path=logs / "fanout-app.log"))
        watcher = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "export", str(mirror), "--watch", "--from-now",
             "--interval", "0.1"],
            cwd=ROOT, env={**app.env, "FEEDSVC_ACCESS_LOG": "0"},
            stdout=open(logs / "fanout-watch.log", "wb"), stderr=subprocess.STDOUT)
        stack.callback(_stop, watcher)
        nginx = stack.enter_context(Nginx(mirror, workdir / "nginx-fanout", app_port=app.port))
        watching(watcher, logs / "fanout-watch.log")
        time.sleep(2)   # the watcher's first cycles are over
        # Its polling with nothing to do: every look reads every scope's counter (50,000 tags at 1M).
        idle = cpu_rate(watcher.pid, 2 * SETTLED_SECONDS)
        warm_started = time.perf_counter()
        for warm in warm_ups:
            last_write = time.time()
            put(app.url(f"/api/articles/{warm['id']}"), warm)
        for warm in warm_ups:
            missing = mirrored(mirror, affected(warm)[0], marker(warm), timeout=600)
            if missing:
                raise RuntimeError(f"the watcher never wrote {missing[0]} after a warm-up write")
        warm_seconds = time.perf_counter() - warm_started
        # The OPML lists go last in the watcher's cycle; a list dated by the last warm-up write (its
        # file's mtime is the document's Last-Modified) ends the cycle that wrote it.
        lists = [mirror / "feeds.opml", *(mirror / f"feeds/profile/{name}/feeds.opml" for name in built_in())]
        deadline = time.monotonic() + 600
        while not all(path.exists() and path.stat().st_mtime >= int(last_write) for path in lists):
            if time.monotonic() > deadline:
                raise RuntimeError("the watcher never wrote the OPML lists after the warm-up writes")
            time.sleep(0.2)
        settle(watcher.pid, idle)
        caught_up = time.perf_counter() - warm_started
        for record in records:
            public, profiles = affected(record)
            documents = len(public) + len(profiles)
            missing = mirrored(mirror, public)
            if missing:   # nginx would pass it to the app: the row would time the app, not the mirror
                raise RuntimeError(f"the mirror has no file for {missing[0]} before the write")
            app_etags: dict[str, str] = {}
            mirror_etags: dict[str, str] = {}
            remember_etags(app.url(""), public + profiles, app_etags)
            remember_etags(nginx.url(""), public, mirror_etags)
            workers = app.worker_pids()
            cpu_before, watcher_before = cpu_seconds(workers), cpu_seconds([watcher.pid])
            put(app.url(f"/api/articles/{record['id']}"), record)
            written = time.perf_counter()
            with ThreadPoolExecutor(2) as both:   # the app and the mirror read at once
                app_lag = both.submit(fresh_after, app.url(""), public + profiles, marker(record), written, app_etags)
                mirror_lag = both.submit(fresh_after, nginx.url(""), public, marker(record), written, mirror_etags)
                lags = {"app": app_lag.result(), "mirror": mirror_lag.result()}
            app_cpu.append(cpu_seconds(workers) - cpu_before)
            mirror_cpu.append(cpu_seconds([watcher.pid]) - watcher_before)
            app_lags.append(lags["app"])
            mirror_lags.append(lags["mirror"])
            time.sleep(rng.uniform(0.3, 0.8))
    section = "one write's fan-out (10 tags, 2 authors; every profile), served fresh"
    cpu = sorted(app_cpu)[len(app_cpu) // 2]
    watcher_cpu = sorted(mirror_cpu)[len(mirror_cpu) // 2]
    store_note = (f"{loaded.records:,} articles, {tags:,} tags (a copy of the kept database, made in "
                  f"{copy_seconds:.0f} s, deleted after)")
    notes = {"fanout": f"{store_note}; the app's workers spent a median {cpu:.2f} CPU-s per write until every "
                       "document was fresh",
             "fanout-mirror": f"{store_note}; the mirror holds only what changed since `export --watch --from-now` "
                              "started on an empty folder: the feeds (every format and profile) of the scopes the "
                              "writes touch, the lists, the written articles' pages, made by a warm-up write to "
                              f"each measured write's scopes (the public feeds of "
                              f"{len(warm_ups)} in {warm_seconds:.0f} s, all in {caught_up:.0f} s); idle, the watcher "
                              f"uses {idle:.2f} of a core; it spent a median {watcher_cpu:.2f} CPU-s per write "
                              "until the app and the mirror both served it (the watcher then goes on with the "
                              "profiles' feeds and the OPML lists)"}
    for name, what, lags in (("fanout", f"the app: {documents} documents", app_lags),
                             ("fanout-mirror", "nginx, the mirror's 42 public feeds", mirror_lags)):
        p99 = sorted(lags)[min(len(lags) - 1, int(round(0.99 * (len(lags) - 1))))]
        table.add(Row(name, section, f"{what}: p99 {p99:.2f} s over {len(lags)} writes", Sample(lags, "s"),
                      target="p99 ≤ 1 s", met=p99 <= TARGET_SECONDS, value=p99, statistic="p99",
                      note=notes.get(name, "")))
    return {"fanout_documents": documents, "fanout_app_cpu_seconds": cpu, "fanout_mirror_cpu_seconds": watcher_cpu,
            "fanout_store_copy_seconds": copy_seconds, "fanout_tags": tags}
