"""The benchmark's steps, each measuring a few named rows side by side, and what they share.

A row is measured only together with its baselines, so `--only ROW` runs the step that holds it
(and only the databases, mirror and servers that step needs); every name is listed by
`python -m bench --list`.
"""
from __future__ import annotations

import shutil
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

from feedsvc import create_app
from feedsvc.web import db

from . import build, fanout, fresh, load, media, mirror_full, multinode, profiles, scale, serve, stats, takedown, wrk
from .stats import Row, Table

SMALL_ROWS = 600   # enough for a 500-item feed; the serving and mirror rows use this database
WORK = load.OUT / "work"
T = TypeVar("T")
NOISE_ROWS = {"machine-noise": "one fixed piece of pure-Python work, 15 repeats: how much this machine moves by itself"}


class UnknownRows(ValueError):
    def __init__(self, unknown: list[str]):
        super().__init__(f"no bench row named {', '.join(unknown)}; the rows are: {', '.join(ROWS)}")


class Run:
    """What the steps of one run share, each made when the first step needs it."""

    def __init__(self, repeats: int, rows: int):
        self.repeats, self.rows = repeats, rows
        self.facts: dict = {}
        self.plans: list[str] = []
        self.env = serve.app_env("")
        self._made: dict[str, tuple[object, Exception | None]] = {}

    def _once(self, name: str, make: Callable[[], T]) -> T:
        """What `make` gives, made once per run; a failure is kept too, so each later step needing it
        fails at once with the same error instead of building it again (the big database takes most
        of an hour)."""
        if name not in self._made:
            try:
                self._made[name] = (make(), None)
            except Exception as error:
                self._made[name] = (None, error)
        value, error = self._made[name]
        if error is not None:
            raise error
        return value  # type: ignore[return-value]

    @property
    def small_url(self) -> str:
        """A working copy of the small database: the mirror row writes to it, so each run starts afresh."""
        return self._once("small_url", _small_copy)

    @property
    def mirror(self) -> Path:
        """The static mirror of the small database, brought up to date."""
        return self._once("mirror", lambda: _synced_mirror(self.app()))

    @property
    def big(self) -> load.Loaded:
        return self._once("big", lambda: load.database(self.rows))

    def app(self):
        return create_app({"DATABASE_URL": self.small_url, "SITE_URL": self.env["FEEDSVC_SITE_URL"], "ACCESS_LOG": False})


def _small_copy() -> str:
    small = load.database(SMALL_ROWS)
    WORK.mkdir(parents=True, exist_ok=True)
    database = WORK / "bench.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(str(database) + suffix).unlink(missing_ok=True)
    shutil.copyfile(small.database, database)
    return f"sqlite:///{database}"


def _synced_mirror(app) -> Path:
    from feedsvc.publish.mirror import Mirror

    mirror = Mirror(app, WORK / "mirror")
    try:
        print(f"mirror: {mirror.sync(progress_bar=True)}", file=sys.stderr)
    finally:
        mirror.close()
        db.engine(app).dispose()
    return WORK / "mirror"


def noise(table: Table, run: Run) -> None:
    def work():
        total = 0
        for i in range(300_000):
            total += i * i % 7
        return total
    table.add(Row("machine-noise", "machine noise", "fixed pure-Python work, 15 repeats", stats.timed(work, repeats=15),
                  note="spread = (max-min)/median"))


def building(size: int) -> Callable[[Table, Run], None]:
    def measure(table: Table, run: Run) -> None:
        app = run.app()
        try:
            run.facts.update(build.run(table, app, sizes=(size,)))
        finally:
            db.engine(app).dispose()
    return measure


def fragments(table: Table, run: Run) -> None:
    app = run.app()
    try:
        run.facts.update(build.run_fragments(table, app, repeats=max(run.repeats, 9)))
    finally:
        db.engine(app).dispose()


def serving(table: Table, run: Run) -> None:
    # The serving rows were bimodal with 5 repeats: at least 7.
    run.facts.update(serve.run(table, run.small_url, run.mirror, WORK, max(run.repeats, 7)))


def serving_profiles(table: Table, run: Run) -> None:
    profiles.serving(table, run.small_url, run.mirror, WORK, max(run.repeats, 7))


def profile_fanout(table: Table, run: Run) -> None:
    app = run.app()
    try:
        profiles.fanout(table, app, max(run.repeats, 7))
    finally:
        db.engine(app).dispose()


def freshness(table: Table, run: Run) -> None:
    run.facts.update(fresh.run(table, run.small_url, run.mirror, WORK))


def takedowns(table: Table, run: Run) -> None:
    run.facts.update(takedown.run(table, run.small_url, run.mirror, WORK))


