"""Render once per change: finished documents kept in this process, checked against the store.

A document (a feed page in one format, the OPML, the feed directory) is identified by a key such
as ("rss", "section:sports", 50, None, True). Its validator — the ETag value — is a hash of that
key, of the scope's change counter in the store (`scope_state.version` and its `modified_at`)
and of the settings that show in the output. Any process can therefore tell from one cheap
lookup of the shared counter, without rendering, whether a client's copy or its own cached copy
is current: a write through the API in one gunicorn worker bumps the counter, and every other
worker's next request sees a new validator and renders afresh. Each encoding of a body (gzip,
brotli) is compressed once, the first time a request asks for it (`Encodings`), and kept beside it:
a render after a write costs the write of the body alone, not its compressions too (they took two
thirds of a fresh profile feed's time, and a client that takes identity never needs them).

A document too big for memory (its body over a quarter of `max_bytes`: a long
section's full-text feed, a partner page) goes to a folder every worker shares
(feedsvc.web.render_spill) instead: this process keeps only its validator, and any worker reads
the one encoding a request needs from the file. So documents of any size are rendered once per
change, not on every request, and a big one no longer pushes dozens of small feeds out of memory.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Hashable, Mapping, TypeVar

import brotli
import deflate
from sqlalchemy.engine import Engine

from feedsvc import store
from feedsvc.web.render_spill import SpillDirectory

log = logging.getLogger(__name__)

# The levels every compressed body is made with, the app's and the static mirror's alike (the mirror
# stores the app's own bytes). Chosen on size vs time measured over real pages and feeds
# (docs/mirror-compression.md): gzip 9 costs 3x level 6 on feeds for 8 % less; brotli 8 costs 3 % in
# size for under a third of quality 9's time on feeds (9 was a fifth of the mirror's CPU for a write's
# fan-out), and in a window spanning the body pages cost well under a millisecond; brotli 11 takes
# 0.35-0.5 s a feed. gzip is libdeflate's (`gzipped`).
GZIP_LEVEL = 6
BROTLI_QUALITY = 8
BROTLI_MIN_WINDOW, BROTLI_DEFAULT_WINDOW = 10, 22   # brotli's lgwin range starts at 10; 22 is its default
# A document bigger than this share of the memory budget is kept on disk (when a spill folder is set).
SPILL_SHARE = 4
# What the memory budget is charged for remembering a spilled document (its validator, a dict slot).
SPILLED_ENTRY_BYTES = 256
PACKAGE = Path(__file__).resolve().parents[1]
# Everything in the package that shapes a document besides the store and the settings (the feed
# writers, page builders and templates): a deploy that changes any of it changes every ETag.
OUTPUT_SOURCES = ("render", "templates")


@lru_cache(maxsize=1)
def output_revision() -> str:
    """A digest of every file under OUTPUT_SOURCES, read once per process (create_app asks at start-up).

    A listed source that does not exist raises: a moved folder would otherwise silently stop
    changing ETags on deploy, and clients would keep old bytes.
    """
    digest = hashlib.blake2b(digest_size=12)
    for name in OUTPUT_SOURCES:
        root = PACKAGE / name
        if not root.exists():
            raise FileNotFoundError(f"output source {root} (render_cache.OUTPUT_SOURCES) does not exist")
        files = sorted(root.rglob("*")) if root.is_dir() else [root]
        for file in files:
            if file.is_file() and "__pycache__" not in file.parts:
                content = file.read_bytes()
                digest.update(f"{file.relative_to(PACKAGE).as_posix()}\0{len(content)}\0".encode() + content)
    # New levels or a new encoder, new compressed bytes.
    digest.update(f"libdeflate gzip {GZIP_LEVEL} br {BROTLI_QUALITY}".encode())
    return digest.hexdigest()


def validator(key: Hashable, version: Hashable, modified_at, salt: str = "") -> str:
    """The ETag value (unquoted) of a document: decided from the store's counter, before rendering."""
    material = repr((output_revision(), key, version, str(modified_at), salt)).encode("utf-8")
    return hashlib.blake2b(material, digest_size=12).hexdigest()


COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": lambda body: gzipped(body),
    "br": lambda body: brotli.compress(body, quality=BROTLI_QUALITY, lgwin=brotli_window(len(body))),
}


def compress(body: bytes) -> dict[str, bytes]:
    """Every encoding of a body, computed now."""
    return {"identity": body, **{name: squeeze(body) for name, squeeze in COMPRESSORS.items()}}


class Encodings(Mapping):
    """A body and its encodings, each compressed the first time it is asked for and then kept.

    Iterating (or `dict(...)`) compresses every encoding; `size` counts only the bytes held so far.
    `grown(self, n)` is told of the n bytes each compression adds (the cache charges them).
    """

    def __init__(self, body: bytes, grown: Callable[["Encodings", int], None] | None = None):
        self._bodies = {"identity": body}
        self._lock = threading.Lock()
        self.grown = grown

    def __getitem__(self, encoding: str) -> bytes:
        body = self._bodies.get(encoding)
        if body is not None:
            return body
        squeeze = COMPRESSORS[encoding]   # KeyError for an encoding we never make, as a dict would
        with self._lock:   # two requests for a new encoding at once: one compresses, the other waits for it
            body = self._bodies.get(encoding)
            if body is None:
                body = squeeze(self._bodies["identity"])
                self._bodies[encoding] = body
                if self.grown is not None:
                    self.grown(self, len(body))
        return body

    def __contains__(self, encoding) -> bool:   # without compressing, as Mapping's would
        return encoding == "identity" or encoding in COMPRESSORS

    def __iter__(self):
        return iter(("identity", *COMPRESSORS))

    def __len__(self) -> int:
        return 1 + len(COMPRESSORS)

    @property
    def size(self) -> int:
        return sum(len(b) for b in list(self._bodies.values()))


def gzipped(body: bytes) -> bytes:
    # libdeflate, not zlib: made for whole buffers, at level 6 it gives the size of zlib's level 6 in
    # 0.39x its time on pages and AMP pages (docs/mirror-compression.md), and every page of the full
    # mirror is compressed. Its header carries no mtime (RFC 1952 §2.3.1: 0, none available), so
    # the bytes are the same in every process, as the static mirror relies on.
    return bytes(deflate.gzip_compress(body, GZIP_LEVEL))   # it gives a bytearray; WSGI servers take bytes


def brotli_window(size: int) -> int:
    """The smallest window (log2 bytes) that spans the whole body, as brotli's own command-line tool
    chooses it (google/brotli c/tools/brotli.c: `while (BROTLI_MAX_BACKWARD_LIMIT(lgwin) < input_file_length)
    lgwin++`, where that limit is 2**lgwin - 16), up to the library's default of 22. Quality 9 sets up
    tables as big as its window: with the default window a 24 KiB page took 8.8 ms, with one spanning
    it 0.6 ms, for the same size (docs/mirror-compression.md)."""
    window = BROTLI_MIN_WINDOW
    while window < BROTLI_DEFAULT_WINDOW and (1 << window) - 16 < size:
        window += 1
    return window


@dataclass(frozen=True)
class Rendered:
    validator: str
    bodies: Mapping[str, bytes]   # Encodings in memory; render_spill.FileBodies when read from disk

    @property
    def size(self) -> int:
        held = getattr(self.bodies, "size", None)
        return held if held is not None else sum(len(b) for b in self.bodies.values())


@dataclass(frozen=True)
class Spilled:
    """What memory holds of a document kept on disk: the validator its file is named by."""
    validator: str
    size = SPILLED_ENTRY_BYTES


