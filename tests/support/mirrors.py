"""The static mirror in tests: the sample data exported once per session, the manifest read back, and the
`--watch` loop running beside a test. Loaded as a pytest plugin (tests/conftest.py)."""
from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import brotli
import pytest
from flask import Flask

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
def watching(mirror: export.Mirror, interval: float = 0.05, *, sync_first: bool = False) -> Iterator[export.Mirror]:
    """`mirror.watch` in a thread for the block (with `sync_first`, as `export --watch` runs it, the full
    pass beside it); stopped, joined and the mirror closed after it."""
    stop = threading.Event()
    watcher = threading.Thread(target=mirror.watch, kwargs={"interval": interval, "stop": stop,
                                                            "sync_first": sync_first})
    watcher.start()
    try:
        yield mirror
    finally:
        stop.set()
        watcher.join()
        mirror.close()


def assert_files_are_the_apps_bytes(app: Flask, root: Path, uncompressed: tuple[str, ...] = ()) -> dict[str, str]:
    """Every mirrored file is what the app serves for its URL, and its .gz and .br decode to it (and are
    the app's own compressed bytes where the app compresses); the files checked, by URL. The files of
    URLs starting with one of `uncompressed` have no .gz or .br at all."""
    client = app.test_client()
    files = mirrored_files(root)
    for url, relative in files.items():
        path = root / relative
        served = client.get(url)
        assert served.status_code == 200, url
        assert path.read_bytes() == served.get_data(), url
        if url.startswith(uncompressed):
            assert not any(Path(str(path) + suffix).exists() for suffix in export.SIBLINGS.values()), url
            continue
        for encoding, decode in (("gzip", gzip.decompress), ("br", brotli.decompress)):
            sibling = Path(str(path) + export.SIBLINGS[encoding]).read_bytes()
            assert decode(sibling) == served.get_data(), (url, encoding)
            packed = client.get(url, headers={"Accept-Encoding": encoding})
            if packed.headers.get("Content-Encoding") == encoding:
                assert sibling == packed.get_data(), (url, encoding)  # the app's own compressed bytes
    return files
