"""The queries feeds, pages and writers need: all SQL lives here and in ingest's write path; no HTTP."""
from __future__ import annotations

import functools
import importlib
import json
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Iterable, Iterator

from blinker import Namespace
from sqlalchemy import ColumnElement, Table, Text, and_, bindparam, cast, func, insert, or_, select
from sqlalchemy.engine import Connection

from feedsvc.ingest.records import Article, article_from_json
from feedsvc.store.schema import (
    KEYED_KINDS,
    LIVE,
    SCOPE_KINDS,
    articles,
    now_utc,
    scope_redirects,
    scope_state,
    slug_redirects,
    store_settings,
)

# ---- reading articles -------------------------------------------------------------------------

def _article(row) -> Article:
    return article_from_json(row.article)


def article_row(conn: Connection, article_id: str):
    return conn.execute(select(articles).where(articles.c.id == article_id)).first()


def live_now(published, status, now=None) -> ColumnElement[bool]:
    """Live, and dated no later than now (or `now`, a bound parameter). A SCHEDULED article is not live;
    this also keeps out one stored live with a time still to come (written before scheduling existed,
    or a late scheduler)."""
    return and_(status == LIVE, published <= (now_utc() if now is None else now))


def public_once(now=None):
    """Live, or withdrawn once live (it has a time it left public view): what the public may learn exists.
    A draft, a scheduled article, and a deleted draft that never was public are as unknown as a slug never used."""
    return or_(live_now(articles.c.published, articles.c.status, now),
               and_(articles.c.status == "withdrawn", articles.c.withdrawn_at.is_not(None)))


# Built once, not per call: every page request looks its article up by slug, and building these
# statements was a tenth of an AMP page's time in a full export.
_NOW = bindparam("now")
_BY_SLUG = select(articles).where(articles.c.slug == bindparam("slug"), public_once(_NOW))
# The rule is a column here, not a condition: in the WHERE clause SQLite planned it as a multi-index
# OR over the status indexes (every public article scanned, 185 ms for 32 ids) instead of the key.
_BY_IDS = select(articles, public_once(_NOW).label("public")).where(articles.c.id.in_(bindparam("ids", expanding=True)))
_BY_OLD_SLUG = (select(articles).join(slug_redirects, slug_redirects.c.article_id == articles.c.id)
                .where(slug_redirects.c.old_slug == bindparam("slug"), public_once(_NOW)))


def article_by_slug(conn: Connection, slug: str):
    """(row, redirected_from_old_slug): the article a slug names now or named once, if it is or was
    public (public_once); (None, False) otherwise, so no public route tells a draft from nothing."""
    values = {"slug": slug, "now": now_utc()}
    row = conn.execute(_BY_SLUG, values).first()
    if row is not None:
        return row, False
    target = conn.execute(_BY_OLD_SLUG, values).first()
    return target, target is not None


def public_article_rows(conn: Connection, ids: Iterable[str]) -> dict:
    """id -> stored row of each article among `ids` that is or was public (public_once, as
    `article_by_slug` finds them): the full static mirror reads a batch of pages' articles at once."""
    ids = list(ids)
    if not ids:
        return {}
    return {row.id: row for row in conn.execute(_BY_IDS, {"ids": ids, "now": now_utc()}) if row.public}


@dataclass(frozen=True)
class Cursor:
    """Keyset position: the (published, id) of the last item of the previous page."""
    published: datetime  # naive UTC
    article_id: str

    def token(self) -> str:
        # %Y does not pad years below 1000 ("999"), and strptime then reads the stamp as another date.
        return f"{self.published.year:04d}{self.published.strftime('%m%dT%H%M%S%f')}~{self.article_id}"

    @classmethod
    def parse(cls, token: str) -> "Cursor":
        stamp, _, article_id = token.partition("~")
        if not article_id:
            raise ValueError("a page cursor looks like 20250723T100000000000~<id>")
        return cls(datetime.strptime(stamp, "%Y%m%dT%H%M%S%f"), article_id)


def _scope_query(scope: str, key=None, now=None):
    """(table, published column, id column, filter) for the live articles of a scope; `key` and `now`
    as bound parameters for a statement built once (default: the scope's key, the time now)."""
    kind, _, scope_key = scope.partition(":")
    if kind == "site":
        return articles, articles.c.published, articles.c.id, live_now(articles.c.published, articles.c.status, now)
    if kind not in SCOPE_KINDS:
        raise ValueError(f"unknown scope {scope!r}")
    listed = SCOPE_KINDS[kind]
    table = listed.table
    return table, table.c.published, listed.article_id, and_(listed.holds(scope_key if key is None else key),
                                                             live_now(table.c.published, table.c.status, now))