@dataclass
class RenderCache:
    """Rendered documents by key, least recently used dropped first beyond `max_bytes`; big ones in `spill`.

    stats: renders, hits (memory or disk), spill_hits (of those, read from disk), spilled (files written),
    evictions (from memory).
    """
    max_bytes: int = 64 * 1024 * 1024
    spill: SpillDirectory | None = None
    stats: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._entries: OrderedDict[Hashable, Rendered | Spilled] = OrderedDict()
        # What each entry was charged to `_bytes` (an entry in memory grows as its encodings are made).
        self._charged: dict[Hashable, int] = {}
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
            cached = self._current(key, validator) or self._from_disk(key, validator)
            if cached is not None:
                self.stats["hits"] += 1
                return cached
            self.stats["renders"] += 1
            rendered = Rendered(validator, Encodings(build(), lambda bodies, grew: self._grew(key, bodies, grew)))
            self._store(key, rendered)
        with self._lock:
            self._building.pop(key, None)
        return rendered

    def stale(self, key: Hashable) -> Rendered | None:
        """Whatever copy is held for `key`, current or not: for serving while the store is down."""
        with self._lock:
            entry = self._entries.get(key)
        return self._opened(key, entry) if isinstance(entry, Spilled) else entry

    def clear(self) -> None:
        """Forget every document this process holds in memory (spilled files stay for every worker)."""
        with self._lock:
            self._entries.clear()
            self._charged.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes

    def _current(self, key: Hashable, validator: str) -> Rendered | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.validator != validator:
                return None
            self._entries.move_to_end(key)
        return self._opened(key, entry) if isinstance(entry, Spilled) else entry

    def _from_disk(self, key: Hashable, validator: str) -> Rendered | None:
        """The document as another worker (or this one, before a clear) spilled it."""
        bodies = self.spill.open(validator) if self.spill is not None else None
        if bodies is None:
            return None
        self.stats["spill_hits"] += 1
        self._keep(key, Spilled(validator))
        return Rendered(validator, bodies)

    def _opened(self, key: Hashable, entry: Spilled) -> Rendered | None:
        bodies = self.spill.open(entry.validator) if self.spill is not None else None
        if bodies is None:   # evicted from disk by some worker: forget it, render again
            with self._lock:
                if self._entries.get(key) is entry:
                    del self._entries[key]
                    self._bytes -= self._charged.pop(key)
            return None
        self.stats["spill_hits"] += 1
        return Rendered(entry.validator, bodies)

    def _store(self, key: Hashable, rendered: Rendered) -> None:
        if self.spill is not None and rendered.size > self.max_bytes // SPILL_SHARE:
            if self.spill.write(rendered.validator, rendered.bodies):
                self.stats["spilled"] += 1
                self._keep(key, Spilled(rendered.validator))
                return
        if rendered.size > self.max_bytes:
            self._keep(key, None)  # bigger than the whole cache and not spilled: served once, not kept
            return
        self._keep(key, rendered)

    def _keep(self, key: Hashable, entry: Rendered | Spilled | None) -> None:
        with self._lock:
            if self._entries.pop(key, None) is not None:
                self._bytes -= self._charged.pop(key)
            if entry is not None:
                self._entries[key] = entry
                self._charged[key] = entry.size
                self._bytes += entry.size
            self._evict()

    def _grew(self, key: Hashable, bodies: Encodings, grew: int) -> None:
        """A held document made another encoding: charge it (or nothing, if the document left meanwhile)."""
        with self._lock:
            entry = self._entries.get(key)
            if isinstance(entry, Rendered) and entry.bodies is bodies:
                self._charged[key] += grew
                self._bytes += grew
                self._evict()

    def _evict(self) -> None:
        while self._bytes > self.max_bytes:
            dropped, _ = self._entries.popitem(last=False)
            self._bytes -= self._charged.pop(dropped)
            self.stats["evictions"] += 1
        # A spilled older state's file stays: a worker whose counters lag may still ask for it, and
        # untouched, it is the first the disk bound evicts.


T = TypeVar("T")


class ChangeSignal:
    """A file whose modification time every write through one of this machine's apps on a database
    moves: the other workers read it (one stat, about a microsecond) to learn that their held counters
    may be old. It only hastens what the recheck interval does anyway; if it cannot be written or
    read, nothing is lost but that haste."""

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def for_database(cls, folder: Path, database_url: str) -> "ChangeSignal":
        name = hashlib.blake2b(database_url.encode("utf-8"), digest_size=8).hexdigest()
        return cls(Path(folder) / f"store-changed-{name}")

    def stamp(self) -> int | None:
        try:
            return os.stat(self.path).st_mtime_ns
        except OSError:
            return None

    def send(self) -> None:
        # An explicit, strictly new nanosecond time: the kernel's own file times move in whole
        # clock ticks, so two writes within one tick would otherwise leave the same stamp.
        stamp = max(time.time_ns(), (self.stamp() or 0) + 1)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.touch()
            os.utime(self.path, ns=(stamp, stamp))
        except OSError as exc:
            log.warning("cannot signal a store change to the other workers through %s: %s", self.path, exc)


