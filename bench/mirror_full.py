"""Row `mirror-full`: documents a second of `flask --app wsgi export DIR` from scratch over the big store.

The command an operator runs (a separate process, `--workers` = the machine's cores) on the BENCH_ROWS
database, into an empty folder: every feed, OPML, sitemap, canonical and AMP page, each with .gz and
.br (feedsvc/publish/mirror_full.py). The clock runs from the command's start (app start-up and the
listing of every document included) to its end, or to MIRROR_SECONDS, when it is killed (SIGKILL,
as a resumable export may be): at 1M articles the whole mirror is 2M documents, half an hour even at
the target, so the row projects the whole from the part done. The documents counted are those the
manifest records as finished (written and renamed into place).

The projection is the start-up as measured (app, listing every document, the first batch: until
the manifest records its first document) plus the rest at the rate measured after it. Dividing the
part done by the whole window instead charged the start-up to 150 s: at 1M articles the listing
alone is ~13 s of one core, a tenth of the window but under 1 % of the half hour it projects.
"""
from __future__ import annotations

import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from feedsvc.publish.mirror import MANIFEST, STATE_DIR
from feedsvc.publish.mirror_full import PASS_DOCUMENTS

from . import load
from .stats import Row, Sample, Table

MIRROR_SECONDS = int(os.environ.get("BENCH_MIRROR_SECONDS", 150))
TARGET_RATE = 1000.0
ROWS = {"mirror-full": "`flask export DIR` from scratch over BENCH_ROWS articles (every feed, OPML, sitemap, page, "
                       "AMP page, each with .gz and .br), documents/s (target ≥ 1,000 on 2 cores)"}


def run(table: Table, loaded: load.Loaded, workdir: Path) -> dict:
    folder = workdir / "mirror-full"
    shutil.rmtree(folder, ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "FEEDSVC_DATABASE_URL": loaded.url, "FEEDSVC_ACCESS_LOG": "0",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(load.ROOT), os.environ.get("PYTHONPATH")]))}
    workers = os.cpu_count() or 1
    log_path = workdir / "mirror-full.log"
    started = time.perf_counter()
    children_before = _children_cpu()
    with open(log_path, "wb") as log:
        export = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "export", str(folder),
                                   "--workers", str(workers)], cwd=load.ROOT, env=env, stdout=log, stderr=log)
        finished, cpu, first = _run_for(export, MIRROR_SECONDS, folder)
    seconds = time.perf_counter() - started
    if finished is not None:   # it ended by itself: its workers' time is in its children's, exactly
        cpu = _children_cpu() - children_before
    done, total = _documents(folder)
    rate = done / seconds
    # What the machine's other load does not move: documents per CPU second of the exporter and its
    # workers, times the cores they may use (a quiet machine's rate, if nothing but CPU bounds it).
    cpu_rate = done / cpu * workers if cpu else 0.0
    note = (f"{loaded.records:,} articles, {done:,} of {total:,} documents in {seconds:.0f} s, {workers} workers, "
            f"load {os.getloadavg()[0]:.1f} after; {cpu:.0f} CPU s, so {cpu_rate:,.0f} docs/s on {workers} "
            f"idle cores")
    finished = bool(finished)
    steady = None
    if not finished and first is not None and done > first.done and seconds > first.seconds - started:
        startup = first.seconds - started
        steady = (done - first.done) / (seconds - startup)
        steady_cpu = (done - first.done) / (cpu - first.cpu) * workers if cpu > first.cpu else 0.0
        whole = startup + (total - first.done) / steady
        rate = total / whole
        note += (f"; start-up (app, listing, first batch) {startup:.0f} s, {first.cpu:.0f} CPU s, then "
                 f"{steady:,.0f} docs/s ({steady_cpu:,.0f} on {workers} idle cores by CPU); stopped at "
                 f"{MIRROR_SECONDS} s, the whole projected: {whole / 60:.0f} min")
    elif not finished and rate:
        note += f"; stopped at {MIRROR_SECONDS} s, the whole at this rate: {total / rate / 60:.0f} min"

    print(f"mirror-full: {note} ({rate:,.0f} documents/s; the export's log: {log_path})", file=sys.stderr)
    table.add(Row("mirror-full", "static mirror, full export", "`flask export DIR` from scratch: documents/s "
                  "(FILE + .gz + .br each)", Sample([rate], "docs/s", higher_is_better=True),
                  target=f"≥ {TARGET_RATE:,.0f} docs/s", met=rate >= TARGET_RATE, note=note))
    return {"mirror_full_documents": done, "mirror_full_seconds": seconds, "mirror_full_finished": finished,
            "mirror_full_total": total, "mirror_full_cpu_seconds": cpu, "mirror_full_steady_rate": steady}


@dataclass(frozen=True)
class _Mark:
    """The first look that found documents recorded: when (perf_counter), the CPU seconds spent by then,
    and how many."""
    seconds: float
    cpu: float
    done: int


def _run_for(export: subprocess.Popen, seconds: float, folder: Path) -> tuple[bool | None, float, _Mark | None]:
    """Wait up to `seconds` for the export; kill it then. (True/False: it ended by itself, well or not;
    None: killed), the CPU seconds of it and its workers last read before the kill (a worker killed
    with its exporter is never waited for, so its time shows in no rusage), and when its manifest was
    first seen holding documents (once a second)."""
    deadline, cpu, first = time.monotonic() + seconds, 0.0, None
    while time.monotonic() < deadline:
        cpu = _tree_cpu(export.pid) or cpu
        if first is None:
            done, _ = _documents(folder)
            first = _Mark(time.perf_counter(), cpu, done) if done else None
        try:
            return export.wait(timeout=min(1.0, max(deadline - time.monotonic(), 0.01))) == 0, cpu, first
        except subprocess.TimeoutExpired:
            continue
    cpu = _tree_cpu(export.pid) or cpu
    export.send_signal(signal.SIGKILL)
    export.wait()
    return None, cpu, first


def _tree_cpu(pid: int) -> float:
    """User + system CPU seconds of a process and its children (proc(5): /proc/PID/stat), 0 if unreadable."""
    ticks, total = os.sysconf("SC_CLK_TCK"), 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue   # ended meanwhile
        # After the name: state, ppid, ... utime and stime are the 14th and 15th fields of the line.
        if int(stat.parent.name) == pid or int(fields[1]) == pid:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _documents(folder: Path) -> tuple[int, int]:
    """(documents the export finished, documents in its pass) from its manifest; 0s if it made none."""
    path = folder / STATE_DIR / MANIFEST
    if not path.exists():
        return 0, 0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        done = db.execute("SELECT count(*) FROM documents").fetchone()[0]
        listed = db.execute("SELECT value FROM state WHERE name = ?", (PASS_DOCUMENTS,)).fetchone()
        return done, int(listed[0]) if listed else done
    except sqlite3.OperationalError:
        return 0, 0
    finally:
        db.close()
