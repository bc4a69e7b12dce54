"""Importing record files (.json, .jsonl, folders): parse in worker processes, write through `write`."""
from __future__ import annotations

import gc
import json
import multiprocessing
import os
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

import orjson
from sqlalchemy.engine import Engine

from feedsvc import store
from feedsvc.ingest.frames import DEFAULT_FRAME_HOSTS
from feedsvc.ingest.images import ImageSettings, one_stat_per_file
from feedsvc.ingest.records import Article, Problem, RecordError, parse_record
from feedsvc.ingest.write import (
    ConcurrentWrite,
    Incoming,
    StaleWrite,
    VersionConflict,
    WriteResult,
    commit_write,
    upsert_incoming,
    upsert_many,
)

MAX_FILE_BYTES = 8 * 1024 * 1024
# An import waits out a long write by another process, which a request may not.
IMPORT_LOCK_TIMEOUT = 120
BATCH_SIZE = 500
# Below this much input, starting worker processes costs more than it saves.
PARALLEL_MIN_BYTES = 4 * 1024 * 1024
T = TypeVar("T")


def import_engine(database_url: str) -> Engine:
    """The engine an import writes through: long lock waits, bulk-write settings."""
    return store.make_engine(database_url, lock_timeout=IMPORT_LOCK_TIMEOUT, bulk=True)


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: list[str] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # "source: field: reason" of records stored anyway

    @property
    def stored(self) -> int:
        return self.created + self.updated

    def count(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)


def source_files(paths: Iterable[str | Path]) -> list[Path]:
    """Every .json and .jsonl file named or found below the named folders, in a stable order."""
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix in (".json", ".jsonl") and p.is_file()))
        else:
            found.append(path)
    return found


def read_records(path: Path) -> Iterator[tuple[str, bytes | RecordError, int]]:
    """(source label, the record's raw JSON or a RecordError, bytes consumed) for each record in a file."""
    if path.suffix == ".jsonl":
        label = str(path)
        with path.open("rb", buffering=1 << 20) as handle:  # lines of several KB: read a megabyte at a time
            for number, line in enumerate(handle, 1):
                if not line.isspace():
                    yield f"{label}:{number}", line, len(line)
        return
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        yield str(path), RecordError([Problem("(file)", f"is {size} bytes; a record file may have at most "
                                                        f"{MAX_FILE_BYTES}")], str(path)), size
        return
    yield str(path), path.read_bytes(), size


def parse_raw(raw: bytes | RecordError, source: str, site_url: str, frame_hosts: tuple[str, ...] = DEFAULT_FRAME_HOSTS,
              images: ImageSettings | None = None) -> Article | RecordError:
    """Decode and validate one record; errors are returned, not raised, so a batch carries on."""
    if isinstance(raw, RecordError):
        return raw
    if len(raw) > MAX_FILE_BYTES:
        return RecordError([Problem("(record)", f"is {len(raw)} bytes; at most {MAX_FILE_BYTES} allowed")], source)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        # The standard library's parser says precisely what is wrong (or accepts what orjson refuses: NaN).
        data = _loads_or_error(raw, source)
        if isinstance(data, RecordError):
            return data
    try:
        return parse_record(data, site_url=site_url, source=source, json_text=raw, frame_hosts=frame_hosts,
                            images=images)
    except RecordError as error:
        return error


def _loads_or_error(raw: bytes, source: str):
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return RecordError([Problem("(file)", f"is not UTF-8 (byte {exc.start})")], source)
    except json.JSONDecodeError as exc:
        return RecordError([Problem("(file)", f"is not valid JSON: {exc.msg} at line {exc.lineno} "
                                              f"column {exc.colno}")], source)
    except RecursionError:  # "[[[[..." a hundred thousand deep: json gives up, the import must not
        return RecordError([Problem("(file)", "is not valid JSON: nested too deeply to be a record")], source)


def _prepare(raw: bytes | RecordError, source: str, site_url: str, frame_hosts: tuple[str, ...],
             images: ImageSettings | None) -> tuple[Incoming | RecordError, list[str]]:
    """The record ready to write, and its warnings: they travel apart, as an Incoming pickles only its JSON."""
    parsed = parse_raw(raw, source, site_url, frame_hosts, images)
    if isinstance(parsed, RecordError):
        return parsed, []
    return Incoming.to_send(parsed), [f"{source}: {warning}" for warning in parsed.warnings]


def _parse_chunk(chunk: list, site_url: str, frame_hosts: tuple[str, ...],
                 images: ImageSettings | None = None) -> list[tuple[str, Incoming | RecordError, int, list[str]]]:
    # Many records of a chunk name the same few image files: each is looked at once a chunk.
    with one_stat_per_file():
        parsed = [(source, _prepare(raw, source, site_url, frame_hosts, images), size) for source, raw, size in chunk]
    return [(source, incoming, size, warnings) for source, (incoming, warnings), size in parsed]


def _chunks(files: list[Path]) -> Iterator[list]:
    chunk = []
    for path in files:
        for item in read_records(path):
            chunk.append(item)
            if len(chunk) >= BATCH_SIZE:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def _parsed_chunks(files: list[Path], site_url: str, frame_hosts: tuple[str, ...], workers: int,
                   images: ImageSettings | None) -> Iterator[list]:
    """Parse chunks in `workers` processes (validation and sanitising are CPU-bound; 0: in this one)."""
    return in_workers(_parse_chunk, _chunks(files), workers, site_url, frame_hosts, images)