def _in_scope(kind: str, key):
    """A filter on the articles table: the articles of a section, tag, author or the video scope, whatever their
    status (`key`: a string, or a bound parameter for a statement built once)."""
    listed = SCOPE_KINDS[kind]
    if listed.table is articles:
        return listed.holds(key)
    return articles.c.id.in_(select(listed.article_id).where(listed.holds(key)))


def newest_ids_query(scope: str, limit: int, after: Cursor | None = None, *, syndicated: bool = False,
                     language: str | None = None, with_version: bool = False):
    """The SELECT that pages a scope newest first; kept apart so its plan can be shown.
    `syndicated`: only articles that may go into feeds (the record's syndication.feeds);
    `language`: only articles in that language (single-language feeds); `with_version`: each
    article's stored version too."""
    return _newest_select(scope, limit, None if after is None else (after.published, after.article_id), syndicated=syndicated,
                          language=language, with_version=with_version)


def _newest_select(scope: str, limit, after: tuple | None, *, syndicated: bool, language, with_version: bool,
                   key=None, now=None):
    table, published, id_col, where = _scope_query(scope, key, now)
    if language is not None:
        # The scope's own table holds the language (an index on its key, language, status, published):
        # a language the scope does not use is an empty index range, not a read of its every article.
        where = and_(where, table.c.language == language)
    if syndicated:
        where = and_(where, id_col.not_in(select(articles.c.id).where(articles.c.in_feeds.is_(False))))
    if with_version and table is not articles:
        table = table.join(articles, articles.c.id == id_col)
    if after is not None:
        after_published, after_id = after
        where = and_(where, or_(published < after_published, and_(published == after_published, id_col < after_id)))
    columns = [id_col.label("id"), published.label("published"), *([articles.c.version] if with_version else [])]
    return select(*columns).select_from(table).where(where).order_by(published.desc(), id_col.desc()).limit(limit)


@functools.cache
def _newest_versions_statement(kind: str, syndicated: bool, language: bool, after: bool):
    """newest_ids_query(with_version=True) of one shape, built once, its values bound when run: a
    page composed from fragments (most often all held) spends no time building its statement."""
    return _newest_select(f"{kind}:" if kind in KEYED_KINDS else kind, bindparam("limit"),
                          (bindparam("after_published"), bindparam("after_id")) if after else None,
                          syndicated=syndicated, language=bindparam("language") if language else None,
                          with_version=True, key=bindparam("key"), now=bindparam("now"))


def newest(conn: Connection, scope: str, limit: int, after: Cursor | None = None, *,
           syndicated: bool = False, language: str | None = None) -> list[Article]:
    """Up to `limit` live articles of a scope, newest first, strictly after the cursor (feeds:
    `syndicated`; single-language feeds: `language`)."""
    ids = [r.id for r in conn.execute(newest_ids_query(scope, limit, after, syndicated=syndicated,
                                                       language=language))]
    if not ids:
        return []
    rows = {r.id: r for r in conn.execute(select(articles.c.id, articles.c.article)
                                          .where(articles.c.id.in_(ids)))}
    return [_article(rows[i]) for i in ids]


def live_articles(conn: Connection, ids: Iterable[str]) -> list[Article]:
    """The live articles among `ids`, in no order; drafts, scheduled and withdrawn ones are as unknown as ids never stored."""
    ids = list(ids)
    if not ids:
        return []
    return [_article(row) for row in conn.execute(select(articles.c.article).where(
        articles.c.id.in_(ids), live_now(articles.c.published, articles.c.status)))]


def article_states(conn: Connection, ids: Iterable[str]) -> tuple[tuple[str, int, datetime], ...]:
    """(id, version, modified_at) of each stored article among `ids`, whatever its status, by id: every write
    (a withdrawal and going live too) moves its version, so a document showing what these say changes with it."""
    ids = list(ids)
    if not ids:
        return ()
    return tuple((row.id, row.version, row.modified_at) for row in conn.execute(
        select(articles.c.id, articles.c.version, articles.c.modified_at)
        .where(articles.c.id.in_(ids)).order_by(articles.c.id)))


def newest_versions(conn: Connection, scope: str, limit: int, after: Cursor | None = None, *,
                    syndicated: bool = False, language: str | None = None) -> list:
    """(id, published, version) of what `newest` would give, in its order, without reading the
    articles: enough to name each one's stored version (feeds composed from entry fragments)."""
    kind, _, key = scope.partition(":")
    if kind != "site" and kind not in SCOPE_KINDS:
        raise ValueError(f"unknown scope {scope!r}")
    statement = _newest_versions_statement(kind, syndicated, language is not None, after is not None)
    values = {"limit": limit, "now": now_utc(), **({"key": key} if kind in KEYED_KINDS else {}),
              **({"language": language} if language is not None else {}),
              **({"after_published": after.published, "after_id": after.article_id} if after is not None else {})}
    return list(conn.execute(statement, values))


