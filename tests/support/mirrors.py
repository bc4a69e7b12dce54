"""The static mirror's `--watch` loop running beside a test."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from feedsvc.publish import mirror as export


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
