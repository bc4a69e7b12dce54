"""The database connection of a request: opened on first use, closed at teardown."""
from flask import current_app, g
from sqlalchemy.engine import Connection, Engine

from feedsvc import store


def init_app(app) -> None:
    app.extensions["feedsvc.engine"] = store.make_engine(app.config["DATABASE_URL"],
                                                         lock_timeout=app.config["DATABASE_TIMEOUT"])
    app.teardown_appcontext(close_connection)


def engine() -> Engine:
    return current_app.extensions["feedsvc.engine"]


def connection() -> Connection:
    if "db" not in g:
        g.db = engine().connect()
    return g.db


def close_connection(_exc=None) -> None:
    conn = g.pop("db", None)
    if conn is not None:
        conn.close()