_AT_VERSIONS = select(articles.c.id, articles.c.version, articles.c.article).where(
    articles.c.id.in_(bindparam("ids", expanding=True)))


def articles_at_versions(conn: Connection, ids: Iterable[str]) -> dict[str, tuple[int, Article]]:
    """id -> (stored version, article) for the given ids, each read with the version it was stored at."""
    return {r.id: (r.version, _article(r)) for r in conn.execute(_AT_VERSIONS, {"ids": list(ids)})}


# A skip through ix_articles_language_status_published, two seeks per language stored, however many
# articles there are: the next language after `after` of any article, then whether a live one that
# goes into feeds is in it. (One query asking both lets SQLite walk the status index and sort instead.)
_LANGUAGE = bindparam("language")
_NEXT_LANGUAGE = select(func.min(articles.c.language)).where(articles.c.language > bindparam("after"))
_LANGUAGE_LIVE = select(articles.c.id).where(
    articles.c.language == _LANGUAGE, live_now(articles.c.published, articles.c.status, _NOW),
    articles.c.id.not_in(select(articles.c.id).where(articles.c.in_feeds.is_(False)))).limit(1)


def live_languages(conn: Connection) -> list[str]:
    """The languages of the live articles that go into feeds, in order (the single-language feeds OPML lists)."""
    found: list[str] = []
    after, now = "", now_utc()
    while (language := conn.execute(_NEXT_LANGUAGE, {"after": after}).scalar()) is not None:
        if conn.execute(_LANGUAGE_LIVE, {"language": language, "now": now}).first() is not None:
            found.append(language)
        after = language
    return found


def withdrawn_since(conn: Connection, scope: str, since: datetime, limit: int = 100) -> list[tuple[Article, datetime]]:
    """(article, withdrawn_at) of articles of a scope withdrawn after `since`, for tombstones: only those
    once public, as a never-published draft's withdrawn_at is NULL (write.left_public_at)."""
    kind, _, key = scope.partition(":")
    values = {"since": since, "limit": limit, **({"key": key} if kind in KEYED_KINDS else {})}
    return [(article_from_json(r.article), r.withdrawn_at) for r in conn.execute(_withdrawn_statement(kind), values)]


@functools.cache
def _withdrawn_statement(kind: str):
    """withdrawn_since's SELECT for one kind of scope, built once, its values bound when run: every feed
    page's frame asks it, and building it took about as long as running it (a write's fan-out asks it
    28 times, profiled in process at 1M articles)."""
    q = select(articles.c.article, articles.c.withdrawn_at).where(
        articles.c.status == "withdrawn", articles.c.withdrawn_at.is_not(None),
        articles.c.withdrawn_at >= bindparam("since"))
    if kind != "site":
        q = q.where(_in_scope(kind, bindparam("key") if kind in KEYED_KINDS else ""))
    return q.order_by(articles.c.withdrawn_at.desc()).limit(bindparam("limit"))


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


def scope_states_of(conn: Connection, scopes: Iterable[str]) -> dict[str, ScopeState]:
    """scope -> its state, for those of `scopes` that have one."""
    scopes = list(scopes)
    if not scopes:
        return {}
    return {r.scope: ScopeState(r.scope, r.name, r.version, r.modified_at)
            for r in conn.execute(select(scope_state).where(scope_state.c.scope.in_(scopes)))}


def scope_redirect(conn: Connection, kind: str, key: str) -> str | None:
    """The key a renamed section, tag or author key now answers under, or None. Chains are stored
    flat (ingest/rename.py), so one read gives the final key."""
    return conn.execute(select(scope_redirects.c.new_key)
                        .where(scope_redirects.c.kind == kind, scope_redirects.c.old_key == key)).scalar()


def all_scopes(conn: Connection) -> list[ScopeState]:
    """Every known scope, for directories, OPML and exports (ordered by kind then key)."""
    return list(each_scope(conn))


def scopes_of_kind(conn: Connection, kind: str) -> list[ScopeState]:
    """Every scope of one kind (section, tag, author, or a whole kind such as video), ordered by scope."""
    q = select(scope_state).where(_of_kind(kind)).order_by(scope_state.c.scope)
    return [ScopeState(r.scope, r.name, r.version, r.modified_at) for r in conn.execute(q)]


def count_scopes_of_kind(conn: Connection, kind: str) -> int:
    return conn.execute(select(func.count()).select_from(scope_state).where(_of_kind(kind))).scalar_one()


