"""The folders test apps keep files in: never the checkout's, which every test and both xdist workers shared.

Instance folder: an app keeps files there (the render spill, the shared fragment file, change signals,
the media backfill's place, the default SQLite store). Flask's default is <checkout>/instance, one folder
for every app the suite builds and every process it starts: one test's spill eviction deleted another's
files, and a resumed backfill read another database's place (CI, 2026-12-07). Each test has its own.

Media folder: MEDIA_DIR defaults to <checkout>/articles/media, and ingest writes the images' renditions
under it. An export lists every file there, so while one worker imported, the other's export could find
more files than a moment before (the likely cause of test_export_full's resume test counting 120 documents
more in its second pass of one store, once in CI). Each test process has a copy of its own; tests in one
process run one after another.
Renditions are the same bytes whoever makes them (named by the source's digest), and making the
samples' takes about 11 s CPU: they are carried from run to run in pytest's cache folder, copied into
each process's copy at its start and linked back at its end (the cache is never listed while tests run).

FEEDSVC_INSTANCE_PATH and FEEDSVC_MEDIA_DIR name the folders from the start of the test process (module
imports and session fixtures read them), FEEDSVC_INSTANCE_PATH a folder of each test's own while it runs.
Apps built through tests.support.apps.AppFactory, and every process a test starts (gunicorn,
`flask --app wsgi`, `make run`) with the environment it inherits, use them. Loaded as a pytest plugin
(tests/conftest.py).
"""
from __future__ import annotations

import itertools
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from feedsvc.config import DEFAULTS
from feedsvc.ingest.images import RENDITIONS_DIR

INSTANCE, MEDIA = "FEEDSVC_INSTANCE_PATH", "FEEDSVC_MEDIA_DIR"
SHIPPED_MEDIA = Path(DEFAULTS["MEDIA_DIR"])


def visible_files(folder: Path) -> Iterator[Path]:
    """Files below `folder`, relative to it, but those under a dot-name (locks, files being written)."""
    for path in folder.rglob("*"):
        relative = path.relative_to(folder)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            yield relative


def add_missing(source: Path, target: Path, *, link: bool) -> None:
    """Every visible file of `source` that `target` lacks, copied into it, or hard-linked (`link`: copied
    only across file systems). Each appears whole or not at all, as the other process may be reading."""
    if not source.is_dir():
        return
    for relative in visible_files(source):
        destination = target / relative
        if destination.exists():
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        if link:
            try:
                os.link(source / relative, destination)
                continue
            except FileExistsError:
                continue   # another process added the same file meanwhile: the same bytes
            except OSError:
                pass       # another file system
        temporary = destination.with_name(f".{destination.name}.{os.getpid()}.tmp")
        shutil.copy2(source / relative, temporary)
        os.replace(temporary, destination)


class _Folders:
    """This test process's folders, under one temporary root removed at its end."""

    def __init__(self, renditions_cache: Path | None):
        self.root = Path(tempfile.mkdtemp(prefix="feedsvc-tests-"))
        self.previous = {name: os.environ.get(name) for name in (INSTANCE, MEDIA)}
        self.numbers = itertools.count()
        self.renditions_cache = renditions_cache
        self.media = self.root / "media"
        shutil.copytree(SHIPPED_MEDIA, self.media, ignore=shutil.ignore_patterns(RENDITIONS_DIR, ".*"))
        if renditions_cache is not None:   # copies: a test that changed one in place must not change the cache's
            add_missing(renditions_cache, self.media / RENDITIONS_DIR, link=False)
        os.environ.update({INSTANCE: str(self.root / "process"), MEDIA: str(self.media)})

    def for_test(self, name: str) -> Path:
        readable = re.sub(r"[^\w.-]+", "_", name)[:60]
        return self.root / "instances" / f"{next(self.numbers):05d}-{readable}"

    def close(self) -> None:
        if self.renditions_cache is not None:
            add_missing(self.media / RENDITIONS_DIR, self.renditions_cache, link=True)
        for name, value in self.previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(self.root, ignore_errors=True)


_folders: _Folders | None = None


@pytest.hookimpl(trylast=True)   # after the cache plugin's: config.cache
def pytest_configure(config) -> None:
    global _folders
    cache = getattr(config, "cache", None)
    # Before collection: some test modules render the sample records at import.
    _folders = _Folders(cache.mkdir("feedsvc-renditions") if cache is not None else None)


def pytest_unconfigure(config) -> None:
    global _folders
    if _folders is not None:
        _folders.close()
        _folders = None


@pytest.fixture(autouse=True)
def instance_folder(request, monkeypatch) -> Path:
    """This test's instance folder (made when something first writes to it), in FEEDSVC_INSTANCE_PATH."""
    assert _folders is not None, "tests.support.folders is loaded as a plugin"
    folder = _folders.for_test(request.node.name)
    monkeypatch.setenv(INSTANCE, str(folder))
    return folder