@dataclass(frozen=True)
class Failure:
    """A step that raised: its rows stand in the table as not measured, with `error` in their note."""
    step: str
    rows: list[str]     # the step's rows it did not measure
    error: str

    def as_json(self) -> dict:
        return {"step": self.step, "rows": self.rows, "error": self.error}


@dataclass(frozen=True)
class Step:
    title: str
    rows: dict[str, str]            # name -> one line saying what the row is
    measure: Callable[[Table, Run], None]
    needs_servers: bool = False     # wrk and nginx

    def run(self, table: Table, run: Run) -> Failure | None:
        """Measure the step's rows into `table`. A step that raises (or makes rows it does not declare)
        costs the run only its own rows: those it measured stay, the others are added as not measured
        with the error in their note, and the Failure says so (the traceback goes to stderr), so the
        run still prints and writes its table, and ends in failure."""
        before = len(table.rows)
        try:
            self.measure(table, run)
            made = [row.name for row in table.rows[before:]]
            if sorted(made) != sorted(self.rows):
                raise RuntimeError(f"bench step {self.title!r} made rows {made}, but declares {list(self.rows)}")
            return None
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            error = f"{exc.__class__.__name__}: {' '.join(str(exc).split())[:300]}"
        kept = [row for row in table.rows[before:] if row.name in self.rows]
        measured = {row.name for row in kept}
        missing = [name for name in self.rows if name not in measured]
        table.rows[before:] = kept + [Row(name, self.title, self.rows[name], None, note=f"not measured: {error}")
                                      for name in missing]
        print(f"bench step {self.title!r} failed ({error}); not measured: {', '.join(missing)}", file=sys.stderr)
        return Failure(self.title, missing, error)


NOISE = Step("machine noise", NOISE_ROWS, noise)
STEPS = [
    NOISE,
    *(Step(f"building {n}-item feeds", build.rows(n), building(n)) for n in build.SIZES),
    Step("building 50-item feeds from entry fragments", build.FRAGMENT_ROWS, fragments),
    Step("serving a cached feed and 304 (wrk)", serve.ROWS, serving, needs_servers=True),
    Step("serving aggregator profile feeds and 304 (wrk)", profiles.SERVE_ROWS, serving_profiles, needs_servers=True),
    Step("rendering every profile variant after a write", profiles.FANOUT_ROWS, profile_fanout),
    Step("mirror freshness", fresh.ROWS, freshness, needs_servers=True),
    Step("takedowns", takedown.ROWS, takedowns, needs_servers=True),
    Step("one write's fan-out", fanout.ROWS,
         lambda table, run: run.facts.update(fanout.run(table, run.big, WORK, run.repeats)),
         needs_servers=True),
    Step("import rate", scale.IMPORT_RATE_ROWS | media.IMPORT_IMAGE_ROWS,
         lambda table, run: media.import_with_images(table, scale.import_rate(table))),
    Step("image renditions", media.RENDITION_ROWS, lambda table, run: media.renditions(table, run.repeats)),
    Step("serving a rendition (wrk)", media.SERVE_ROWS,
         lambda table, run: media.serve_rendition(table, run.mirror, WORK, run.repeats), needs_servers=True),
    Step("BENCH_ROWS records in one command (cached in bench/out/)", scale.BIG_LOAD_ROWS,
         lambda table, run: scale.million_load(table, run.big, run.rows)),
    Step("newest 50 queries", scale.QUERY_ROWS, lambda table, run: scale.queries(table, run.big, run.plans)),
    Step("a full static mirror of BENCH_ROWS articles", mirror_full.ROWS,
         lambda table, run: run.facts.update(mirror_full.run(table, run.big, WORK))),
    Step("memory per worker", scale.MEMORY_ROWS, lambda table, run: scale.memory(table, run.big, WORK),
         needs_servers=True),
    Step("several app machines", multinode.ROWS, lambda table, run: multinode.run(table, WORK, SMALL_ROWS),
         needs_servers=True),
]
ROWS = {name: description for step in STEPS for name, description in step.rows.items()}


def select(names: list[str] | None) -> list[Step]:
    """The steps holding `names` (every step when None), the machine's noise always first."""
    if names is None:
        return list(STEPS)
    unknown = [name for name in names if name not in ROWS]
    if unknown:
        raise UnknownRows(unknown)
    return [step for step in STEPS if step is NOISE or set(step.rows) & set(names)]


def servers_missing(steps: list[Step]) -> bool:
    return any(step.needs_servers for step in steps) and not (wrk.available() and Path("/usr/sbin/nginx").exists())

