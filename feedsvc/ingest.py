"""Writing articles: the one upsert/withdraw path shared by the import command and the ingest API."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Iterable, Iterator

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from . import store
from .records import Article, Problem, RecordError, article_from_json, article_to_json, parse_record
from .store import article_authors, article_tags, articles, slug_redirects, utc

MAX_FILE_BYTES = 8 * 1024 * 1024
BATCH_SIZE = 500


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


def _scope_names(article: Article, site_name: str) -> dict[str, str]:
    if not article.live:
        return {}
    names = {"site": site_name, f"section:{article.section.key}": article.section.name}
    names.update({f"tag:{t.key}": t.name for t in article.tags})
    names.update({f"author:{a.key}": a.name for a in article.authors})
    return names


def _canonical(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _free_slug(conn: Connection, article: Article) -> str:
    owner = conn.execute(select(articles.c.id).where(articles.c.slug == article.slug)).scalar()
    if owner is None or owner == article.id:
        return article.slug
    if article.record.get("slug"):
        raise RecordError([Problem("slug", f"'{article.slug}' is already the slug of article '{owner}'")])
    # A derived slug that collides gets a suffix from the id, which is unique and stable.
    suffix = "-" + store_safe(article.id)[-12:]
    return article.slug[: 80 - len(suffix)].rstrip("-") + suffix


def store_safe(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def upsert(conn: Connection, article: Article, *, site_name: str, expected_version: int | None = None,
           now: datetime | None = None) -> WriteResult:
    """Create or replace one article inside the caller's transaction."""
    now = now or store.now_utc()
    row = conn.execute(select(articles.c.version, articles.c.updated, articles.c.record, articles.c.slug,
                              articles.c.status, articles.c.article, articles.c.withdrawn_at)
                       .where(articles.c.id == article.id)).first()
    if expected_version is not None and (row.version if row else 0) != expected_version:
        raise VersionConflict(article.id, expected_version, row.version if row else None)
    if row and utc(article.updated) < row.updated:
        raise StaleWrite(article.id, article.updated, row.updated)
    if row and _canonical(json.loads(row.record)) == _canonical(article.record):
        return WriteResult(article.id, "unchanged", row.version)

    article.slug = _free_slug(conn, article)
    withdrawn_at = (row.withdrawn_at if row and row.status == "withdrawn" else now) \
        if article.status == "withdrawn" else None
    values = dict(slug=article.slug, status=article.status, section_key=article.section.key,
                  section_name=article.section.name, published=utc(article.published),
                  updated=utc(article.updated), modified_at=now, withdrawn_at=withdrawn_at,
                  article=article_to_json(article), record=json.dumps(article.record, ensure_ascii=False))
    if row is None:
        try:
            with conn.begin_nested():
                conn.execute(insert(articles).values(id=article.id, version=1, **values))
        except IntegrityError:
            raise VersionConflict(article.id, expected_version or 0, "written concurrently") from None
        version, old = 1, None
    else:
        done = conn.execute(update(articles).where(articles.c.id == article.id, articles.c.version == row.version)
                            .values(version=row.version + 1, **values))
        if done.rowcount != 1:
            raise VersionConflict(article.id, row.version, "written concurrently")
        version, old = row.version + 1, article_from_json(row.article)
        if row.slug != article.slug:
            conn.execute(delete(slug_redirects).where(slug_redirects.c.old_slug == row.slug))
            conn.execute(insert(slug_redirects).values(old_slug=row.slug, article_id=article.id))
    conn.execute(delete(slug_redirects).where(slug_redirects.c.old_slug == article.slug))
    _write_links(conn, article)
    scopes = _scope_names(article, site_name)
    if old is not None:
        scopes = {**_scope_names(old, site_name), **scopes}
    return WriteResult(article.id, "created" if old is None else "updated", version, scopes)


def _write_links(conn: Connection, article: Article) -> None:
    published = utc(article.published)
    conn.execute(delete(article_tags).where(article_tags.c.article_id == article.id))
    conn.execute(delete(article_authors).where(article_authors.c.article_id == article.id))
    if article.tags:
        conn.execute(insert(article_tags), [dict(tag_key=t.key, article_id=article.id, tag_name=t.name,
                                                 status=article.status, published=published)
                                            for t in article.tags])
    conn.execute(insert(article_authors), [dict(author_key=a.key, article_id=article.id, author_name=a.name,
                                                status=article.status, published=published)
                                           for a in article.authors])


