"""Slow clients: 50 connections sending their requests slowly leave everyone else's latency alone.

The server is started as `make run` starts it (deploy/gunicorn.conf.py, its default workers), on a
free port and a temporary SQLite database that `make run` fills with the sample articles itself.
Half of the slow connections trickle a header line every 2 s and never end their request head;
the others send a PUT /api head announcing a 100 kB body and trickle that body a byte every 2 s,
half without a token (answered 401, the body drained by the server) and half with one (the app
reads the body). Whenever the server closes one, it reconnects at once, as an attacker would.
Meanwhile a health checker and a feed reader keep asking for /healthz and a cached feed on fresh
connections: every answer must be a 200, at the latency measured just before (p50 within 50 ms,
p99 within 0.5 s). Under gthread workers with one thread (the previous default) every probe waited
until it gave up. Loopback only; about 40 s; stops what it started by process group.
"""
from __future__ import annotations

import http.client
import os
import select
import signal
import socket
import statistics
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.support.apps import ROOT
from tests.support.servers import LIVE_AUTH, LIVE_TOKEN, free_port

pytestmark = pytest.mark.slow

SLOW_CONNECTIONS = 50
TRICKLE_SECONDS = 2
BASELINE_SECONDS = 5
PROBE_SECONDS = 15
PROBE_TIMEOUT = 10
PROBED_PATHS = ("/healthz", "/feeds/rss.xml")
HEAD_START = b"GET /healthz HTTP/1.1\r\nHost: news.example\r\n"
BODY_HEAD = ("PUT /api/articles/slow-client HTTP/1.1\r\nHost: news.example\r\nContent-Type: application/json\r\n"
             "Content-Length: 100000\r\n{auth}\r\n{{")
# The make variables a parent `make test` exports would reach the inner make (jobserver descriptors).
MAKE_VARIABLES = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")


