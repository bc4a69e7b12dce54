"""The static mirror in tests: the sample data exported once per session, the manifest read back, and the
`--watch` loop running beside a test. Loaded as a pytest plugin (tests/conftest.py)."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from feedsvc.publish import mirror as export


@pytest.fixture(scope="session")
def sample_mirror(sample_app, tmp_path_factory):
    """(folder, sync report): the sample data exported once per session (test_export, test_mirror_nginx)."""
    root = tmp_path_factory.mktemp("mirror")
    mirror = export.Mirror(sample_app, root)
    report = mirror.sync()
    mirror.close()
    return root, report


def mirrored_files(root: Path) -> dict[str, str]:
    """url -> file of every document the manifest says the mirror holds."""
    manifest = export.Manifest(root)
    try:
        return dict(manifest.db.execute("SELECT url, file FROM documents"))
    finally:
        manifest.close()


@contextmanager
def watching(mirror: export.Mirror, interval: float = 0.05) -> Iterator[export.Mirror]:
    """`mirror.watch` in a thread for the block; stopped, joined and the mirror closed after it."""
    stop = threading.Event()
    watcher = threading.Thread(target=mirror.watch, kwargs={"interval": interval, "stop": stop})
    watcher.start()
    try:
        yield mirror
    finally:
        stop.set()
        watcher.join()
        mirror.close()
