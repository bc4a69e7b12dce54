"""Several app machines on one host: two gunicorn masters behind nginx, one PostgreSQL through PgBouncer, one Redis.

What deploy/SCALING.md describes, started from a temporary folder for the `multi-node` bench row and
tests/test_multi_node.py: a PostgreSQL database of its own (created on the server BENCH/TEST URL names,
dropped afterwards), PgBouncer in transaction mode in front of it (Debian's package, run from the
folder on a free port), each app instance a separate `gunicorn -c deploy/gunicorn.conf.py` with its
own workers, and nginx with deploy/nginx/feedsvc.conf whose upstream block is upstream-several.conf.
Rate-limit counters go to the given Redis under a prefix of this run's own.
"""
from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Callable, Iterator

import feedparser
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from feedsvc import store

from .servers import Gunicorn, Nginx, _Server, free_port, wait_for_port

PGBOUNCER = "/usr/sbin/pgbouncer"
TOKEN = "cluster-token-0123456789abcdef0123456"


def pgbouncer_available() -> bool:
    return Path(PGBOUNCER).exists()


@contextmanager
def database_of_its_own(server_url: str) -> Iterator[str]:
    """The URL of a new, empty database on the server `server_url` names; dropped on exit.

    A database rather than a schema: PgBouncer refuses the `options` startup parameter that would set
    a schema's search_path, and names databases, not schemas, in its [databases] section."""
    name = f"feedsvc_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class PgBouncer(_Server):
    """PgBouncer in transaction mode before one PostgreSQL database, configured in `workdir`.

    Two names: `feedsvc` with `pool_size` server connections, and `single` with one, on which
    prepared statements of two clients meet (the test shows why they are turned off)."""
    stop_signal = signal.SIGTERM   # at once: it is stopped after every app process is gone

    def __init__(self, database_url: str, workdir: Path, *, pool_size: int):
        self.target, self.workdir, self.pool_size = make_url(database_url), Path(workdir), pool_size
        self.port = free_port()

    def config(self) -> str:
        target = self.target
        server = f"host={target.host or '127.0.0.1'} port={target.port or 5432} dbname={target.database}"
        server += f" user={target.username}" + (f" password={target.password}" if target.password else "")
        runs_as = "user = nobody\n" if os.geteuid() == 0 else ""   # it refuses to run as root
        return ("[databases]\n"
                f"feedsvc = {server} pool_size={self.pool_size}\n"
                f"single = {server} pool_size=1\n"
                "[pgbouncer]\n"
                f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
                # `any`: the user named in [databases] logs in whatever the client says; loopback only.
                "auth_type = any\npool_mode = transaction\n"
                "max_client_conn = 1000\n"
                f"{runs_as}")   # it logs to stderr, a file opened before it drops root

    def start(self) -> "PgBouncer":
        self.workdir.mkdir(parents=True, exist_ok=True)
        ini = self.workdir / "pgbouncer.ini"
        ini.write_text(self.config(), "utf-8")
        with open(self.workdir / "pgbouncer.log", "ab") as log:
            self.process = subprocess.Popen([PGBOUNCER, str(ini)], stdout=log, stderr=log, start_new_session=True)
        try:
            wait_for_port(self.port, process=self.process)
        except Exception as exc:
            self.stop()
            log = self.workdir / "pgbouncer.log"
            raise RuntimeError(f"pgbouncer did not start: {log.read_text()[-2000:] if log.exists() else ''}") from exc
        return self

    def database_url(self, name: str = "feedsvc") -> str:
        return make_url(f"postgresql+psycopg://app@127.0.0.1:{self.port}/{name}").render_as_string(hide_password=False)

    def admin_conninfo(self) -> str:
        """libpq conninfo of PgBouncer's console (SHOW POOLS, SHOW CLIENTS): `any` lets every user in."""
        return f"host=127.0.0.1 port={self.port} dbname=pgbouncer user=admin"