@pytest.fixture(scope="module")
def make_run(tmp_path_factory):
    """The port of `make run` serving the sample articles; the venv is the suite's, so its install
    step is marked up to date (`-o`) and a test never runs pip."""
    folder = tmp_path_factory.mktemp("make-run")
    port = free_port()
    env = {name: value for name, value in os.environ.items()
           if name not in MAKE_VARIABLES and name != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({"FEEDSVC_DATABASE_URL": f"sqlite:///{folder / 'feedsvc.db'}", "FEEDSVC_SITE_URL": "http://news.example",
                "FEEDSVC_API_TOKENS": LIVE_TOKEN, "FEEDSVC_RATELIMIT_ENABLED": "0"})
    log = open(folder / "make-run.log", "wb")
    process = subprocess.Popen(["make", "--no-print-directory", "-o", ".venv/.run-installed", "run", f"PORT={port}"],
                               cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True)
    try:
        wait_until_serving(process, port, folder / "make-run.log")
        yield port
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
        log.close()


def wait_until_serving(process: subprocess.Popen, port: int, log_path: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"make run exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            if get(port, "/feeds/rss.xml", timeout=5)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"make run did not serve within {timeout} s:\n{log_path.read_text()[-3000:]}")


def get(port: int, path: str, timeout: float = PROBE_TIMEOUT) -> tuple[int | None, float]:
    """(status, seconds) of one GET on a fresh connection, as a health checker makes it; None if it failed."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Accept-Encoding": "gzip"})
        response = conn.getresponse()
        response.read()
        return response.status, time.monotonic() - started
    except OSError:
        return None, time.monotonic() - started
    finally:
        conn.close()


class Probes:
    """Latencies of GETs on PROBED_PATHS in turn, for `seconds`."""

    def __init__(self, port: int, seconds: float):
        self.statuses: list[int | None] = []
        self.latencies: list[float] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for path in PROBED_PATHS:
                status, latency = get(port, path)
                self.statuses.append(status)
                self.latencies.append(latency)
            time.sleep(0.05)

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]

    def __str__(self) -> str:
        return (f"{len(self.latencies)} requests, p50 {1000 * statistics.median(self.latencies):.1f} ms, "
                f"p99 {1000 * self.percentile(0.99):.1f} ms, max {1000 * max(self.latencies):.0f} ms, "
                f"failed {sum(status != 200 for status in self.statuses)}")


class SlowClient(threading.Thread):
    """One connection that sends a first part and then one more piece every TRICKLE_SECONDS; when the
    server answers or closes it, it reconnects and starts over."""

    def __init__(self, port: int, start: bytes, piece: bytes, stop: threading.Event):
        super().__init__(daemon=True)
        self.port, self.first, self.piece, self.stop = port, start, piece, stop
        self.connected = False
        self.connections = 0

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=PROBE_TIMEOUT) as sock:
                    sock.sendall(self.first)
                    self.connections += 1
                    self.connected = True
                    while not self.stop.wait(TRICKLE_SECONDS) and not self._ended_by_server(sock):
                        sock.sendall(self.piece)
            except OSError:
                pass
            self.connected = False

    @staticmethod
    def _ended_by_server(sock: socket.socket) -> bool:
        # Readable means an answer (401, 408, ...) or the server's FIN: this request is over either way.
        return bool(select.select([sock], [], [], 0)[0])


def slow_clients(port: int, stop: threading.Event) -> list[SlowClient]:
    unauthenticated = BODY_HEAD.format(auth="").encode()
    authenticated = BODY_HEAD.format(auth=f"Authorization: {LIVE_AUTH['Authorization']}\r\n").encode()
    clients = []
    for n in range(SLOW_CONNECTIONS):
        if n % 2 == 0:
            clients.append(SlowClient(port, HEAD_START, b"X-Trickle: %d\r\n" % n, stop))
        else:
            clients.append(SlowClient(port, authenticated if n % 4 == 1 else unauthenticated, b" ", stop))
    return clients


def listening_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on `port` (IPv4 and IPv6), from the kernel's tables."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, _, port_hex = fields[1].partition(":")
            if fields[3] == "0A" and int(port_hex, 16) == port:   # 0A: LISTEN
                packed = bytes.fromhex(address)
                # The kernel prints each 32-bit word in host (little-endian) order.
                words = b"".join(packed[i:i + 4][::-1] for i in range(0, len(packed), 4))
                family = socket.AF_INET if len(words) == 4 else socket.AF_INET6
                found.add(socket.inet_ntop(family, words))
    return found


def test_make_run_listens_on_loopback_only(make_run):
    assert listening_addresses(make_run) == {"127.0.0.1"}


def test_fifty_slow_clients_leave_health_checks_and_feeds_at_their_usual_latency(make_run):
    port = make_run
    get(port, "/feeds/rss.xml")   # the feed is rendered once; the probes measure cached answers
    baseline = Probes(port, BASELINE_SECONDS)
    stop = threading.Event()
    clients = slow_clients(port, stop)
    for client in clients:
        client.start()
    try:
        time.sleep(TRICKLE_SECONDS + 1)
        open_at_start = sum(client.connected for client in clients)
        during = Probes(port, PROBE_SECONDS)
        open_at_end = sum(client.connected for client in clients)
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=PROBE_TIMEOUT + TRICKLE_SECONDS)
    report = f"before: {baseline}; with {SLOW_CONNECTIONS} slow connections: {during}"
    print(report)
    # The slow connections were there all along: otherwise the probes would measure nothing.
    assert min(open_at_start, open_at_end) >= SLOW_CONNECTIONS * 0.9, (open_at_start, open_at_end)
    assert all(status == 200 for status in baseline.statuses), report
    assert all(status == 200 for status in during.statuses), report
    assert statistics.median(during.latencies) <= statistics.median(baseline.latencies) + 0.05, report
    assert during.percentile(0.99) <= baseline.percentile(0.99) + 0.5, report