class CounterCache:
    """The store's change counters as this process last read them.

    With a `probe` (store.change_probe: SQLite, where every process of the deployment shares one
    file) the held counters are exact: each request asks the probe whether anything was committed
    since the counters were read (about 4 µs) and drops them all when so. A write through any
    process, a command such as `flask import-articles`, the scheduler or another worker is seen by
    the very next request, and a cached hit or 304 never touches the pool (the read and the connection
    checkout were about 250 µs, over three quarters of such a request).

    Without one (PostgreSQL) the counters are trusted for `recheck_seconds`. With 0 (the default) every
    request reads its scope's counter: one indexed read, exact. With a short interval
    (deploy/gunicorn.conf.py sets 0.5 s) a worker reads each counter at most that often. The price: a
    write through another machine is seen up to that long later. A write through this app clears the
    cache at once (`follow`), and through another worker of this machine as soon as the `signal` file
    says so: counters are then read exactly for `exact_after_signal` seconds (the signal is sent
    inside the write's transaction, just before its commit, so a read at once may still find the old
    counter). Feed readers poll every few minutes; half a second is far below what they can notice,
    but a write's fan-out to hundreds of feeds is measured against one second (bench row `fanout`).
    The static mirror's exporter always reads exactly (recheck 0).
    """

    def __init__(self, recheck_seconds: float = 0.0, signal: ChangeSignal | None = None,
                 exact_after_signal: float = 0.1, probe: Callable[[], int] | None = None):
        self.recheck_seconds, self.signal, self.exact_after_signal = recheck_seconds, signal, exact_after_signal
        self.probe = probe
        # Each key's value is of its own load's type (T of get), which no one dict type can say.
        self._held: dict[Hashable, tuple[Any, float]] = {}
        self._signal_seen: int | None = signal.stamp() if signal is not None else None
        self._exact_until = 0.0
        self._generation: int | None = None   # the probe's answer the held counters were read after
        self._lock = threading.Lock()

    def follow(self, engine: Engine) -> None:
        """Forget every counter when a write through `engine` (in this process) changes the store,
        and tell the other workers (`signal`)."""
        # Its own next request must see the write, not wait out the interval.
        store.changed.connect(self._store_changed, sender=engine)

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        if self.probe is not None:
            return self._probed(self.probe, key, load)
        if self.recheck_seconds <= 0:
            return load()
        now = time.monotonic()
        if self.signal is not None:
            stamp = self.signal.stamp()
            if stamp != self._signal_seen:
                self._signal_seen, self._exact_until = stamp, now + self.exact_after_signal
                self._held.clear()
        held = self._held.get(key)
        if held is not None and now - held[1] < self.recheck_seconds and now >= self._exact_until:
            return held[0]
        value = load()
        self._held[key] = (value, now)
        return value

    def _probed(self, probe: Callable[[], int], key: Hashable, load: Callable[[], T]) -> T:
        try:
            generation = probe()   # before the load: a commit after it moves the next answer
        except Exception:   # cannot tell what changed (the file is locked): read exactly, as without a cache
            return load()
        if generation != self._generation:
            with self._lock:
                if generation != self._generation:
                    self._held.clear()
                    self._generation = generation
        held = self._held.get(key)
        if held is not None:
            return held[0]
        value = load()
        with self._lock:
            # Kept only while no newer answer has cleared the cache: this value may predate that commit.
            if self._generation == generation:
                self._held[key] = (value, 0.0)
        return value

    def clear(self) -> None:
        with self._lock:
            self._held.clear()
            self._generation = None

    def _store_changed(self, _engine, **_change) -> None:
        self.clear()
        if self.signal is not None:
            self.signal.send()
            self._signal_seen = self.signal.stamp()   # its own write: already cleared