class Cluster:
    """Every server of the setup, started in order by `start()` and stopped by `stop()` (a context manager).

    `instances` gunicorn masters with `workers` each; the app's pool per process is `pool_size` +
    `max_overflow`, PgBouncer keeps `server_pool` connections to PostgreSQL in all."""

    def __init__(self, workdir: Path, postgresql_url: str, redis_url: str, *, instances: int = 2, workers: int = 2,
                 pool_size: int = 2, max_overflow: int = 2, server_pool: int = 4, env: dict | None = None):
        self.workdir, self.postgresql_url, self.redis_url = Path(workdir), postgresql_url, redis_url
        self.instances, self.workers = instances, workers
        self.pool_size, self.max_overflow, self.server_pool = pool_size, max_overflow, server_pool
        self.extra_env = env or {}
        self.key_prefix = f"feedsvc-cluster-{uuid.uuid4().hex[:8]}"
        self.apps: list[Gunicorn] = []
        self._stack = ExitStack()

    def start(self) -> "Cluster":
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        stack, logs = self._stack, self.workdir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.direct_url = stack.enter_context(database_of_its_own(self.postgresql_url))
        engine = store.make_engine(self.direct_url)
        try:
            store.migrate(engine)   # once, before the instances start (each would race the others)
        finally:
            engine.dispose()
        self.pgbouncer = stack.enter_context(PgBouncer(self.direct_url, self.workdir / "pgbouncer",
                                                       pool_size=self.server_pool))
        for number in range(self.instances):
            app = Gunicorn("wsgi:app", env=self.app_env(number), workers=self.workers,
                           log_path=logs / f"app-{number}.log")
            self.apps.append(app.start())
            stack.callback(app.stop, 5)
        mirror = self.workdir / "mirror"   # empty: nginx passes every request to the app servers
        mirror.mkdir(exist_ok=True)
        self.nginx = stack.enter_context(Nginx(mirror, self.workdir / "nginx", app_port=[a.port for a in self.apps]))

    def app_env(self, number: int) -> dict:
        return {
            "FEEDSVC_DATABASE_URL": self.pgbouncer.database_url(),
            "FEEDSVC_DATABASE_PREPARED_STATEMENTS": "0",
            "FEEDSVC_DATABASE_POOL_SIZE": str(self.pool_size),
            "FEEDSVC_DATABASE_MAX_OVERFLOW": str(self.max_overflow),
            "FEEDSVC_RATELIMIT_STORAGE": self.redis_url,
            "FEEDSVC_RATELIMIT_KEY_PREFIX": self.key_prefix,
            "FEEDSVC_SITE_URL": "http://news.example",
            "FEEDSVC_API_TOKENS": TOKEN,
            "FEEDSVC_TRUSTED_PROXY_HOPS": "1",
            "FEEDSVC_ACCESS_LOG": "0",
            "FEEDSVC_RENDER_SPILL_DIR": str(self.workdir / f"spill-{number}"),   # a machine's own disk
            "PROMETHEUS_MULTIPROC_DIR": "",   # each master makes a folder of its own
            **self.extra_env,
        }

    def most_app_connections(self) -> int:
        """The most connections to PgBouncer the app processes may hold (deploy/SCALING.md's formula)."""
        return self.instances * self.workers * (self.pool_size + self.max_overflow)

    def stop(self) -> None:
        self._stack.close()

    def __enter__(self) -> "Cluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def request(port: int, method: str, path: str, *, body: dict | None = None, headers: dict | None = None):
    """(status, body) of one request on a fresh connection to 127.0.0.1:port."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8") if body is not None else None
        sent = {"Content-Type": "application/json"} if data is not None else {}
        connection.request(method, path, body=data, headers={**sent, **(headers or {})})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def as_client(address: str) -> dict:
    """Headers of a request nginx passed on for `address` (the instances trust one proxy hop)."""
    return {"X-Forwarded-For": address}


def put(port: int, record: dict, token: str = TOKEN, address: str = "10.20.0.1") -> int:
    status, _ = request(port, "PUT", f"/api/articles/{record['id']}", body=record,
                        headers={"Authorization": f"Bearer {token}", **as_client(address)})
    return status


def seen_by_the_other(cluster: Cluster, record: dict, timeout: float = 30.0) -> float:
    """Seconds from the API's answer to a write of `record` through the first instance until the
    second one's site RSS lists it (by guid, read with feedparser)."""
    writer, reader = cluster.apps[:2]
    status = put(writer.port, record)
    if status not in (200, 201):
        raise RuntimeError(f"PUT {record['id']}: {status}")
    written = time.perf_counter()
    while time.perf_counter() - written < timeout:
        status, body = request(reader.port, "GET", "/feeds/rss.xml", headers=as_client("10.20.0.2"))
        if status != 200:
            raise RuntimeError(f"GET /feeds/rss.xml from the other instance: {status}")
        if any(entry.id.endswith(f"articles/{record['id']}") for entry in feedparser.parse(body).entries):
            return time.perf_counter() - written
        time.sleep(0.01)
    raise TimeoutError(f"{record['id']} not served by the other instance after {timeout} s")


POLLED = ["/feeds/rss.xml", "/feeds/atom.xml", "/feeds/feed.json", "/feeds.opml", "/sitemap.xml"]


def poll_while(cluster: Cluster, stop_one: Callable[[Gunicorn], None], readers: int = 6) -> tuple[Counter, int]:
    """What `readers` polling through nginx got (a status, or the error that cut an answer) while the
    first instance was stopped by `stop_one` and restarted 3 s later, and how many requests those 3 s saw."""
    outcomes: Counter = Counter()
    stop = threading.Event()

    def poll(offset: int) -> None:
        k = offset
        while not stop.is_set():
            try:
                outcome: int | str = request(cluster.nginx.port, "GET", POLLED[k % len(POLLED)])[0]
            except (OSError, http.client.HTTPException) as exc:
                outcome = type(exc).__name__
            outcomes[outcome] += 1
            k += 1
            time.sleep(0.01)

    pollers = [threading.Thread(target=poll, args=(n,)) for n in range(readers)]
    for poller in pollers:
        poller.start()
    try:
        time.sleep(1.5)
        before = sum(outcomes.values())
        victim = cluster.apps[0]
        stop_one(victim)
        time.sleep(3)
        during = sum(outcomes.values()) - before
        victim.start()   # back, as a supervisor would bring it; nginx tries it again after fail_timeout
        time.sleep(1)
    finally:
        stop.set()
        for poller in pollers:
            poller.join()
    return outcomes, during


def kill9(instance: Gunicorn) -> None:
    """A crash: the master and every worker at once, mid-request."""
    assert instance.process is not None
    os.killpg(instance.process.pid, signal.SIGKILL)
    instance.process.wait()


def server_errors(outcomes: Counter) -> int:
    return sum(n for outcome, n in outcomes.items() if isinstance(outcome, int) and outcome >= 500)
