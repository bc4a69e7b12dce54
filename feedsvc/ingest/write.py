"""Writing articles: the one upsert/withdraw path shared by the import command and the ingest API."""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime

import orjson
from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError

from feedsvc import store
from feedsvc.ingest.records import (
    Article,
    Problem,
    RecordError,
    article_from_json,
    article_to_json,
    encode_article,
    encode_article_and_head,
    encode_record,
    record_to_json,
)
from feedsvc.store import LIVE, SCHEDULED, article_authors, article_tags, articles, slug_redirects, utc


class VersionConflict(Exception):
    """The stored article is not at the version the writer expected (HTTP 412)."""

    def __init__(self, article_id: str, expected, actual):
        self.article_id, self.expected, self.actual = article_id, expected, actual
        super().__init__(f"{article_id}: expected version {expected}, stored version is {actual}")


class StaleWrite(Exception):
    """The incoming record is older (by `updated`) than the stored one (HTTP 409)."""

    def __init__(self, article_id: str, incoming: datetime, stored: datetime):
        self.article_id = article_id
        super().__init__(f"{article_id}: incoming updated {incoming.isoformat()} is older than the stored "
                         f"{stored.isoformat()}Z; not overwritten")


class NotFound(Exception):
    pass


@dataclass
class WriteResult:
    article_id: str
    outcome: str  # created | updated | unchanged | withdrawn
    version: int
    scopes: dict[str, str] = field(default_factory=dict)  # changed feed scopes -> display names


def _scope_names(article: Article, site_name: str, *, shown: bool | None = None) -> dict[str, str]:
    """The feed scopes an article appears in (scope -> display name): a live one's, or, with `shown`,
    those of one that appears there otherwise (the tombstone of a withdrawn article)."""
    return store.article_scopes(article, site_name) if (article.live if shown is None else shown) else {}


def _slug_suffix(article: Article) -> str:
    # A derived slug that collides gets a suffix from the id, which is unique and stable.
    suffix = "-" + "".join(c if c.isalnum() else "-" for c in article.id.lower()).strip("-")[-12:]
    return article.slug[: 80 - len(suffix)].rstrip("-") + suffix


# What upsert_many reads of the record as given (_keep_stored_names, _claim_slugs): all an import's
# writer needs decoded, the record's stored text travelling as it is (see Incoming.__reduce__).
WRITER_RECORD_KEYS = ("slug", "url", "authors")
# What upsert_many may change of an article (_keep_stored_names, _claim_slugs, _hold_until_visible).
WRITER_CHANGES = ("slug", "url", "status", "authors")