def withdraw(conn: Connection, article_id: str, *, site_name: str, expected_version: int | None = None,
             now: datetime | None = None) -> WriteResult:
    """Take an article out of every feed and page, keeping it as a tombstone."""
    row = conn.execute(select(articles).where(articles.c.id == article_id)).first()
    if row is None:
        raise NotFound(article_id)
    if expected_version is not None and row.version != expected_version:
        raise VersionConflict(article_id, expected_version, row.version)
    if row.status == "withdrawn":
        return WriteResult(article_id, "unchanged", row.version)
    now = now or store.now_utc()
    old = article_from_json(row.article)
    old_scopes = _scope_names(old, site_name)
    old.status = "withdrawn"
    record = dict(json.loads(row.record), status="withdrawn")
    done = conn.execute(update(articles).where(articles.c.id == article_id, articles.c.version == row.version)
                        .values(status="withdrawn", withdrawn_at=now, modified_at=now, version=row.version + 1,
                                article=article_to_json(old), record=json.dumps(record, ensure_ascii=False)))
    if done.rowcount != 1:
        raise VersionConflict(article_id, row.version, "written concurrently")
    for table in (article_tags, article_authors):
        conn.execute(update(table).where(table.c.article_id == article_id).values(status="withdrawn"))
    return WriteResult(article_id, "withdrawn", row.version + 1, old_scopes)


def commit_write(engine: Engine, write, *args, **kwargs) -> WriteResult:
    """Run `upsert` or `withdraw` in its own transaction, bumping the change counters in the same commit."""
    with engine.begin() as conn:
        result = write(conn, *args, **kwargs)
        if result.scopes:
            store.record_changes(conn, result.scopes)
    return result


# ---- import from files ----------------------------------------------------------------------

@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: list[str] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)

    @property
    def stored(self) -> int:
        return self.created + self.updated

    def count(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)


def source_files(paths: Iterable[str | Path]) -> list[Path]:
    """Every .json and .jsonl file named or found below the named folders, in a stable order."""
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix in (".json", ".jsonl") and p.is_file()))
        else:
            found.append(path)
    return found


def read_records(path: Path) -> Iterator[tuple[str, object, int]]:
    """(source label, parsed JSON or a RecordError, bytes consumed) for each record in a file."""
    if path.suffix == ".jsonl":
        with path.open("rb") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    yield f"{path}:{number}", _decode(line, f"{path}:{number}"), len(line)
        return
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        yield str(path), RecordError([Problem("(file)", f"is {size} bytes; a record file may have at most "
                                                        f"{MAX_FILE_BYTES}")], str(path)), size
        return
    yield str(path), _decode(path.read_bytes(), str(path)), size


def _decode(raw: bytes, source: str):
    if len(raw) > MAX_FILE_BYTES:
        return RecordError([Problem("(record)", f"is {len(raw)} bytes; at most {MAX_FILE_BYTES} allowed")], source)
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return RecordError([Problem("(file)", f"is not UTF-8 (byte {exc.start})")], source)
    except json.JSONDecodeError as exc:
        return RecordError([Problem("(file)", f"is not valid JSON: {exc.msg} at line {exc.lineno} "
                                              f"column {exc.colno}")], source)


def import_files(engine: Engine, paths: Iterable[str | Path], *, site_url: str, site_name: str,
                 progress=None) -> ImportReport:
    """Validate and upsert every record; good records are stored even when others are bad."""
    report = ImportReport()
    seen: dict[str, str] = {}
    batch: list[tuple[str, Article]] = []
    for path in source_files(paths):
        for source, data, size in read_records(path):
            article = _parse(data, source, site_url, seen, report)
            if article is not None:
                batch.append((source, article))
            if len(batch) >= BATCH_SIZE:
                _store_batch(engine, batch, site_name, report)
                batch = []
            if progress is not None:
                progress(size)
    if batch:
        _store_batch(engine, batch, site_name, report)
    return report


def _parse(data, source: str, site_url: str, seen: dict, report: ImportReport) -> Article | None:
    try:
        if isinstance(data, RecordError):
            raise data
        article = parse_record(data, site_url=site_url, source=source)
        if article.id in seen:
            raise RecordError([Problem("id", f"'{article.id}' appears twice in this import; "
                                             f"the first is in {seen[article.id]} and was kept")], source)
    except RecordError as error:
        report.errors.append(error)
        return None
    seen[article.id] = source
    return article


def _store_batch(engine: Engine, batch: list[tuple[str, Article]], site_name: str, report: ImportReport) -> None:
    """One transaction per batch; a savepoint per record so one failure never takes the others down."""
    changed: dict[str, str] = {}
    with engine.begin() as conn:
        for source, article in batch:
            try:
                with conn.begin_nested():
                    result = upsert(conn, article, site_name=site_name)
            except RecordError as error:
                error.source = source
                report.errors.append(RecordError(error.problems, source))
                continue
            except (StaleWrite, VersionConflict) as error:
                report.stale.append(f"{source}: {error}")
                continue
            report.count(result.outcome)
            changed.update(result.scopes)
        if changed:
            store.record_changes(conn, changed)
