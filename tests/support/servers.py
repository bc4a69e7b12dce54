"""Real servers: a test app on a loopback port, gunicorn on 127.0.0.1, a TCP proxy that can cut the database.

Everything here listens on loopback only and is stopped by the test that started it (by process
id, never by name). `live_app` serves a test app from a thread, for browsers and HTTP clients;
`Gunicorn` runs the app from wsgi.py in its own process group so that a test can SIGKILL the
master and its workers at once; `TcpProxy` stands between the app and PostgreSQL so a test can
cut every connection and refuse new ones without touching the shared server.
"""
from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask
from sqlalchemy.engine import make_url
from werkzeug.serving import make_server

from tests.support.apps import AppFactory

ROOT = Path(__file__).resolve().parents[2]
# HTTP headers are Latin-1 on the wire: the live servers take an ASCII token of their own.
LIVE_TOKEN = "live-test-token-0123456789abcdef01"
LIVE_AUTH = {"Authorization": f"Bearer {LIVE_TOKEN}"}


# serve_forever() notices shutdown() only between polls, every 0.5 s by default: each stop of a test server
# cost its test up to half a second of waiting (18 s in one run of the fast lane). A poll is a select() call.
POLL_SECONDS = 0.02


def serve_in_thread(server) -> threading.Thread:
    """Starts `server.serve_forever()` (http.server, Werkzeug) in a daemon thread; stop it with `server.shutdown()`."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": POLL_SECONDS}, daemon=True,
                              name=f"serve-{server.server_port}")
    thread.start()
    return thread


@contextmanager
def serving(server):
    """`server` answering from a thread inside the block; stopped, joined and closed after it."""
    thread = serve_in_thread(server)
    try:
        yield server
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


@contextmanager
def live_app(folder: Path, **config) -> Iterator[tuple[str, Flask]]:
    """(origin, app): an app on a SQLite file in `folder`, answering on 127.0.0.1 from a thread, whose
    SITE_URL is its own origin (so the links, images and fonts a browser follows come from it).

    The port is bound before the app is built, since the app's configuration names it; `config` is
    more settings. The server, its thread and the app are stopped and closed on exit.
    """
    holder: dict[str, Flask] = {}
    server = make_server("127.0.0.1", 0, lambda environ, start: holder["app"](environ, start), threaded=True)
    origin = f"http://127.0.0.1:{server.server_port}"
    try:
        with AppFactory(f"sqlite:///{folder / 'feedsvc.db'}", instance=folder / "instance") as make_app:
            holder["app"] = make_app(SITE_URL=origin, **config)
            thread = serve_in_thread(server)
            try:
                yield origin, holder["app"]
            finally:
                server.shutdown()
                thread.join()
    finally:
        server.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """`gunicorn wsgi:app` on 127.0.0.1 with FEEDSVC_* settings from `env`; a context manager."""

    def __init__(self, database_url: str, *, workers: int = 2, threads: int = 4, env: dict | None = None,
                 log_path: Path | None = None, config: Path | None = None):
        """`config`: a gunicorn config file (deploy/gunicorn.conf.py) whose worker settings are then
        given by FEEDSVC_WORKERS / FEEDSVC_THREADS, as in production; only the address is ours."""
        self.port = free_port()
        self.workers, self.threads, self.config = workers, threads, config
        self.env = {**os.environ, "FEEDSVC_DATABASE_URL": database_url, "FEEDSVC_SITE_URL": "http://news.example",
                    "FEEDSVC_RATELIMIT_ENABLED": "0", "FEEDSVC_API_TOKENS": LIVE_TOKEN,
                    "FEEDSVC_WORKERS": str(workers), "FEEDSVC_THREADS": str(threads), **(env or {})}
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> "Gunicorn":
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        if self.config:
            settings = ["-c", str(self.config)]
        else:
            settings = ["--workers", str(self.workers), "--worker-class", "gthread", "--threads", str(self.threads),
                        "--graceful-timeout", "5", "--keep-alive", "30"]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", *settings, "--bind", f"127.0.0.1:{self.port}", "wsgi:app"],
            cwd=ROOT, env=self.env, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}; see {self.log_path}")
            try:
                if self.request("GET", "/feeds")[0] < 500 and len(self.worker_pids()) == self.workers:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer within {timeout} s")

    def request(self, method: str, path: str, body=None, headers: dict | None = None, timeout: float = 30):
        """(status, headers, body) of one request on a fresh connection."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body, ensure_ascii=False).encode("utf-8")
                headers = {"Content-Type": "application/json", **(headers or {})}
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def worker_pids(self) -> list[int]:
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        except OSError:
            return []
        return [int(pid) for pid in children]

    def kill9(self) -> None:
        """SIGKILL the master and every worker at once: no handler, no cleanup, no graceful shutdown."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill9()

    def __enter__(self) -> "Gunicorn":
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()


def rss_kb(pid: int) -> int:
    """Resident memory of a process in KiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; `cut()` drops every connection and refuses new ones.

    Between `cut()` and `restore()` the database looks as if its server had gone away: established
    connections are shut down under the client and new ones are refused. One thread per direction
    of each connection: a handful of pooled database connections, so threads are cheap enough.
    """

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = free_port()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None

    @classmethod
    def for_url(cls, database_url: str) -> tuple["TcpProxy", str]:
        """A proxy to the server `database_url` names, and the same URL pointed at the proxy."""
        url = make_url(database_url)
        proxy = cls(url.host or "127.0.0.1", url.port or 5432)
        return proxy, url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)

    def start(self) -> "TcpProxy":
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept_loop, args=(listener,), daemon=True, name="proxy-accept").start()
        return self

    restore = start

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = list(self._sockets), set()
        for sock in ([listener] if listener else []) + sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept() or recv()
            except OSError:
                pass
            sock.close()

    stop = cut

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._sockets |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._copy, args=(source, sink), daemon=True, name="proxy-copy").start()

    def _copy(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        with self._lock:
            self._sockets.discard(source)
            self._sockets.discard(sink)