@dataclass
class Incoming:
    """An article on its way into the store with both of its stored JSON texts already made (UTF-8):
    an import makes them in its parsing worker processes, leaving the one writer only the writing.

    One sent by a worker (`__reduce__`) is not `whole`: its article lacks the body, summary and images,
    and its `record` holds only the WRITER_RECORD_KEYS; `article_json` and `record_json` are whole, and
    `remade()` and `complete()` give the whole article back."""
    article: Article
    article_json: bytes  # records.encode_article
    record_json: bytes   # records.encode_record
    whole: bool = True
    head_json: bytes | None = None  # made with article_json where the incoming will be sent (to_send)

    @classmethod
    def of(cls, article: Article) -> "Incoming":
        return cls(article, encode_article(article), encode_record(article.record))

    @classmethod
    def to_send(cls, article: Article) -> "Incoming":
        """`of`, for an import's worker to send to the writer (`__reduce__`)."""
        article_json, head_json = encode_article_and_head(article)
        return cls(article, article_json, encode_record(article.record), head_json=head_json)

    @classmethod
    def from_json(cls, article_json: bytes, record_json: bytes) -> "Incoming":
        return cls(article_from_json(article_json, orjson.loads(record_json)), article_json, record_json)

    @classmethod
    def for_writer(cls, article_json: bytes, record_json: bytes, head_json: bytes, record: dict,
                   video_known: bool) -> "Incoming":
        """What a worker sent (`__reduce__`): `head_json` the article without its body, summary and
        images, `record` the WRITER_RECORD_KEYS of the record, `video_known` its has_video."""
        return cls(article_from_json(head_json, record, video_known), article_json, record_json, whole=False)

    def remade(self) -> "Incoming":
        """This incoming with its article's text made again after upsert_many changed WRITER_CHANGES."""
        article = self.article
        if not self.whole:
            changed, article = article, article_from_json(self.article_json, article.record, article.video_known)
            for name in WRITER_CHANGES:
                setattr(article, name, getattr(changed, name))
        return Incoming(article, encode_article(article), self.record_json, self.whole)

    def complete(self) -> "Incoming":
        """This incoming article as its texts say, whole: what a retry one article at a time writes
        (the writer's changes to the article of a rolled-back batch left behind)."""
        return Incoming.from_json(self.article_json, self.record_json)

    def __reduce__(self):
        # From a worker to the writer the two texts travel as bytes, and decoded only what the writer
        # reads: the article without its body, summary and images (6 µs to decode against 27 µs for
        # the whole, whose renditions are a hundred small objects), the record's WRITER_RECORD_KEYS
        # (19 µs to decode whole) and has_video, asked twice a record (4 µs each). The writer is the
        # import's busiest process (~270 µs a record, bench import corpus, against ~170 per worker).
        article, record = self.article, self.article.record
        head_json = self.head_json or encode_article_and_head(article)[1]
        return Incoming.for_writer, (self.article_json, self.record_json, head_json,
                                     {key: record[key] for key in WRITER_RECORD_KEYS if key in record},
                                     article.has_video)


@dataclass
class _Pending:
    index: int
    incoming: Incoming
    row: Row | None  # the stored row, None for a new article

    @property
    def article(self) -> Article:
        return self.incoming.article


def upsert(conn: Connection, article: Article, **kwargs) -> WriteResult:
    """Create or replace one article inside the caller's transaction; raises what upsert_many reports."""
    return upsert_incoming(conn, Incoming.of(article), **kwargs)


def upsert_incoming(conn: Connection, incoming: Incoming, **kwargs) -> WriteResult:
    """upsert of an article whose stored texts are made already."""
    (outcome,) = upsert_many(conn, [incoming], **kwargs)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def upsert_many(conn: Connection, batch: list[Incoming], *, site_name: str, expected_version: int | None = None,
                now: datetime | None = None) -> list[WriteResult | Exception]:
    """Create or replace articles inside the caller's transaction, in a few statements per batch.

    Returns one outcome per article: a WriteResult, or the RecordError, StaleWrite or VersionConflict
    that kept it out. Raises ConcurrentWrite when another writer changed one of them meanwhile:
    the caller must then roll back the whole transaction.
    """
    now = now or store.now_utc()
    stored = {r.id: r for r in conn.execute(
        select(articles.c.id, articles.c.version, articles.c.updated, articles.c.record, articles.c.slug,
               articles.c.status, articles.c.article, articles.c.withdrawn_at)
        .where(articles.c.id.in_({incoming.article.id for incoming in batch})))}
    outcomes: list = [None] * len(batch)
    pending: list[_Pending] = []
    for index, incoming in enumerate(batch):
        article = incoming.article
        row = stored.get(article.id)
        if expected_version is not None and (row.version if row else 0) != expected_version:
            outcomes[index] = VersionConflict(article.id, expected_version, row.version if row else None)
        elif row and utc(article.updated) < row.updated:
            outcomes[index] = StaleWrite(article.id, article.updated, row.updated)
        elif row and (row.record == incoming.record_json.decode()  # stored by this version: canonical already
                      or encode_record(json.loads(row.record)) == incoming.record_json):
            outcomes[index] = WriteResult(article.id, "unchanged", row.version)
        else:
            pending.append(_Pending(index, incoming, row))
    _keep_stored_names(conn, pending)
    pending = _claim_slugs(conn, pending, outcomes)
    _hold_until_visible(conn, pending, now)
    if pending:
        _write_articles(conn, pending, now)
        write_links(conn, [p.article for p in pending])
        _write_redirects(conn, pending)
    for p in pending:
        outcomes[p.index] = WriteResult(p.article.id, "updated" if p.row else "created",
                                        p.row.version + 1 if p.row else 1,
                                        _changed_scopes(p.row, p.article, site_name, now))
    return outcomes


