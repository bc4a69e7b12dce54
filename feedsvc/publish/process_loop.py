"""A loop run by one daemon thread per process (the WebSub sender, the scheduler): started lazily,
restarted in a forked worker, woken early, stopped cleanly (tests stop every app's threads)."""
from __future__ import annotations

import os
import signal
import threading


class ProcessLoop:
    """Subclasses define `run()`, which loops until `self._stop` is set and waits on `self._wake`."""

    thread_name = "feedsvc-loop"

    def __init__(self):
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def run(self) -> None:
        raise NotImplementedError

    def wake(self) -> None:
        self._wake.set()

    def _running_here(self) -> bool:
        return self._pid == os.getpid() and self._thread is not None and self._thread.is_alive()

    def ensure_started(self) -> None:
        """Start the daemon thread once per process (a forked worker starts its own): call it per request,
        not at app creation, as threads do not survive gunicorn's fork of a preloaded app."""
        if self._running_here():
            return
        with self._lock:
            if self._running_here():
                return
            self._stop.clear()
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self.run, name=self.thread_name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the loop to end after the unit of work in hand, and wait for its thread."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def run_until_terminated(self) -> None:
        """Run the loop in the calling thread (a CLI command) until Ctrl-C or SIGTERM."""
        signal.signal(signal.SIGTERM, lambda *_: self.stop())
        try:
            self.run()
        except KeyboardInterrupt:
            pass
