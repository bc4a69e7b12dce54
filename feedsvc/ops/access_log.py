"""The access log: one JSON line per request (logger "feedsvc.access"), written to stderr in batches.

Why batches: under gunicorn's gthread worker a request thread shares the GIL with the worker's
main thread, and every write(2) a request makes hands the GIL over and waits to get it back.
One write per request took a cached feed from 1.24x to 0.88x of a minimal Flask app that logs
nothing (`make bench`, serve rows). So, as nginx's `access_log ... buffer= flush=` does, lines wait
in memory until BATCH_CHARS of them are waiting or ACCESS_LOG_FLUSH_MS has passed, and are written
at exit (logging.shutdown flushes every handler). A worker killed outright (SIGKILL, OOM) loses at
most that last batch. ACCESS_LOG_FLUSH_MS = 0 writes each line at once.

The line carries method, path, route class, status, bytes, duration, encoding, and the client's
User-Agent and Referer (cut to HEADER_CHARS): never another header, never a partner key (partners.redact
removes keys from /partner/<key>/... paths and wherever else they appear) and never the value of a
query parameter that looks like a secret (key, token, secret, password, signature, auth) in a referrer.
"""
from __future__ import annotations

import functools
import logging
import os
import re
import sys
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone

import orjson

logger = logging.getLogger("feedsvc.access")
BATCH_CHARS = 64 * 1024
HEADER_CHARS = 512   # of a User-Agent or Referer: enough for any real one, bounded for a hostile one
# name=value in a query string whose name says it is a secret; the value goes, the name stays
SECRET_PARAMETER = re.compile(r"([?&;][^=&;#\s]*(?:key|token|secret|passw|sig|auth)[^=&;#\s]*=)[^&;#\s]*",
                              re.IGNORECASE)


class BatchingStreamHandler(logging.StreamHandler):
    """A StreamHandler that writes what it is given in batches; see the module's docstring."""

    def __init__(self, stream, flush_seconds: float):
        super().__init__(stream)
        self.flush_seconds = flush_seconds
        self.pending: list[str] = []
        self.pending_chars = 0
        self.flusher_started = False   # in this process: a forked child starts its own
        os.register_at_fork(after_in_child=self._forget_parents_lines)

    def emit(self, record) -> None:   # called with self.lock held (Handler.handle)
        if self.flush_seconds <= 0:
            return super().emit(record)
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self._keep(line)

    def take(self, line: str) -> None:
        """A line as emit() would have formatted it, handed over without a LogRecord (see write())."""
        # typeshed types Handler.lock Optional (createLock may be overridden); StreamHandler's __init__ sets it.
        with self.lock:  # type: ignore[union-attr]
            if self.flush_seconds <= 0:
                self._write(line + self.terminator)
            else:
                self._keep(line)

    def _keep(self, line: str) -> None:
        line += self.terminator
        self.pending.append(line)
        self.pending_chars += len(line)
        if self.pending_chars >= BATCH_CHARS:
            self._write_pending()
        elif not self.flusher_started:
            self._start_flusher()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr] # set by StreamHandler's __init__, as in take()
            self._write_pending()
            super().flush()

    def _write_pending(self) -> None:
        if not self.pending:
            return
        text = "".join(self.pending)
        self.pending.clear()
        self.pending_chars = 0
        self._write(text)

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):   # stderr closed or gone: there is nowhere left to log to
            pass

    def _start_flusher(self) -> None:
        self.flusher_started = True
        threading.Thread(target=self._flush_forever, name="feedsvc-access-log", daemon=True).start()

    def _flush_forever(self) -> None:
        while True:
            time.sleep(self.flush_seconds)
            self.flush()

    def _forget_parents_lines(self) -> None:
        # The parent writes its own lines; a forked child writing the copies would log them twice.
        self.pending.clear()
        self.pending_chars = 0
        self.flusher_started = False   # threads do not survive a fork


def install(flush_ms: int) -> None:
    """Send the access logger's lines to stderr, whatever the root logger is set up to do (once per process)."""
    if not logger.handlers:
        handler = BatchingStreamHandler(sys.stderr, flush_ms / 1000)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


@contextmanager
def silenced():
    """No access-log lines while the block runs: a command that answers itself through the app's test
    client (`flask validate --all`) prints its results, not a line per document it asked for."""
    was_disabled = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = was_disabled


def redacted_header(value: str | None) -> str | None:
    """A User-Agent or Referer as logged: cut short, without partner keys or secret query values."""
    if not value:
        return None
    return _redacted(value[:HEADER_CHARS])


# Pollers send the same few User-Agents over and over: the two substitutions took 3 µs a line.
@functools.lru_cache(maxsize=256)
def _redacted(value: str) -> str:
    return SECRET_PARAMETER.sub(r"\g<1>[redacted]", _partners().redact(value))


@functools.cache
def _partners():
    # Imported late: partners reaches the web package, which imports this module.
    from feedsvc.ops import partners
    return partners


def write(method: str, path: str, route: str, status: int, length: int | None, elapsed: float,
          encoding: str, conditional: bool, remote: str | None, user_agent: str | None = None,
          referrer: str | None = None) -> None:
    """Log one request: enough to follow it, nothing secret (no partner key, no token)."""
    if "/partner/" in path or "fsk_" in path:
        path = _partners().redact(path)
    line = orjson.dumps({
        "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        "method": method, "path": path, "route": route, "status": status, "bytes": length,
        "ms": round(elapsed * 1000, 3), "encoding": encoding, "conditional": conditional, "remote": remote,
        "user_agent": redacted_header(user_agent), "referrer": redacted_header(referrer),
        "pid": os.getpid(),   # which gunicorn worker answered
    }).decode()
    handler = _installed_alone()
    if handler is None:
        logger.info(line)
    else:
        # What logger.info would do with it here (the logger's key filter, then the one handler), without
        # building a LogRecord and finding its caller: 9 µs of a 17 µs line, and a replayed feed or 304
        # costs 60-70 µs in all (in process, under gevent, 2026-12-07).
        handler.take(_partners().redact(line))


def _installed_alone() -> BatchingStreamHandler | None:
    """install()'s handler when the logger is as install() and the key filter left it, else None."""
    handlers = logger.handlers
    if len(handlers) != 1 or not isinstance(handlers[0], BatchingStreamHandler) or handlers[0].filters:
        return None
    if logger.disabled or not logger.isEnabledFor(logging.INFO):
        return None
    redact_keys = _partners().RedactKeys
    return handlers[0] if all(type(f) is redact_keys for f in logger.filters) else None
