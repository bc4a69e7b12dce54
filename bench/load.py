"""The big corpus and database, built once and kept in bench/out/ between runs.

`python -m bench.load [N]` (default BENCH_ROWS, else 1,000,000) makes
  bench/out/corpus-N-seed0.jsonl   `python -m bench.synth N --out ...`
  bench/out/db-N-seed0.sqlite      `flask --app wsgi import-articles corpus-N-seed0.jsonl`
  bench/out/db-N-seed0.json        how long that import took (reported by every later bench run)
each only when missing, by commands with progress bars (the import is the one an operator runs).
A file is only given its final name once complete, so an interrupted build starts over cleanly.
"""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
SEED = 0
DEFAULT_ROWS = 1_000_000


def rows_wanted() -> int:
    return int(os.environ.get("BENCH_ROWS", DEFAULT_ROWS))


def run_module(module: str, *args: str, env: dict | None = None) -> None:
    """Run `python -m module args` from the repository, its output (progress bars) on this terminal."""
    environment = {**os.environ, **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environment.get("PYTHONPATH")]))
    subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=environment, check=True)


def flask(*args: str, env: dict | None = None) -> None:
    """Run a `flask --app wsgi` command as an operator would."""
    run_module("flask", "--app", "wsgi", *args, env=env)


def corpus(n: int, seed: int = SEED) -> Path:
    path = OUT / f"corpus-{n}-seed{seed}.jsonl"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".jsonl.partial")
        print(f"generating {n:,} synthetic records into {path} (kept for later runs)", file=sys.stderr)
        run_module("bench.synth", str(n), "--out", str(partial), "--seed", str(seed))
        partial.rename(path)
    return path


@dataclass
class Loaded:
    database: Path
    records: int
    seconds: float       # the import command, start to finish (cached runs report the first build)
    built_now: bool
    # When the import ran and the machine's 1-minute load then (start, end): a kept database reports the
    # rate of its build, which a busy machine slows several times over (2026-12-07: 349/s at load 9-20).
    built: str = ""
    load: tuple[float, float] | None = None

    @property
    def url(self) -> str:
        return f"sqlite:///{self.database}"

    @property
    def rate(self) -> float:
        return self.records / self.seconds


def database(n: int, seed: int = SEED) -> Loaded:
    """A SQLite database holding the corpus, imported by `flask import-articles` in one command."""
    path = OUT / f"db-{n}-seed{seed}.sqlite"
    marker = path.with_suffix(".json")
    if path.exists() and marker.exists():
        facts = json.loads(marker.read_text())
        return Loaded(path, facts["records"], facts["seconds"], False, facts.get("built", ""),
                      tuple(facts["load"]) if "load" in facts else None)
    source = corpus(n, seed)
    partial = path.with_suffix(".partial.sqlite")
    for leftover in OUT.glob(partial.name + "*"):
        leftover.unlink()
    print(f"importing {n:,} records into {path} (kept for later runs)", file=sys.stderr)
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    flask("import-articles", str(source), env={"FEEDSVC_DATABASE_URL": f"sqlite:///{partial}"})
    seconds, load_after = time.perf_counter() - started, os.getloadavg()[0]
    with sqlite3.connect(partial) as conn:      # fold the WAL into the file before it is renamed
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        records = conn.execute("SELECT count(*) FROM articles").fetchone()[0]
    conn.close()
    for suffix in ("-wal", "-shm"):
        Path(str(partial) + suffix).unlink(missing_ok=True)
    partial.rename(path)
    built = time.strftime("%Y-%m-%d %H:%M:%S")
    marker.write_text(json.dumps({"records": records, "seconds": seconds, "source": source.name,
                                  "built": built, "load": [load_before, load_after]}))
    return Loaded(path, records, seconds, True, built, (load_before, load_after))


if __name__ == "__main__":
    loaded = database(int(sys.argv[1]) if len(sys.argv) > 1 else rows_wanted())
    print(f"{loaded.database}: {loaded.records:,} records, imported in {loaded.seconds:.0f} s "
          f"({loaded.rate:,.0f} records/s)")