class ConcurrentWrite(Exception):
    """Another writer changed an article of this batch between our read and our write."""


def _keep_stored_names(conn: Connection, pending: list[_Pending]) -> None:
    """Derived slugs and author keys are public URLs: what the store already holds wins over a fresh
    derivation (the romanisation may have improved since): a stored article keeps its slug while
    its title is unchanged, and an author named without a key keeps the key stored for that name."""
    given_keys = {a["name"] for p in pending for a in p.article.record.get("authors", []) if a.get("key")}
    derived = {a.name for p in pending for a in p.article.authors if a.name not in given_keys}
    stored_keys = dict(conn.execute(
        select(article_authors.c.author_name, func.min(article_authors.c.author_key))
        .where(article_authors.c.author_name.in_(derived)).group_by(article_authors.c.author_name)).all()) if derived else {}
    for p in pending:
        article, changed = p.article, False
        if p.row is not None and not article.record.get("slug") and p.row.slug != article.slug \
                and article_from_json(p.row.article).title == article.title:
            article.slug, changed = p.row.slug, True
            if not article.record.get("url"):
                article.url = article.url.rsplit("/", 1)[0] + "/" + article.slug
        for i, author in enumerate(article.authors):
            key = stored_keys.get(author.name) if author.name in derived else None
            if key and key != author.key:
                article.authors[i], changed = replace(author, key=key), True
        if changed:
            p.incoming = p.incoming.remade()


def _claim_slugs(conn: Connection, pending: list[_Pending], outcomes: list) -> list[_Pending]:
    owners = dict(conn.execute(select(articles.c.slug, articles.c.id)
                               .where(articles.c.slug.in_({p.article.slug for p in pending}))).all())
    kept = []
    for p in pending:
        owner = owners.get(p.article.slug)
        if owner not in (None, p.article.id):
            if p.article.record.get("slug"):
                outcomes[p.index] = RecordError(
                    [Problem("slug", f"'{p.article.slug}' is already the slug of article '{owner}'")])
                continue
            p.article.slug = _slug_suffix(p.article)
            if not p.article.record.get("url"):
                p.article.url = p.article.url.rsplit("/", 1)[0] + "/" + p.article.slug
            p.incoming = p.incoming.remade()
        owners[p.article.slug] = p.article.id
        kept.append(p)
    return kept


def _hold_until_visible(conn: Connection, pending: list[_Pending], now: datetime) -> None:
    """A published record whose time has not come is stored SCHEDULED: in no feed, page or sitemap,
    its scopes untouched, until feedsvc/publish/schedule.py makes it live at its `visible_from`."""
    for p in pending:
        if p.article.status == LIVE and utc(p.article.visible_from) > now:
            p.article.status = SCHEDULED
            p.incoming = p.incoming.remade()
            conn.info[store.SCHEDULE_CHANGED] = True  # read at check-in: wakes this process's scheduler


def left_public_at(row, status: str, now: datetime) -> datetime | None:
    """The `withdrawn_at` of an article written with `status` over its stored `row` (None if new).

    It says when the article last left public view, and so whether it ever was public: NULL while
    live and for an article never published. Only a withdrawn article with a time gets a tombstone
    and a 410; a deleted draft that was never public stays NULL and answers as if it never existed.
    """
    if status == LIVE or row is None:
        return None
    if row.status == LIVE:
        return now
    if status == "withdrawn" and row.status != "withdrawn" and row.withdrawn_at is not None:
        return now  # an unpublished article deleted: its tombstone dates from the deletion
    return row.withdrawn_at


