"""Render once per change: finished documents kept in this process, checked against the store.

A document (a feed page in one format, the OPML, the feed directory) is identified by a key such
as ("rss", "section:sports", 50, None, True). Its validator — the ETag value — is a hash of that
key, of the scope's change counter in the store (`scope_state.version` and its `modified_at`)
and of the settings that show in the output. Any process can therefore tell from one cheap
lookup of the shared counter, without rendering, whether a client's copy or its own cached copy
is current: a write through the API in one gunicorn worker bumps the counter, and every other
worker's next request sees a new validator and renders afresh. The body is compressed once, with
gzip and brotli, when it is rendered; requests only pick the bytes.
"""
from __future__ import annotations

import gzip
import hashlib
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Hashable, TypeVar

import brotli
from sqlalchemy.engine import Engine

from feedsvc import store

# gzip level 6 and brotli quality 9 come within a few per cent of the maximum size savings at
# a tenth of the time (brotli 11 takes over a second for a 500 KB feed); mtime=0 keeps the gzip
# bytes identical in every process, which the static mirror relies on.
GZIP_LEVEL = 6
BROTLI_QUALITY = 9
# Bump when the writers' output changes, so clients holding an old ETag get the new bytes.
OUTPUT_REVISION = "1"


def validator(key: Hashable, version: int, modified_at, salt: str = "") -> str:
    """The ETag value (unquoted) of a document: decided from the store's counter, before rendering."""
    material = repr((OUTPUT_REVISION, key, version, str(modified_at), salt)).encode("utf-8")
    return hashlib.blake2b(material, digest_size=12).hexdigest()


def compress(body: bytes) -> dict[str, bytes]:
    """Every encoding of a body, computed once."""
    return {
        "identity": body,
        "gzip": gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0),
        "br": brotli.compress(body, quality=BROTLI_QUALITY),
    }


@dataclass(frozen=True)
class Rendered:
    validator: str
    bodies: dict[str, bytes]

    @property
    def size(self) -> int:
        return sum(len(b) for b in self.bodies.values())


@dataclass
class RenderCache:
    """Rendered documents by key, least recently used dropped first beyond `max_bytes`."""
    max_bytes: int = 64 * 1024 * 1024
    stats: Counter = field(default_factory=Counter)

    def __post_init__(self):
        self._entries: OrderedDict[Hashable, Rendered] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._building: dict[Hashable, threading.Lock] = {}

    def get(self, key: Hashable, validator: str, build: Callable[[], bytes]) -> Rendered:
        """The document for `key` at `validator`, building (and compressing) it only if not cached."""
        cached = self._current(key, validator)
        if cached is not None:
            self.stats["hits"] += 1
            return cached
        # One build per key at a time in this process; a second thread waits and reuses it.
        with self._lock:
            key_lock = self._building.setdefault(key, threading.Lock())
        with key_lock:
            cached = self._current(key, validator)
            if cached is not None:
                self.stats["hits"] += 1
                return cached
            self.stats["renders"] += 1
            rendered = Rendered(validator, compress(build()))
            self._store(key, rendered)
        with self._lock:
            self._building.pop(key, None)
        return rendered

    def stale(self, key: Hashable) -> Rendered | None:
        """Whatever copy is held for `key`, current or not: for serving while the store is down."""
        with self._lock:
            return self._entries.get(key)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes

    def _current(self, key: Hashable, validator: str) -> Rendered | None:
        with self._lock:
            rendered = self._entries.get(key)
            if rendered is None or rendered.validator != validator:
                return None
            self._entries.move_to_end(key)
            return rendered

    def _store(self, key: Hashable, rendered: Rendered) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.size
            if rendered.size > self.max_bytes:
                return  # bigger than the whole cache: served once, not kept
            self._entries[key] = rendered
            self._bytes += rendered.size
            while self._bytes > self.max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= dropped.size
                self.stats["evictions"] += 1


T = TypeVar("T")


class CounterCache:
    """The store's change counters as this process last read them, trusted for `recheck_seconds`.

    With 0 (the default) every request reads its scope's counter: one indexed read, exact. With
    a short interval (deploy/gunicorn.conf.py sets 0.5 s) a worker reads each counter at most that
    often, which takes the database off the path of nearly every cached hit and 304 — the read and
    the connection checkout were about half the time of such a request. The price: a write through
    another process is seen up to that long later (a write through this app clears the cache at
    once, `follow`). Feed readers poll every few minutes; half a second is far below what they can notice,
    and the static mirror's exporter always reads exactly (recheck 0).
    """

    def __init__(self, recheck_seconds: float = 0.0):
        self.recheck_seconds = recheck_seconds
        self._held: dict[Hashable, tuple[object, float]] = {}

    def follow(self, engine: Engine) -> None:
        """Forget every counter when a write through `engine` (in this process) changes the store."""
        # Its own next request must see the write, not wait out the interval.
        store.changed.connect(self._store_changed, sender=engine)

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        if self.recheck_seconds <= 0:
            return load()
        now = time.monotonic()
        held = self._held.get(key)
        if held is not None and now - held[1] < self.recheck_seconds:
            return held[0]
        value = load()
        self._held[key] = (value, now)
        return value

    def clear(self) -> None:
        self._held.clear()

    def _store_changed(self, _engine, **_change) -> None:
        self.clear()
