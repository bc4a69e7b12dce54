"""Real servers on 127.0.0.1 for the benchmark and the tests: nginx in a temporary prefix, gunicorn.

Both start on an ephemeral port, wait until they answer, and stop on exit (context managers), so a
failed run leaves no process behind. nginx runs deploy/nginx/feedsvc.conf itself, with only the
listen address, the mirror root and the app's address replaced.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parent.parent
SITE_CONF = ROOT / "deploy" / "nginx" / "feedsvc.conf"
SEVERAL_CONF = ROOT / "deploy" / "nginx" / "upstream-several.conf"
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"
BROTLI_MODULE = Path("/usr/lib/nginx/modules/ngx_http_brotli_static_module.so")
NGINX = "/usr/sbin/nginx"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


UPSTREAM_BLOCK = re.compile(r"(?ms)^upstream feedsvc_app \{.*?^\}")


def several_upstreams(ports: Sequence[int]) -> str:
    """deploy/nginx/upstream-several.conf's upstream block, one server line per port on 127.0.0.1."""
    block = UPSTREAM_BLOCK.search(SEVERAL_CONF.read_text("utf-8"))
    assert block is not None, f"{SEVERAL_CONF} has no upstream feedsvc_app block"
    example = re.search(r"(?m)^\s*server \S+( [^;]*)?;$", block.group(0))
    assert example is not None, f"{SEVERAL_CONF} names no server"
    servers = "\n".join(f"    server 127.0.0.1:{port}{example.group(1) or ''};" for port in ports)
    without = re.sub(r"(?m)^\s*server \S+( [^;]*)?;\n", "", block.group(0))
    return without.replace("upstream feedsvc_app {\n", f"upstream feedsvc_app {{\n{servers}\n", 1)


def brotli_available() -> bool:
    return BROTLI_MODULE.exists()


def site_config(mirror_root: Path, port: int, app_port: int | Sequence[int]) -> str:
    """deploy/nginx/feedsvc.conf for this run: local port, mirror folder, app address; with several app
    ports, its upstream block is deploy/nginx/upstream-several.conf's with their addresses."""
    text = SITE_CONF.read_text("utf-8")
    text = re.sub(r"(?m)^(\s*)listen 80;", rf"\1listen 127.0.0.1:{port};", text)
    text = re.sub(r"(?m)^(\s*)root /srv/feedsvc/mirror;", rf"\1root {mirror_root};", text)
    if isinstance(app_port, int):
        text = re.sub(r"(?m)^(\s*)server 127\.0\.0\.1:8000;", rf"\1server 127.0.0.1:{app_port};", text)
    else:
        text = UPSTREAM_BLOCK.sub(lambda _: several_upstreams(app_port), text, count=1)
    if not brotli_available():
        text = re.sub(r"(?m)^\s*brotli_static (?:on|off);\n", "", text)
    return text


class _Server:
    """A server process of ours on 127.0.0.1:port; stopped gracefully, killed if it will not stop."""
    port: int
    process: subprocess.Popen | None = None
    stop_signal = signal.SIGTERM

    def start(self):
        raise NotImplementedError

    def stop(self, grace: float = 20) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)   # its own session: master and workers
                self.process.wait()
        self.process = None

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class Nginx(_Server):
    """nginx serving a mirror folder through the shipped site config, in its own prefix."""
    stop_signal = signal.SIGQUIT   # graceful: finish what is in flight

    def __init__(self, mirror_root: Path, workdir: Path, *, app_port: int | Sequence[int] = 9, workers: int = 1):
        self.mirror_root, self.workdir = Path(mirror_root).resolve(), Path(workdir)
        self.app_port, self.workers = app_port, workers
        self.port = free_port()

    def config(self) -> str:
        load = f"load_module {BROTLI_MODULE};\n" if brotli_available() else ""
        if os.geteuid() == 0:
            load += "user root;\n"  # else workers run as nobody and cannot read a private temp folder
        temp = self.workdir / "temp"
        return (f"{load}daemon off;\nworker_processes {self.workers};\npid {self.workdir / 'nginx.pid'};\n"
                f"error_log {self.workdir / 'error.log'} warn;\n"
                "events { worker_connections 4096; }\n"
                "http {\n"
                f"  client_body_temp_path {temp}/body; proxy_temp_path {temp}/proxy;\n"
                f"  fastcgi_temp_path {temp}/fastcgi; uwsgi_temp_path {temp}/uwsgi; scgi_temp_path {temp}/scgi;\n"
                "  access_log off;\n"
                f"{site_config(self.mirror_root, self.port, self.app_port)}\n}}\n")

    def start(self) -> "Nginx":
        (self.workdir / "temp").mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "nginx.conf"
        conf.write_text(self.config(), "utf-8")
        self.process = subprocess.Popen([NGINX, "-p", str(self.workdir), "-c", str(conf),
                                         "-e", str(self.workdir / "error.log")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
        try:
            wait_for_port(self.port, process=self.process)
        except Exception as exc:
            self.stop()
            raise RuntimeError(f"nginx did not start: {self.errors()}") from exc
        return self

    def errors(self) -> str:
        log = self.workdir / "error.log"
        return log.read_text("utf-8", "replace")[-2000:] if log.exists() else ""



class Gunicorn(_Server):
    """gunicorn with deploy/gunicorn.conf.py (or other settings) on an ephemeral port."""

    def __init__(self, app: str = "wsgi:app", *, env: dict | None = None, workers: int = 2,
                 args: tuple[str, ...] = (), log_path: Path | None = None, cwd: Path = ROOT):
        self.app, self.workers, self.args, self.cwd = app, workers, args, cwd
        self.port = free_port()
        self.env = {**os.environ, **(env or {}), "FEEDSVC_BIND": f"127.0.0.1:{self.port}",
                    "FEEDSVC_WORKERS": str(workers)}
        self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), self.env.get("PYTHONPATH")]))
        self.log_path = log_path

    def start(self, timeout: float = 60.0) -> "Gunicorn":
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), *self.args, self.app],
            cwd=self.cwd, env=self.env, stdout=log, stderr=log, start_new_session=True)
        if log is not subprocess.DEVNULL:
            log.close()
        wait_for_port(self.port, timeout, self.process)
        self.wait_for_workers(timeout)
        return self

    def worker_pids(self) -> list[int]:
        if self.process is None:
            return []
        pids = []
        for task in Path(f"/proc/{self.process.pid}/task").glob("*"):
            try:
                pids += [int(p) for p in (task / "children").read_text().split()]
            except OSError:
                continue
        return sorted(pids)

    def wait_for_workers(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.worker_pids()) < self.workers:
            if time.monotonic() > deadline:
                raise TimeoutError(f"gunicorn started {len(self.worker_pids())} of {self.workers} workers")
            time.sleep(0.05)



def shared_and_private_kib(pid: int) -> tuple[float, float]:
    """(PSS, USS) of a process in KiB from /proc/PID/smaps_rollup: its proportional share of the pages
    it shares (with the master and the other workers) and the pages only it holds (private clean + dirty)."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("Pss", "Private_Clean", "Private_Dirty"):
            fields[name] = float(rest.split()[0])
    return fields["Pss"], fields["Private_Clean"] + fields["Private_Dirty"]


def rss_kib(pid: int) -> float:
    """Resident set size of a process in KiB (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return float(line.split()[1])
    raise LookupError(f"no VmRSS for {pid}")
