"""Apps on every configured database backend, built by one factory that also closes them."""
from __future__ import annotations

import functools
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine

from feedsvc import close_app, create_app, store
from feedsvc.web import db

ROOT = Path(__file__).resolve().parents[2]
ARTICLES = ROOT / "articles"
SITE_URL = "http://news.example"
API_TOKEN = "test-token-एक-0123456789abcdef0123"  # 32 characters at least (config.MIN_TOKEN_LENGTH)

# SQLite always; PostgreSQL when FEEDSVC_TEST_POSTGRESQL_URL names a server (CI sets it, see .ci/run).
POSTGRESQL_URL = os.environ.get("FEEDSVC_TEST_POSTGRESQL_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRESQL_URL else [])


@contextmanager
def fresh_database(kind: str, folder: Path, *, template: MigratedTemplate | None = None) -> Iterator[str]:
    """The URL of a database, dropped afterwards: a SQLite file, or a PostgreSQL schema of its own.

    Empty, or with `template` a copy of a database the migrations built (as `store.migrate` leaves it).
    """
    if kind == "sqlite":
        path = folder / "feedsvc.db"
        if template:
            shutil.copyfile(template.sqlite_file, path)
        yield f"sqlite:///{path}"
        return
    assert POSTGRESQL_URL, "no PostgreSQL server configured (FEEDSVC_TEST_POSTGRESQL_URL)"
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with admin_engine().begin() as conn:
        conn.execute(text("SET LOCAL synchronous_commit TO OFF"))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        if template:
            template.replay_postgresql(conn, schema)
    separator = "&" if "?" in POSTGRESQL_URL else "?"
    try:
        yield f"{POSTGRESQL_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin_engine().begin() as conn:
            conn.execute(text("SET LOCAL synchronous_commit TO OFF"))
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@functools.cache
def admin_engine() -> Engine:
    """The connection pool that creates and drops the tests' PostgreSQL schemas, one per test process.

    One pool rather than one per database: each new connection is a server process started and
    authenticated (about 800 PostgreSQL databases in `make test`). Their DDL commits do not wait for
    the WAL flush (`synchronous_commit`, https://www.postgresql.org/docs/current/wal-async-commit.html):
    a schema lost to a server crash is a test's own scratch space, and what a committed transaction
    shows to other connections is the same either way.
    """
    return create_engine(POSTGRESQL_URL, pool_size=1, pool_pre_ping=True)


def pytest_unconfigure(config) -> None:
    if admin_engine.cache_info().currsize:
        admin_engine().dispose()
        admin_engine.cache_clear()


class MigratedTemplate:
    """What `store.migrate` builds, made once per test process and copied into each test's database.

    Alembic takes 0.2–0.5 s a database (it loads every revision script and runs them one by one);
    a copy takes milliseconds and is the same database. SQLite: the migrated file is copied.
    PostgreSQL: every statement the migration sent to a schema of its own is recorded and sent again,
    in order and with its parameters, to the test's schema. test_migrations.py still migrates empty
    databases for real on both backends.
    """

    def __init__(self, folder: Path):
        self.sqlite_file = folder / "template.db"
        self._migrate(f"sqlite:///{self.sqlite_file}")
        self.postgresql_statements: list[tuple[str, object, bool]] = []
        if POSTGRESQL_URL:
            with fresh_database("postgresql", folder) as url:
                self._migrate(url, record=self.postgresql_statements)

    @staticmethod
    def _migrate(url: str, record: list | None = None) -> None:
        engine: Engine = store.make_engine(url)
        if record is not None:
            @event.listens_for(engine, "before_cursor_execute")
            def sent(_conn, _cursor, statement, parameters, _context, executemany):
                record.append((statement, parameters, executemany))
        try:
            store.migrate(engine)
        finally:
            engine.dispose()

    def replay_postgresql(self, conn, schema: str) -> None:
        conn.execute(text(f'SET LOCAL search_path TO "{schema}"'))
        cursor = conn.connection.cursor()
        try:
            for statement, parameters, executemany in self.postgresql_statements:
                if executemany:
                    cursor.executemany(statement, parameters)
                elif parameters:
                    cursor.execute(statement, parameters)
                else:
                    cursor.execute(statement)
        finally:
            cursor.close()
        conn.execute(text("SET LOCAL search_path TO DEFAULT"))


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory) -> MigratedTemplate:
    """Per test process (each xdist worker has its own): the migrated database tests start from."""
    return MigratedTemplate(tmp_path_factory.mktemp("migrated-template"))


