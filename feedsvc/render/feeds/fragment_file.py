"""Entry fragments kept in one SQLite file that every worker process of a machine shares.

Each worker's `Fragments` holds what it rendered in memory; a fragment another worker rendered is
found here instead of being written again (with two workers, about half a write's feeds land in the
worker that did not render their entries before). The file is a cache and nothing else: a fragment
is keyed by everything its bytes depend on (the render code's revision, format, article id and
version, options), so it is inserted once and never changed, and any trouble with the file (missing,
locked past a short wait, corrupt, a full disk) counts as a miss and the entry is rendered.

WAL mode lets readers run beside the one writer (https://www.sqlite.org/wal.html); commits are not
synced (`synchronous=OFF`): a crash may lose the last fragments, which are rendered again. The file is
held to about `max_bytes` of fragment bodies by deleting the oldest inserted first (a feed shows the
newest versions: those inserted last).
"""
from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Callable, Hashable

log = logging.getLogger(__name__)

BUSY_MS = 50   # a worker waits this long for another's write, then renders instead
# Another store's file in the same folder untouched this long is a past database's (a test's, a bench
# run's, one restored anew): deleted when a worker opens its own, so the folder does not grow by a file
# per database ever served.
STALE_SECONDS = 3600
SIDE_FILES = ("", "-wal", "-shm")
SCHEMA = """
CREATE TABLE IF NOT EXISTS fragment (n INTEGER PRIMARY KEY, key BLOB NOT NULL UNIQUE, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS held (one INTEGER PRIMARY KEY CHECK (one = 1), bytes INTEGER NOT NULL);
INSERT OR IGNORE INTO held VALUES (1, 0);
"""
# SQLite's default limit of host parameters in one statement is 32766 since 3.32; stay far below.
BATCH = 500


def file_key(key: Hashable) -> bytes:
    """A fixed-size name for a fragment key: its repr (strings, numbers, booleans and datetimes, whose
    reprs are stable across processes) hashed."""
    return hashlib.blake2b(repr(key).encode("utf-8"), digest_size=16).digest()


class FragmentFile:
    """get_all / put_all of fragments in a SQLite file shared between processes.

    `locate()` names the file, asked at the first use: version numbers are one store's own, so the
    file must be that store's (the caller names it after an identity the store keeps). One connection
    per process (opened lazily, again after a fork) behind a lock: gevent workers run many greenlets,
    and a connection each would hold as many file handles."""

    def __init__(self, locate: Callable[[], Path], max_bytes: int, cache_kib: int = 0):
        self.locate, self.max_bytes, self.cache_kib = locate, max_bytes, cache_kib
        self.path: Path | None = None
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0

    def get_all(self, keys: list[bytes]) -> list[bytes | None]:
        """The fragment of each key (file_key), None for those not kept or when the file cannot be read."""
        found: dict[bytes, bytes] = {}
        with self._lock:
            conn = self._connection()
            if conn is None:
                return [None] * len(keys)
            try:
                for at in range(0, len(keys), BATCH):
                    part = keys[at:at + BATCH]
                    found.update(conn.execute(
                        f"SELECT key, body FROM fragment WHERE key IN ({','.join('?' * len(part))})", part))
            except sqlite3.Error as exc:
                self._failed("read", exc)
                return [None] * len(keys)
        return [found.get(key) for key in keys]

    def put_all(self, items: list[tuple[bytes, bytes]]) -> None:
        """Keep (file_key, fragment) pairs; the oldest deleted past `max_bytes`. Failures only log."""
        items = [(key, body) for key, body in items if len(body) <= self.max_bytes]
        if not items:
            return
        with self._lock:
            conn = self._connection()
            if conn is None:
                return
            try:
                with conn:   # one transaction: one commit for a page's fragments
                    added = 0
                    for key, body in items:
                        if conn.execute("INSERT OR IGNORE INTO fragment (key, body) VALUES (?, ?)",
                                        (key, body)).rowcount:
                            added += len(body)
                    held = conn.execute("UPDATE held SET bytes = bytes + ? RETURNING bytes", (added,)).fetchone()[0]
                    if held > self.max_bytes:
                        self._evict(conn, held - self.max_bytes * 3 // 4)
            except sqlite3.Error as exc:
                self._failed("write", exc)

    @staticmethod
    def _evict(conn: sqlite3.Connection, excess: int) -> None:
        """Delete the oldest fragments holding at least `excess` bytes (down to 3/4 of the bound, so
        eviction runs once per quarter of the file rather than on every insert)."""
        freed, last = 0, None
        for n, size in conn.execute("SELECT n, length(body) FROM fragment ORDER BY n"):
            freed, last = freed + size, n
            if freed >= excess:
                break
        if last is not None:
            conn.execute("DELETE FROM fragment WHERE n <= ?", (last,))
            conn.execute("UPDATE held SET bytes = max(0, bytes - ?)", (freed,))

    def _connection(self) -> sqlite3.Connection | None:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        self._conn, self._pid = None, os.getpid()   # a parent's connection is not used after a fork
        try:
            if self.path is None:
                self.path = Path(self.locate())
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=BUSY_MS / 1000, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=OFF")
            if self.cache_kib > 0:   # negative: KiB, not pages (sqlite.org/pragma.html#pragma_cache_size)
                conn.execute(f"PRAGMA cache_size=-{int(self.cache_kib)}")
            conn.executescript("BEGIN;" + SCHEMA + "COMMIT;")
            _delete_stale(self.path)
        except Exception as exc:  # noqa: BLE001 - naming the file may need the store; rendering needs neither
            self._failed("open", exc)
            return None
        # `with conn` opens and commits a transaction again ("" is DEFERRED: the sqlite3 docs, not its stubs)
        conn.isolation_level = ""  # type: ignore[assignment]
        self._conn = conn
        return conn

    def _failed(self, what: str, exc: Exception) -> None:
        log.warning("fragment file %s: cannot %s, rendering instead: %s", self.path, what, exc)
        if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
            self._replace_corrupt()

    def _replace_corrupt(self) -> None:
        """A file that is not a fragment database is deleted (it holds nothing but a cache) and made anew
        at the next use."""
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        if self.path is None:
            return
        for suffix in SIDE_FILES:
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)


def _delete_stale(path: Path, now: float | None = None) -> None:
    """Delete the other fragment files beside `path` that nothing has used for STALE_SECONDS."""
    now = time.time() if now is None else now
    for other in path.parent.glob("*.sqlite"):
        if other == path:
            continue
        files = [Path(f"{other}{suffix}") for suffix in SIDE_FILES]
        try:
            if now - max(file.stat().st_mtime for file in files if file.exists()) > STALE_SECONDS:
                for file in files:
                    file.unlink(missing_ok=True)
        except (OSError, ValueError):   # deleted by another worker meanwhile, or not ours to delete
            continue