def _changed_scopes(row, article: Article, site_name: str, now: datetime) -> dict[str, str]:
    """The feeds a write changes: those the article was in, and those it is in now as an entry or a new tombstone."""
    tombstoned = (article.status == "withdrawn" and row is not None and row.status != "withdrawn"
                  and left_public_at(row, article.status, now) is not None)
    names = _scope_names(article, site_name, shown=article.live or tombstoned)
    if row is not None:
        names = {**_scope_names(article_from_json(row.article), site_name), **names}
    return names


def _article_values(incoming: Incoming, row, now: datetime) -> dict:
    """The article's row; its two JSON texts as UTF-8 bytes, which store.insert_rows takes as they are."""
    article = incoming.article
    return dict(
        id=article.id, slug=article.slug, status=article.status, section_key=article.section.key,
        section_name=article.section.name, published=utc(article.published), updated=utc(article.updated),
        modified_at=now, version=row.version + 1 if row else 1,
        withdrawn_at=left_public_at(row, article.status, now),
        visible_from=utc(article.visible_from) if article.status == SCHEDULED else None,
        in_feeds=article.in_feeds, in_news_sitemap=article.in_news_sitemap, has_video=article.has_video,
        language=article.language, article=incoming.article_json, record=incoming.record_json)


def _write_articles(conn: Connection, pending: list[_Pending], now: datetime) -> None:
    new = [_article_values(p.incoming, None, now) for p in pending if p.row is None]
    # Updates go through SQLAlchemy, which binds text: the JSON as str, not as insert_rows' bytes.
    changed = [dict(_article_values(p.incoming, p.row, now), old_version=p.row.version,
                    article=p.incoming.article_json.decode(), record=p.incoming.record_json.decode())
               for p in pending if p.row is not None]
    if new:
        # No SAVEPOINT here: the caller rolls the whole transaction back on ConcurrentWrite anyway, and
        # under pysqlite a SAVEPOINT taken before the first write opens the transaction and its RELEASE
        # commits it, so new articles were committed apart from their tags, authors and counters.
        try:
            store.insert_rows(conn, articles, new)
        except IntegrityError as exc:
            raise ConcurrentWrite(str(exc.orig)) from None
    if changed:
        update_versioned(conn, [dict(v, article_id=v.pop("id")) for v in changed], "meanwhile")


def update_versioned(conn: Connection, rows: list[dict], during: str) -> None:
    """UPDATE stored articles, each row naming its article (`article_id`) and the version it was read at
    (`old_version`), the other keys the columns to set; ConcurrentWrite (saying `during` what) when
    another writer changed one of them since."""
    if not rows:
        return
    statement = update(articles).where(articles.c.id == bindparam("article_id"),
                                       articles.c.version == bindparam("old_version"))
    statement = statement.values({c: bindparam(c) for c in rows[0] if c not in ("article_id", "old_version")})
    done = conn.execute(statement, rows)
    if done.rowcount != len(rows):
        raise ConcurrentWrite(f"{len(rows) - done.rowcount} of {len(rows)} articles changed {during}")


@dataclass
class Rederived:
    """A stored article derived again from its unchanged record (a backfill of what ingest derives,
    such as image facts): `version` is the one it was read at."""
    article: Article
    article_json: bytes  # records.encode_article
    version: int