def recently_changed_scopes(conn: Connection, kind: str, count: int) -> list[ScopeState]:
    """The `count` scopes of a kind whose counters moved last, newest first (ties by scope, last first,
    compared in Python: a database's collation may order text otherwise)."""
    since = conn.execute(select(scope_state.c.modified_at).where(_of_kind(kind))
                         .order_by(scope_state.c.modified_at.desc()).limit(1).offset(count - 1)).scalar()
    q = select(scope_state).where(_of_kind(kind))
    if since is not None:   # more than `count` of them: those from the count-th newest time on, ties included
        q = q.where(scope_state.c.modified_at >= since)
    states = [ScopeState(r.scope, r.name, r.version, r.modified_at) for r in conn.execute(q)]
    return sorted(states, key=lambda s: (s.modified_at, s.scope), reverse=True)[:count]


def _of_kind(kind: str) -> ColumnElement[bool]:
    return or_(scope_state.c.scope == kind, scope_state.c.scope.startswith(f"{kind}:", autoescape=True))


def each_scope(conn: Connection) -> Iterator[ScopeState]:
    """all_scopes one at a time, read from the cursor as they are taken: what only looks at each
    scope once (a digest of them all) then holds one, not 50,000 (about 20 MiB in a worker)."""
    for r in conn.execute(select(scope_state).order_by(scope_state.c.scope)):
        yield ScopeState(r.scope, r.name, r.version, r.modified_at)


# Sent inside every write transaction that changes scopes, by the engine the write went through,
# with `conn` (the write's connection), `scopes` (a set of scope names), `when` and `articles` (the ids
# of the articles written, for cache purges). Receivers
# connect with `sender=` their app's engine: a process may hold several apps (tests build many),
# and each must hear only the writes through its own.
changed = Namespace().signal("feedsvc.store-changed")

# Set in Connection.info by a write that stores a SCHEDULED article: the scheduler of the process,
# woken when that connection is checked in (after the commit), looks again for its next due time.
SCHEDULE_CHANGED = "feedsvc.store.schedule-changed"


def record_changes(conn: Connection, names: dict[str, str], when: datetime | None = None, *,
                   articles: Iterable[str] = ()) -> None:
    """Bump the change counter of each changed scope (scope -> display name), inside the write's transaction.

    An upsert, not a read-then-insert: two writers that create the same new tag or author at the
    same moment must both succeed, and rows are taken in scope order so concurrent writers lock
    them in the same order. One statement run for every row (compiled once, whatever the count).
    """
    when = when or now_utc()
    rows = [dict(scope=scope, name=name, version=1, modified_at=when) for scope, name in sorted(names.items())]
    statement = dialect_insert(conn)(scope_state)
    conn.execute(statement.on_conflict_do_update(
        index_elements=[scope_state.c.scope],
        set_={"version": scope_state.c.version + 1, "modified_at": statement.excluded.modified_at,
              "name": statement.excluded.name}), rows)
    changed.send(conn.engine, conn=conn, scopes=set(names), when=when, articles=set(articles))


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
    order = list(compiled.positiontup or ()) if compiled.positional else keys
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
        conn.exec_driver_sql(str(compiled), [dict(zip(keys, row, strict=True)) for row in values])


def dialect_insert(conn: Connection):
    """The INSERT of `conn`'s dialect (for ON CONFLICT), importing that dialect only: SQLAlchemy's
    PostgreSQL package (with its asyncpg and psycopg modules) is 2 MiB that a worker on SQLite need
    not hold (bench row worker-rss-1m), and on PostgreSQL the engine has imported it already."""
    return importlib.import_module(f"sqlalchemy.dialects.{conn.dialect.name}").insert


def fixed_setting(conn: Connection, name: str, value: str) -> str:
    """The store's value of a setting fixed once (store_settings): `value` if none was recorded yet, else the recorded one."""
    conn.execute(dialect_insert(conn)(store_settings).values(name=name, value=value)
                 .on_conflict_do_nothing(index_elements=[store_settings.c.name]))
    return conn.execute(select(store_settings.c.value).where(store_settings.c.name == name)).scalar_one()


def live_count(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(articles)
                        .where(live_now(articles.c.published, articles.c.status))).scalar_one()


def live_article_slugs(conn: Connection):
    """(slug, updated, published) of every live article, oldest first: for sitemaps and exports."""
    return conn.execute(select(articles.c.slug, articles.c.updated, articles.c.published)
                        .where(live_now(articles.c.published, articles.c.status))
                        .order_by(articles.c.published, articles.c.id))


def record_of(row) -> dict:
    return json.loads(row.record)
