"""Apps on every configured database backend, built by one factory that also closes them."""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine, text

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
def fresh_database(kind: str, folder: Path) -> Iterator[str]:
    """The URL of an empty database, dropped afterwards: a SQLite file, or a PostgreSQL schema of its own."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'feedsvc.db'}"
        return
    assert POSTGRESQL_URL, "no PostgreSQL server configured (FEEDSVC_TEST_POSTGRESQL_URL)"
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(POSTGRESQL_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRESQL_URL else "?"
    try:
        yield f"{POSTGRESQL_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


class AppFactory:
    """Builds migrated test apps and, on close, stops each one's threads and closes its pool.

    `make_app(**overrides)` takes config keys; DATABASE_URL defaults to the factory's database.
    """

    def __init__(self, database_url: str):
        self.database_url = database_url
        self.apps: list[Flask] = []

    def __call__(self, **overrides) -> Flask:
        config = {"TESTING": True, "DATABASE_URL": self.database_url, "SITE_URL": SITE_URL,
                  "API_TOKENS": [API_TOKEN], **overrides}
        app = create_app(config)
        self.apps.append(app)
        store.migrate(db.engine(app))
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
def database_url(backend, tmp_path) -> Iterator[str]:
    with fresh_database(backend, tmp_path) as url:
        yield url


@pytest.fixture
def make_app(request, tmp_path) -> Iterator[AppFactory]:
    """Apps closed when the test ends: on the test's `database_url` when it asks for one (so on every
    backend), otherwise on a SQLite file of the test's own."""
    if "database_url" in request.fixturenames:
        url = request.getfixturevalue("database_url")
    else:
        url = f"sqlite:///{tmp_path / 'feedsvc.db'}"
    with AppFactory(url) as factory:
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


@pytest.fixture(scope="session", params=BACKENDS)
def sample_app(request, tmp_path_factory) -> Iterator[Flask]:
    """An app with every sample article imported; shared by the session, so tests must not write to it."""
    folder = tmp_path_factory.mktemp(f"sample-{request.param}")
    with fresh_database(request.param, folder) as url, AppFactory(url) as make_app:
        # Hundreds of tests read this one app from one address; rate limits have tests of their own.
        app = make_app(RATELIMIT_ENABLED=False)
        result = app.test_cli_runner().invoke(args=["import-articles", str(ARTICLES)])
        assert result.exit_code == 0, result.output
        yield app


@pytest.fixture
def sample_client(sample_app):
    return sample_app.test_client()


@pytest.fixture
def api_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_TOKEN}"}