class AppFactory:
    """Builds migrated test apps and, on close, stops each one's threads and closes its pool.

    `make_app(**overrides)` takes config keys; DATABASE_URL defaults to the factory's database.
    Each database is migrated once, by the first app on it; `migrated=True`: the factory's database
    already is (a copy of the migrated template).

    Its apps keep their files (render spill, shared fragments, change signals, the media backfill's
    place) in `instance`, a folder of the test's own: Flask's default, <checkout>/instance, is one
    folder for every test and both xdist workers, where one test's spill eviction deleted another's
    files. Apps of one factory share it, as the workers of one machine share theirs.
    """

    def __init__(self, database_url: str, *, instance: Path, migrated: bool = False):
        self.database_url = database_url
        self.instance = instance
        self.apps: list[Flask] = []
        self._migrated = {database_url} if migrated else set()

    def __call__(self, **overrides) -> Flask:
        config = {"TESTING": True, "DATABASE_URL": self.database_url, "SITE_URL": SITE_URL,
                  "API_TOKENS": [API_TOKEN], "INSTANCE_PATH": str(self.instance), **overrides}
        app = create_app(config)
        self.apps.append(app)
        if config["DATABASE_URL"] not in self._migrated:
            store.migrate(db.engine(app))
            self._migrated.add(config["DATABASE_URL"])
        return app

    def close(self) -> None:
        while self.apps:
            close_app(self.apps.pop())

    def __enter__(self) -> AppFactory:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def database_url(backend, tmp_path, migrated_template) -> Iterator[str]:
    """A migrated database of the test's own, on each backend."""
    with fresh_database(backend, tmp_path, template=migrated_template) as url:
        yield url


@pytest.fixture
def empty_database_url(backend, tmp_path) -> Iterator[str]:
    """An empty database (no tables) of the test's own, on each backend: for tests of the migrations."""
    folder = tmp_path / "empty"
    folder.mkdir()
    with fresh_database(backend, folder) as url:
        yield url


@pytest.fixture
def make_app(request, tmp_path, migrated_template, instance_folder) -> Iterator[AppFactory]:
    """Apps closed when the test ends: on the test's `database_url` when it asks for one (so on every
    backend), otherwise on a migrated SQLite file of the test's own; in the test's instance folder
    (tests/support/folders.py), which the processes it starts share."""
    if "database_url" in request.fixturenames:
        url = request.getfixturevalue("database_url")
    else:
        path = tmp_path / "feedsvc.db"
        shutil.copyfile(migrated_template.sqlite_file, path)
        url = f"sqlite:///{path}"
    with AppFactory(url, instance=instance_folder, migrated=True) as factory:
        yield factory


@pytest.fixture
def app(database_url, make_app) -> Flask:
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def engine(app):
    return db.engine(app)


def import_samples(app: Flask) -> None:
    """Every sample article (articles/*.json) into the app's store, as `flask import-articles` does."""
    result = app.test_cli_runner().invoke(args=["import-articles", str(ARTICLES)])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="session", params=BACKENDS)
def sample_app(request, tmp_path_factory, migrated_template) -> Iterator[Flask]:
    """An app with every sample article imported; shared by the session, so tests must not write to it."""
    folder = tmp_path_factory.mktemp(f"sample-{request.param}")
    with fresh_database(request.param, folder, template=migrated_template) as url, \
            AppFactory(url, instance=folder / "instance", migrated=True) as make_app:
        # Hundreds of tests read this one app from one address; rate limits have tests of their own.
        app = make_app(RATELIMIT_ENABLED=False)
        import_samples(app)
        app.extensions[SAMPLE_WRITES] = watch_writes(db.engine(app))
        yield app