def rewrite_derived(conn: Connection, batch: list[Rederived], *, site_name: str,
                    now: datetime | None = None) -> list[WriteResult]:
    """Store articles whose derived form changed while their record did not, inside the caller's
    transaction; raises ConcurrentWrite when another writer changed one of them since it was read.

    What a reader sees follows what changed: the output did, so the version (the API's ETag, what
    If-Match names) and the write time (pages' Last-Modified, the mirror's changed-since) move and the
    feeds that show the article are bumped (new ETags, purges, WebSub pings). `updated` does not: it is
    the newsroom's date of the story's last edit, which feeds show as the entry's update and
    aggregators use to re-rank it, and correcting an image's size is no edit of the story. The record
    as given stays byte for byte (the API hands it back as it was sent).
    """
    now = now or store.now_utc()
    update_versioned(conn, [dict(article_id=r.article.id, old_version=r.version, version=r.version + 1,
                                 modified_at=now, has_video=r.article.has_video, article=r.article_json.decode())
                            for r in batch], "since they were read")
    return [WriteResult(r.article.id, "updated", r.version + 1, _scope_names(r.article, site_name)) for r in batch]


def write_links(conn: Connection, batch: list[Article]) -> None:
    ids = [a.id for a in batch]
    conn.execute(delete(article_tags).where(article_tags.c.article_id.in_(ids)))
    conn.execute(delete(article_authors).where(article_authors.c.article_id.in_(ids)))
    tags, authors = [], []
    for a in batch:
        published = utc(a.published)
        tags += [dict(tag_key=t.key, article_id=a.id, tag_name=t.name, status=a.status, published=published,
                      language=a.language) for t in a.tags]
        authors += [dict(author_key=w.key, article_id=a.id, author_name=w.name, status=a.status,
                         published=published, language=a.language) for w in a.authors]
    store.insert_rows(conn, article_tags, tags)
    store.insert_rows(conn, article_authors, authors)


def _write_redirects(conn: Connection, pending: list[_Pending]) -> None:
    """An article's old slugs keep answering (redirect); a slug taken anew stops redirecting."""
    renamed = [(p.row.slug, p.article.id) for p in pending if p.row is not None and p.row.slug != p.article.slug]
    stale = {p.article.slug for p in pending} | {old_slug for old_slug, _ in renamed}
    conn.execute(delete(slug_redirects).where(slug_redirects.c.old_slug.in_(stale)))
    if renamed:
        conn.execute(insert(slug_redirects), [dict(old_slug=old_slug, article_id=article_id)
                                              for old_slug, article_id in renamed])


def withdraw(conn: Connection, article_id: str, *, site_name: str, expected_version: int | None = None,
             now: datetime | None = None) -> WriteResult:
    """Take an article out of every feed and page, keeping it as a tombstone if it ever was public."""
    row = conn.execute(select(articles).where(articles.c.id == article_id)).first()
    if row is None:
        raise NotFound(article_id)
    if expected_version is not None and row.version != expected_version:
        raise VersionConflict(article_id, expected_version, row.version)
    if row.status == "withdrawn":
        return WriteResult(article_id, "unchanged", row.version)
    now = now or store.now_utc()
    withdrawn = article_from_json(row.article)
    withdrawn.status = "withdrawn"
    record = dict(json.loads(row.record), status="withdrawn")
    done = conn.execute(update(articles).where(articles.c.id == article_id, articles.c.version == row.version)
                        .values(status="withdrawn", withdrawn_at=left_public_at(row, "withdrawn", now),
                                visible_from=None, modified_at=now, version=row.version + 1,
                                article=article_to_json(withdrawn), record=record_to_json(record)))
    if done.rowcount != 1:
        raise VersionConflict(article_id, row.version, "written concurrently")
    for table in (article_tags, article_authors):
        conn.execute(update(table).where(table.c.article_id == article_id).values(status="withdrawn"))
    return WriteResult(article_id, "withdrawn", row.version + 1, _changed_scopes(row, withdrawn, site_name, now))


def commit_write(engine: Engine, write, *args, **kwargs) -> WriteResult:
    """Run `upsert` or `withdraw` in its own transaction, bumping the change counters in the same commit."""
    with engine.begin() as conn:
        result = write(conn, *args, **kwargs)
        if result.scopes:
            store.record_changes(conn, result.scopes, articles=[result.article_id])
    return result
