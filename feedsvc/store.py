"""SQLAlchemy tables and the queries feeds and pages need; no HTTP here.

Times are stored as naive UTC (the same on SQLite and PostgreSQL); each article keeps its own
offset in its stored JSON so outputs show the newsroom's +05:30.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from operator import itemgetter
from pathlib import Path

from sqlalchemy import (Column, Date, DateTime, ForeignKey, Index, Integer, MetaData, String, Table, Text,
                        bindparam, cast, create_engine, event, func, insert, select, and_, or_, tuple_)
from sqlalchemy.engine import Connection, Engine

from .records import Article, article_from_json

metadata = MetaData()

articles = Table(
    "articles", metadata,
    Column("id", String(128), primary_key=True),
    Column("slug", String(80), nullable=False, unique=True),
    Column("status", String(16), nullable=False),
    Column("section_key", String(64), nullable=False),
    Column("section_name", String(200), nullable=False),
    Column("published", DateTime, nullable=False),
    Column("updated", DateTime, nullable=False),
    Column("version", Integer, nullable=False),
    Column("modified_at", DateTime, nullable=False),  # server time of the last write
    Column("withdrawn_at", DateTime),
    Column("article", Text, nullable=False),  # records.article_to_json
    Column("record", Text, nullable=False),   # the record as given
    Index("ix_articles_status_published", "status", "published", "id"),
    Index("ix_articles_section_status_published", "section_key", "status", "published", "id"),
    Index("ix_articles_withdrawn_at", "withdrawn_at"),
    Index("ix_articles_modified_at", "modified_at"),  # what changed since: the mirror's --watch
    # Covers the per-month counts and lastmods of the sitemap index (feedsvc/sitemaps.py) without table reads.
    Index("ix_articles_sitemap", "status", "published", "updated", "withdrawn_at"),
)

article_tags = Table(
    "article_tags", metadata,
    Column("tag_key", String(64), primary_key=True),
    Column("article_id", String(128), ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_name", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("published", DateTime, nullable=False),
    Index("ix_article_tags_tag_status_published", "tag_key", "status", "published", "article_id"),
    Index("ix_article_tags_article", "article_id"),
)

article_authors = Table(
    "article_authors", metadata,
    Column("author_key", String(64), primary_key=True),
    Column("article_id", String(128), ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True),
    Column("author_name", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("published", DateTime, nullable=False),
    Index("ix_article_authors_author_status_published", "author_key", "status", "published", "article_id"),
    Index("ix_article_authors_article", "article_id"),
)

slug_redirects = Table(
    "slug_redirects", metadata,
    Column("old_slug", String(80), primary_key=True),
    Column("article_id", String(128), ForeignKey("articles.id", ondelete="CASCADE"), nullable=False),
)

# One row per feed scope ("site", "section:<key>", "tag:<key>", "author:<key>"): a change counter
# every process can read cheaply to know whether its rendered copy of a feed is still current.
scope_state = Table(
    "scope_state", metadata,
    Column("scope", String(80), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("modified_at", DateTime, nullable=False),
)

websub_outbox = Table(
    "websub_outbox", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("hub_url", Text, nullable=False),
    Column("topic_url", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("next_attempt_at", DateTime, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("sent_at", DateTime),
    Column("claim_token", String(32)),  # the sender holding the row until next_attempt_at (feedsvc/websub.py)
    Index("ix_websub_outbox_pending", "sent_at", "next_attempt_at"),
)

partners = Table(
    "partners", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime, nullable=False),
    Column("revoked_at", DateTime),
)

partner_usage = Table(
    "partner_usage", metadata,
    Column("partner_id", Integer, ForeignKey("partners.id", ondelete="CASCADE"), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("feed", String(300), primary_key=True),
    Column("requests", Integer, nullable=False, default=0),
    Column("not_modified", Integer, nullable=False, default=0),
)

SCOPE_KINDS = ("section", "tag", "author")
LIVE = "published"


def utc(dt: datetime) -> datetime:
    """Aware datetime -> naive UTC, the stored form."""
    return dt.astimezone(timezone.utc).replace(tzinfo=None)


def now_utc() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def make_engine(url: str, *, lock_timeout: float = 30, bulk: bool = False, **kwargs) -> Engine:
    """An engine for SQLite (WAL) or PostgreSQL; `lock_timeout` bounds the wait for a locked SQLite
    file and for a PostgreSQL connection, so an outage becomes an error a request can answer.
    `bulk`: for one long writer (an import), with SQLite settings that a request process must not use."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": lock_timeout}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        if bulk:
            event.listen(engine, "connect", _sqlite_bulk_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if url.startswith("postgresql"):
        kwargs.setdefault("connect_args", {"connect_timeout": max(1, int(lock_timeout))})
    return create_engine(url, **kwargs)


def _sqlite_pragmas(dbapi_conn, _record):
    cursor = dbapi_conn.cursor()
    # Takes effect only on a new, empty database: an article row is about 12 KB (its stored form and
    # its record), which 8 KiB pages hold in half as many overflow pages; inserts take half the time.
    cursor.execute("PRAGMA page_size=8192")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL keeps this crash-safe; only a power cut may lose the last commit
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_bulk_pragmas(dbapi_conn, _record):
    cursor = dbapi_conn.cursor()
    # 64 MiB of page cache keeps the indexes of a million articles in memory while rows pour in
    # (2 MiB, the default, fits a request process, which must stay small); and the WAL is folded
    # into the database every 40 MiB rather than every 4 MiB, i.e. after each batch of articles.
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.execute("PRAGMA wal_autocheckpoint=10000")
    cursor.close()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (safe to run on every start)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


# ---- reading articles -------------------------------------------------------------------------

def _article(row) -> Article:
    return article_from_json(row.article)


def article_row(conn: Connection, article_id: str):
    return conn.execute(select(articles).where(articles.c.id == article_id)).first()


def article_by_slug(conn: Connection, slug: str):
    """(row, redirected_from_old_slug): the article a slug names now or named once; (None, False) if none."""
    row = conn.execute(select(articles).where(articles.c.slug == slug)).first()
    if row is not None:
        return row, False
    target = conn.execute(select(articles).join(slug_redirects, slug_redirects.c.article_id == articles.c.id)
                          .where(slug_redirects.c.old_slug == slug)).first()
    return target, target is not None


@dataclass(frozen=True)
class Cursor:
    """Keyset position: the (published, id) of the last item of the previous page."""
    published: datetime  # naive UTC
    article_id: str

    def token(self) -> str:
        return f"{self.published.strftime('%Y%m%dT%H%M%S%f')}~{self.article_id}"

    @classmethod
    def parse(cls, token: str) -> "Cursor":
        stamp, _, article_id = token.partition("~")
        if not article_id:
            raise ValueError("a page cursor looks like 20250723T100000000000~<id>")
        return cls(datetime.strptime(stamp, "%Y%m%dT%H%M%S%f"), article_id)


def _scope_query(scope: str):
    """(table, published column, id column, filter) for the live articles of a scope."""
    kind, _, key = scope.partition(":")
    if kind == "site":
        return articles, articles.c.published, articles.c.id, articles.c.status == LIVE
    if kind == "section":
        return (articles, articles.c.published, articles.c.id,
                and_(articles.c.section_key == key, articles.c.status == LIVE))
    if kind == "tag":
        t = article_tags
        return t, t.c.published, t.c.article_id, and_(t.c.tag_key == key, t.c.status == LIVE)
    if kind == "author":
        t = article_authors
        return t, t.c.published, t.c.article_id, and_(t.c.author_key == key, t.c.status == LIVE)
    raise ValueError(f"unknown scope {scope!r}")


def newest_ids_query(scope: str, limit: int, after: Cursor | None = None):
    """The SELECT that pages a scope newest first; kept apart so its plan can be shown."""
    table, published, id_col, where = _scope_query(scope)
    if after is not None:
        where = and_(where, or_(published < after.published,
                                and_(published == after.published, id_col < after.article_id)))
    return select(id_col.label("id"), published.label("published")).select_from(table).where(where) \
        .order_by(published.desc(), id_col.desc()).limit(limit)


def newest(conn: Connection, scope: str, limit: int, after: Cursor | None = None) -> list[Article]:
    """Up to `limit` live articles of a scope, newest first, strictly after the cursor."""
    ids = [r.id for r in conn.execute(newest_ids_query(scope, limit, after))]
    if not ids:
        return []
    rows = {r.id: r for r in conn.execute(select(articles.c.id, articles.c.article)
                                          .where(articles.c.id.in_(ids)))}
    return [_article(rows[i]) for i in ids]


def withdrawn_since(conn: Connection, scope: str, since: datetime, limit: int = 100) -> list[tuple[str, datetime]]:
    """(article url, withdrawn_at) of articles of a scope withdrawn after `since`, for tombstones."""
    kind, _, key = scope.partition(":")
    q = select(articles.c.article, articles.c.withdrawn_at).where(
        articles.c.status == "withdrawn", articles.c.withdrawn_at >= since)
    if kind == "section":
        q = q.where(articles.c.section_key == key)
    elif kind == "tag":
        q = q.where(articles.c.id.in_(select(article_tags.c.article_id).where(article_tags.c.tag_key == key)))
    elif kind == "author":
        q = q.where(articles.c.id.in_(select(article_authors.c.article_id)
                                      .where(article_authors.c.author_key == key)))
    q = q.order_by(articles.c.withdrawn_at.desc()).limit(limit)
    return [(article_from_json(r.article), r.withdrawn_at) for r in conn.execute(q)]


# ---- scopes -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ScopeState:
    scope: str
    name: str
    version: int
    modified_at: datetime  # naive UTC


def scope_state_of(conn: Connection, scope: str) -> ScopeState | None:
    row = conn.execute(select(scope_state).where(scope_state.c.scope == scope)).first()
    return ScopeState(row.scope, row.name, row.version, row.modified_at) if row else None


def all_scopes(conn: Connection) -> list[ScopeState]:
    """Every known scope, for directories, OPML and exports (ordered by kind then key)."""
    rows = conn.execute(select(scope_state).order_by(scope_state.c.scope))
    return [ScopeState(r.scope, r.name, r.version, r.modified_at) for r in rows]


def record_changes(conn: Connection, names: dict[str, str], when: datetime | None = None) -> None:
    """Bump the change counter of each changed scope (scope -> display name), inside the write's transaction.

    An upsert, not a read-then-insert: two writers that create the same new tag or author at the
    same moment must both succeed, and rows are taken in scope order so concurrent writers lock
    them in the same order. One statement run for every row (compiled once, whatever the count).
    """
    when = when or now_utc()
    rows = [dict(scope=scope, name=name, version=1, modified_at=when) for scope, name in sorted(names.items())]
    statement = _dialect_insert(conn)(scope_state)
    conn.execute(statement.on_conflict_do_update(
        index_elements=[scope_state.c.scope],
        set_={"version": scope_state.c.version + 1, "modified_at": statement.excluded.modified_at,
              "name": statement.excluded.name}), rows)
    for listener in _change_listeners:
        listener(conn, set(names), when)


def insert_rows(conn: Connection, table: Table, rows: list[dict]) -> None:
    """INSERT many rows (dicts with the same keys) straight through the driver's executemany.

    What `conn.execute(insert(table), rows)` does, minus SQLAlchemy's per-row parameter handling,
    which costs an import about as much as the database's own work. Values still pass through each
    column type's bind processor (SQLite keeps datetimes as text), once per distinct value: an
    article's times recur in its tag and author rows, the write time in every row. A text column
    may be given UTF-8 bytes (the import's JSON, as orjson makes it): SQLite takes them as they are
    through CAST(? AS TEXT), sparing a decode here and an encode in the driver; others get text.
    """
    if not rows:
        return
    keys = list(rows[0])
    utf8 = {key for key in keys if isinstance(rows[0][key], bytes)}
    as_bytes = utf8 if conn.dialect.name == "sqlite" else set()
    statement = insert(table).values({key: cast(bindparam(key), Text) if key in as_bytes else bindparam(key)
                                      for key in keys})
    compiled = statement.compile(dialect=conn.dialect)
    order = compiled.positiontup if compiled.positional else keys
    values = list(map(itemgetter(*order), rows)) if len(order) > 1 else [(row[order[0]],) for row in rows]
    for position, key in enumerate(order):
        processor = bytes.decode if key in utf8 - as_bytes else \
            table.c[key].type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        if processor is not None:
            converted = {value: processor(value) for value in {row[position] for row in values} - {None}}
            converted[None] = None
            values = [row[:position] + (converted[row[position]],) + row[position + 1:] for row in values]
    if compiled.positional:
        conn.exec_driver_sql(str(compiled), values)
    else:
        conn.exec_driver_sql(str(compiled), [dict(zip(keys, row)) for row in values])


def _dialect_insert(conn: Connection):
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


_change_listeners = []


def on_change(listener):
    """Register `listener(conn, scopes, when)`, called inside every write transaction that changes scopes."""
    _change_listeners.append(listener)
    return listener


def live_count(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(articles).where(articles.c.status == LIVE)).scalar_one()


def live_article_slugs(conn: Connection):
    """(slug, updated, published) of every live article, oldest first: for sitemaps and exports."""
    return conn.execute(select(articles.c.slug, articles.c.updated, articles.c.published)
                        .where(articles.c.status == LIVE).order_by(articles.c.published, articles.c.id))


def record_of(row) -> dict:
    return json.loads(row.record)
