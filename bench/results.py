"""A run's results as JSON: what `make bench` commits (bench/results/last-run.json) and what
`python -m bench --json FILE` writes; the README's performance block is made from it."""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

from .load import ROOT
from .stats import Table

LAST_RUN = ROOT / "bench" / "results" / "last-run.json"
ROW_FIELDS = ("name", "section", "what", "value", "statistic", "unit", "values", "spread", "ratio", "baseline",
              "target", "met", "note")


def machine(load_before: tuple[float, ...]) -> str:
    return (f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"load average {load_before[0]:.1f} before / {os.getloadavg()[0]:.1f} after")


def document(table: Table, *, only: list[str] | None, settings: dict, machine_line: str, seconds: float,
             facts: dict, plans: list[str], failed: list[dict] | None = None) -> dict:
    """The run as JSON; `failed` lists the steps that raised (step, rows not measured, error): such a
    run is kept and shown, but is no `make bench` result (python -m bench.readme refuses it)."""
    rows = [row.as_json() for row in table.rows if only is None or row.name in only or row.name == "machine-noise"]
    return {"date": time.strftime("%Y-%m-%d %H:%M %z"), "machine": machine_line, "minutes": round(seconds / 60, 1),
            "source": "measured by `python -m bench`", "only": only, "settings": settings,
            "failed": failed or [], "rows": rows, "facts": facts, "plans": plans}


def disk_use(folder: Path) -> int:
    """Bytes in the files under `folder` (what a run keeps in bench/out/: the corpora, the databases, the
    mirrors it wrote), so the disk `make bench` needs is measured, not typed."""
    total = 0
    for parent, _, names in os.walk(folder):
        for name in names:
            try:
                total += os.lstat(os.path.join(parent, name)).st_size
            except FileNotFoundError:   # a file another process removed meanwhile
                pass
    return total


def write(path: Path, results: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", "utf-8")


def read(path: Path = LAST_RUN) -> dict:
    return json.loads(path.read_text("utf-8"))