# Tests that wrote to the shared sample app, by the statements that changed rows: checked after each test.
SAMPLE_WRITES = "tests.sample_writes"


def watch_writes(engine: Engine) -> list[str]:
    """Every statement that changes rows through `engine` from now on, but two kinds the app makes by itself
    while serving reads: an INSERT ... ON CONFLICT DO NOTHING (`store.fixed_setting` filling a value that
    never changes once set) and the desk's request counters (desk_* tables, flushed by a background thread)."""
    changed: list[str] = []

    @event.listens_for(engine, "after_cursor_execute")
    def counted(_conn, cursor, statement, _parameters, _context, _executemany):
        words = " ".join(statement.split())
        upper = words.upper()
        if upper[:6] in ("INSERT", "UPDATE", "DELETE") and cursor.rowcount and not upper.endswith("DO NOTHING") \
                and not re.match(r"(INSERT INTO|UPDATE|DELETE FROM) \"?DESK_", upper):
            changed.append(words[:120])
    return changed


@pytest.fixture(autouse=True)
def sample_app_stays_unwritten(request) -> Iterator[None]:
    """A test that writes to the shared sample app fails (every later test would read its writes)."""
    yield
    if "sample_app" in request.fixturenames:
        writes = request.getfixturevalue("sample_app").extensions[SAMPLE_WRITES]
        found, writes[:] = list(writes), []
        assert not found, f"{request.node.nodeid} wrote to the shared sample_app (use `app`): {found[:3]}"


@pytest.fixture
def sample_client(sample_app):
    return sample_app.test_client()


@pytest.fixture
def api_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker: the `sampled` variants marked slow here count
def pytest_collection_modifyitems(config, items) -> None:
    """PostgreSQL variants the markers leave out (pyproject.toml declares the markers), deselected and counted.

    A test runs on PostgreSQL as well as SQLite when it asks for a backend (`backend`, `database_url`,
    `app`, `sample_app`, or a fixture with `params=BACKENDS`). `sqlite_only` keeps SQLite only, for what
    does not depend on the store (headers, rendering, parsing). `postgresql_once` keeps PostgreSQL for
    the first of a parametrised test's variants only, where every variant runs the same SQL;
    `postgresql_once(per=f)` for the first variant of each `f(params)` (e.g. of each scope kind).
    """
    mark_unsampled_variants_slow(items)
    kept, dropped, seen = [], [], set()
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "postgresql" not in params.values():
            kept.append(item)
            continue
        once = item.get_closest_marker("postgresql_once")
        variant = (item.path, getattr(item, "originalname", item.name),
                   once.kwargs["per"](params) if once and "per" in once.kwargs else None)
        if item.get_closest_marker("sqlite_only") or (once and variant in seen):
            dropped.append(item)
        else:
            seen.add(variant)
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def mark_unsampled_variants_slow(items) -> None:
    """`sampled(per=f)`: of a parametrised test's variants, the first of each `f(params)` runs in every lane,
    the others are marked `slow`: `make test` runs them all, `make test-fast` the sample."""
    seen = set()
    for item in items:
        sampled = item.get_closest_marker("sampled")
        if not sampled:
            continue
        variant = (item.path, getattr(item, "originalname", item.name), sampled.kwargs["per"](item.callspec.params))
        if variant in seen:
            item.add_marker(pytest.mark.slow)
        seen.add(variant)


def fast_path_replays(app) -> int:
    """How many answers the WSGI fast path holds for replay (inside ProxyFix or not)."""
    fast = app.wsgi_app if hasattr(app.wsgi_app, "replays") else app.wsgi_app.app
    return len(fast.replays)
