"""Rendered documents too big for the memory cache, kept as files that every worker shares.

One file per document state, named by its validator (which already stands for the document's key,
the store's change counter and the settings: render_cache.validator), holding every encoding: a
JSON header line with each encoding's length, then the bodies one after another. A file is written
under a temporary name and renamed, so a reader sees a whole file or none, and any worker finds
what another rendered. Files live in a folder named after the code and the database they came from
(`namespace`), so a deploy never serves bytes the old code rendered. All folders under the root
together are held to `max_bytes` by deleting the least recently used files (a hit touches its
file's mtime); a temporary file left by a killed worker is deleted once it is old.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
import weakref
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

HEADER_MAX = 4096
TEMP_PREFIX = ".tmp-"
SUFFIX = ".doc"
# A rename finishes a write within seconds; an older temporary file belongs to a worker that died.
ABANDONED_TEMP_SECONDS = 600
CODE_FILES = ("*.py", "*.html", "*.css", "*.json")
PACKAGE = Path(__file__).resolve().parent.parent


def namespace(database_url: str) -> str:
    """A folder name that changes with the code (name, size and mtime of its files) or the database."""
    digest = hashlib.blake2b(database_url.encode("utf-8"), digest_size=8)
    digest.update(_code_stamp().encode("utf-8"))
    return digest.hexdigest()


@lru_cache(maxsize=1)
def _code_stamp() -> str:
    """The package's files (name, size, mtime), listed once per process: the code a process runs does not
    change under it, and the walk was a third of an app's build (measured in the test suite's builds)."""
    return "\n".join(f"{file.relative_to(PACKAGE)}|{file.stat().st_size}|{file.stat().st_mtime_ns}"
                     for pattern in CODE_FILES for file in sorted(PACKAGE.rglob(pattern)))


class FileBodies(Mapping):
    """The encodings of one spilled document, each read from the open file only when asked for.

    The file stays readable while this object lives even if another worker deletes it meanwhile.
    """

    def __init__(self, fd: int, spans: dict[str, tuple[int, int]]):
        self._fd, self._spans = fd, spans
        self._close = weakref.finalize(self, os.close, fd)

    def __getitem__(self, encoding: str) -> bytes:
        offset, length = self._spans[encoding]
        chunks, done = [], 0
        while done < length:
            chunk = os.pread(self._fd, length - done, offset + done)
            if not chunk:
                raise OSError(f"spilled document ended {length - done} bytes early in its {encoding} body")
            chunks.append(chunk)
            done += len(chunk)
        return b"".join(chunks)

    def __iter__(self):
        return iter(self._spans)

    def __len__(self) -> int:
        return len(self._spans)

    def close(self) -> None:
        self._close()


class SpillDirectory:
    """Files of rendered documents under `root`/`space`, all of `root` held to `max_bytes`."""

    def __init__(self, root: Path, space: str, max_bytes: int):
        self.root, self.folder, self.max_bytes = Path(root), Path(root) / space, max_bytes

    def open(self, validator: str) -> FileBodies | None:
        """The bodies of the document at `validator`, if some worker has written them; else None."""
        path = self._path(validator)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read spilled document %s: %s", path, exc)
            return None
        try:
            spans = self._spans(fd, validator)
            os.utime(fd)   # recently used: evicted last
        except (OSError, ValueError) as exc:
            os.close(fd)
            log.warning("ignoring spilled document %s: %s", path, exc)
            return None
        return FileBodies(fd, spans)

    def write(self, validator: str, bodies: Mapping[str, bytes]) -> bool:
        """Keep a document's encodings as one file, atomically; False when it cannot or does not fit."""
        lengths = {encoding: len(body) for encoding, body in bodies.items()}
        header = json.dumps({"validator": validator, "lengths": lengths}).encode("utf-8") + b"\n"
        if len(header) + sum(lengths.values()) > self.max_bytes:
            return False
        temp = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.folder, prefix=TEMP_PREFIX, delete=False) as out:
                temp = out.name
                out.write(header)
                for body in bodies.values():
                    out.write(body)
            os.replace(temp, self._path(validator))
        except OSError as exc:   # a full or read-only disk costs renders, never an answer
            log.warning("cannot spill a rendered document to %s: %s", self.folder, exc)
            if temp:
                Path(temp).unlink(missing_ok=True)
            return False
        self.evict()
        return True

    def evict(self) -> None:
        """Delete least recently used files until those under the root fit `max_bytes`."""
        files, total = [], 0
        now = time.time()
        for path in self.root.glob("*/*"):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue   # deleted by another worker meanwhile
            if path.name.startswith(TEMP_PREFIX):
                if now - stat.st_mtime > ABANDONED_TEMP_SECONDS:
                    path.unlink(missing_ok=True)
                continue
            if path.suffix == SUFFIX:
                files.append((stat.st_mtime, stat.st_size, path))
                total += stat.st_size
        for _mtime, size, path in sorted(files):
            if total <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size

    @property
    def bytes(self) -> int:
        """Bytes of finished files under the root, in every namespace."""
        return sum(path.stat().st_size for path in self.root.glob(f"*/*{SUFFIX}"))

    def _path(self, validator: str) -> Path:
        return self.folder / f"{validator}{SUFFIX}"

    @staticmethod
    def _spans(fd: int, validator: str) -> dict[str, tuple[int, int]]:
        head = os.pread(fd, HEADER_MAX, 0)
        line, newline, _ = head.partition(b"\n")
        if not newline:
            raise ValueError("no header line")
        header = json.loads(line)
        if header.get("validator") != validator:
            raise ValueError(f"holds validator {header.get('validator')!r}, not {validator!r}")
        spans, offset = {}, len(line) + 1
        for encoding, length in header["lengths"].items():
            spans[encoding] = (offset, length)
            offset += length
        if os.fstat(fd).st_size != offset:
            raise ValueError(f"is {os.fstat(fd).st_size} bytes, its header says {offset}")
        return spans