def in_workers(function: Callable[..., T], chunks: Iterable, workers: int, *args) -> Iterator[T]:
    """function(chunk, *args) of each chunk, in input order, run in `workers` forked processes (0: in
    this one) while the caller writes, with only a few chunks in flight so memory stays flat on a
    million records. `function` must be a module-level function, and its arguments picklable."""
    if workers < 1:
        yield from (function(chunk, *args) for chunk in chunks)
        return
    with _heap_frozen(), ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"),
                                             initializer=_take_work, initargs=(function, args)) as pool:
        in_flight: deque = deque()
        for chunk in chunks:
            in_flight.append(pool.submit(_work_on, chunk))
            if len(in_flight) >= workers + 2:  # every worker busy while this process writes
                yield in_flight.popleft().result()
        while in_flight:
            yield in_flight.popleft().result()


# A worker's function and arguments, handed over once through the fork rather than pickled with every
# chunk: the arguments are then the same objects for every chunk, which caches keyed by them (the image
# settings: images.local_media, images._processed) find by identity instead of comparing them field by
# field, 3 µs a lookup and several lookups a record.
_work: tuple[Callable, tuple] | None = None


def _take_work(function: Callable, args: tuple) -> None:
    global _work
    _work = (function, args)


def _work_on(chunk):
    assert _work is not None, "a worker process runs _take_work first (the pool's initializer)"
    function, args = _work
    return function(chunk, *args)


def default_workers(big: bool) -> int:
    """Worker processes for a job: one per core, at most 4, for a big one; none for a small one, where
    starting them costs more than they save."""
    cores = os.cpu_count() or 1
    return min(cores, 4) if big and cores > 1 else 0


@contextmanager
def _heap_frozen():
    """The objects this process holds kept out of the cyclic collector while workers are forked and run
    (https://docs.python.org/3/library/gc.html#gc.freeze): a collection in a worker would otherwise walk
    them all, touching, and so copying, every page it shares with this process. A tenth of the workers'
    CPU time on an import; the writer's collections walk less too."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def import_files(engine: Engine, paths: Iterable[str | Path], *, site_url: str, site_name: str,
                 progress=None, workers: int | None = None,
                 frame_hosts: tuple[str, ...] = DEFAULT_FRAME_HOSTS,
                 images: ImageSettings | None = None) -> ImportReport:
    """Validate and upsert every record; good records are stored even when others are bad.

    Big inputs are parsed in worker processes while this one writes (`workers`: how many; 0: none);
    local images are probed and their renditions made there too (`images`), off the writer.
    """
    files = source_files(paths)
    if workers is None:
        workers = default_workers(sum(p.stat().st_size for p in files) >= PARALLEL_MIN_BYTES)
    report = ImportReport()
    seen: dict[str, str] = {}
    for chunk in _parsed_chunks(files, site_url, frame_hosts, workers, images):
        batch = []
        for source, parsed, _, warnings in chunk:
            report.warnings.extend(warnings)
            if isinstance(parsed, Incoming) and parsed.article.id in seen:
                article_id = parsed.article.id
                parsed = RecordError([Problem("id", f"'{article_id}' appears twice in this import; "
                                                    f"the first is in {seen[article_id]} and was kept")], source)
            if isinstance(parsed, RecordError):
                report.errors.append(parsed)
            else:
                seen[parsed.article.id] = source
                batch.append((source, parsed))
        if batch:
            _store_batch(engine, batch, site_name, report)
        if progress is not None:
            progress(sum(size for _, _, size, _ in chunk))
    return report


def _store_batch(engine: Engine, batch: list[tuple[str, Incoming]], site_name: str, report: ImportReport) -> None:
    """One transaction per batch; if another writer interferes, the batch is redone one record at a time."""
    try:
        with engine.begin() as conn:
            outcomes = upsert_many(conn, [incoming for _, incoming in batch], site_name=site_name)
            changed = {scope: name for o in outcomes if isinstance(o, WriteResult) for scope, name in o.scopes.items()}
            if changed:
                store.record_changes(conn, changed, articles=[o.article_id for o in outcomes
                                                              if isinstance(o, WriteResult) and o.scopes])
    except ConcurrentWrite:
        outcomes = []
        for _, incoming in batch:
            try:
                outcomes.append(commit_write(engine, upsert_incoming, incoming.complete(), site_name=site_name))
            except (RecordError, StaleWrite, VersionConflict, ConcurrentWrite) as error:
                outcomes.append(error)
    for (source, _), outcome in zip(batch, outcomes, strict=True):
        if isinstance(outcome, WriteResult):
            report.count(outcome.outcome)
        elif isinstance(outcome, RecordError):
            report.errors.append(RecordError(outcome.problems, source))
        elif isinstance(outcome, (StaleWrite, VersionConflict, ConcurrentWrite)):
            report.stale.append(f"{source}: {outcome}")
        else:   # upsert_many returns no other error (see there)
            raise outcome
