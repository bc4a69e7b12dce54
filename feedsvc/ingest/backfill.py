"""Backfilling image facts: stored articles' local images (the lead and those in the body) probed and
their missing renditions made, as ingest does for every article stored since it learned to
(`flask --app wsgi media backfill`).

An article stored before then (or before a rendition size was configured, or while its file was not
yet uploaded) keeps what its record declared until this runs: its record as given is checked again
through records.checked_media, in worker processes as an import parses, and the article is written
through write.rewrite_derived only when what it shows changes (see there for what a rewrite moves and
what it leaves, `updated` among them). A second run finds nothing to change and writes nothing.

Articles are walked in id order and the last id whose batch is committed is kept in a small state
file after each batch, so a run killed at any point resumes there: a batch cut off midway was not
committed and is done again, which changes nothing twice. The file goes when the walk ends.

One article that cannot be checked (an unreadable file, a stored text that no longer decodes) is
reported with its id, the file and why, and the walk goes on.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import orjson
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from feedsvc import store
from feedsvc.ingest.images import ImageSettings, one_stat_per_file
from feedsvc.ingest.importer import in_workers
from feedsvc.ingest.records import Article, article_from_json, checked_media, encode_article
from feedsvc.ingest.sanitize import without_empty_figures
from feedsvc.ingest.write import ConcurrentWrite, Rederived, WriteResult, rewrite_derived
from feedsvc.store import articles

BATCH_SIZE = 200
# Below this many articles, starting worker processes costs more than it saves.
PARALLEL_MIN_ARTICLES = 2000
# An import's warning that ingest made the stored article right (images.checked_image, body_images.
# checked_body); every other warning says a file could not be used, which stays true on every run.
CORRECTED = "; corrected"


@dataclass(frozen=True)
class ArticleFinding:
    """What this run found about one article (a correction made, a file refused, a write skipped): its id,
    the field or file, and why. Not records.Problem (a field of an incoming record) nor validate's Problem
    (a rule a served document breaks): this one names a stored article and is only ever printed."""
    article_id: str
    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.article_id}: {self.where}: {self.reason}"


@dataclass
class BackfillReport:
    checked: int = 0
    rewritten: list[str] = field(default_factory=list)                  # ids, in the order written
    corrections: list[ArticleFinding] = field(default_factory=list)     # what the rewrites corrected
    problems: list[ArticleFinding] = field(default_factory=list)        # files refused or missing, articles not checked
    skipped: list[ArticleFinding] = field(default_factory=list)         # written by someone else while being checked
    resumed_after: str | None = None

    def found(self) -> dict[str, list[ArticleFinding]]:
        return {"corrected": self.corrections, "skipped": self.skipped, "error": self.problems}


@dataclass
class _Checked:
    """What a worker found for one stored article: its new stored form when that differs."""
    article_id: str
    version: int
    article_json: bytes | None = None
    warnings: list[tuple[str, str]] = field(default_factory=list)
    error: tuple[str, str] | None = None                         # (file or field, why) when it could not be checked


def _check(row: tuple[str, int, str, str], site_url: str, images: ImageSettings) -> _Checked:
    article_id, version, article_text, record_text = row
    try:
        article = article_from_json(article_text, orjson.loads(record_text))
        before = encode_article(article)
        image, body, body_images, warnings = checked_media(
            _declared_image(article), without_empty_figures(article.body_html), site_url, images)
        article.image, article.body_html, article.body_images = image, body, body_images
        after = encode_article(article)
    except OSError as exc:   # a file unreadable past probing (permissions), or a rendition not writable
        return _Checked(article_id, version, error=(str(exc.filename or "(file)"), exc.strerror or str(exc)))
    except Exception as exc:  # noqa: BLE001 - one article's trouble is reported, and the walk goes on
        return _Checked(article_id, version, error=("(stored article)", f"{type(exc).__name__}: {exc}"))
    # Compared as values: the stored record's keys are sorted (records.encode_record), so an image taken
    # from it lists its fields in another order than the import, which took them as the CMS sent them.
    return _Checked(article_id, version, after if orjson.loads(after) != orjson.loads(before) else None,
                    [(w.field, w.reason) for w in warnings])


def _declared_image(article: Article) -> dict | None:
    """The lead image as the record declares it, as an import starts from, at the URL the stored article
    shows: a migration may have moved that since (0008 made the site's own links site paths)."""
    declared = article.record.get("image")
    if not declared:
        return None
    return dict(declared, url=article.image["url"]) if article.image else dict(declared)


def _check_chunk(rows: list[tuple[str, int, str, str]], site_url: str, images: ImageSettings) -> list[_Checked]:
    with one_stat_per_file():
        return [_check(row, site_url, images) for row in rows]


def _stored_chunks(engine: Engine, after: str | None) -> Iterator[list[tuple[str, int, str, str]]]:
    """The stored articles after the id `after`, in id order, a batch at a time; each batch read in a
    short transaction of its own, so the walk holds no snapshot open while it writes."""
    while True:
        query = select(articles.c.id, articles.c.version, articles.c.article, articles.c.record)
        if after is not None:
            query = query.where(articles.c.id > after)
        with engine.connect() as conn:
            rows = [tuple(row) for row in conn.execute(query.order_by(articles.c.id).limit(BATCH_SIZE))]
        if not rows:
            return
        yield rows
        after = rows[-1][0]


class ProgressFile:
    """Where a walk is: the last id done, for this database and these image settings (a run with
    other renditions configured starts again). Written whole and renamed into place, so a kill leaves
    the previous state or the new one."""

    def __init__(self, path: Path, database: str, images: ImageSettings):
        self.path = path
        self.mark = {"database": database,
                     "images": hashlib.sha256(repr(images).encode("utf-8")).hexdigest()[:16]}

    def resume_point(self) -> str | None:
        try:
            state = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return None
        except ValueError:   # a file not of our making, or cut short by a full disk: start again
            return None
        if {k: state.get(k) for k in self.mark} != self.mark:
            return None
        return state.get("after")

    def save(self, after: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(dict(self.mark, after=after), ensure_ascii=False), "utf-8")
        os.replace(temporary, self.path)

    def finish(self) -> None:
        self.path.unlink(missing_ok=True)


def default_state_path(instance: Path, database: str) -> Path:
    """The walk's place in the instance folder, one file per database: two databases sharing the
    folder (a site and its staging copy, parallel test runs) never resume from or delete each
    other's place."""
    return instance / f"media-backfill-{hashlib.sha256(database.encode('utf-8')).hexdigest()[:12]}.json"


def remaining(engine: Engine, after: str | None) -> int:
    """How many stored articles a walk resumed after `after` still has to check."""
    query = select(func.count()).select_from(articles)
    with engine.connect() as conn:
        return conn.execute(query if after is None else query.where(articles.c.id > after)).scalar_one()


def backfill(engine: Engine, *, site_url: str, site_name: str, images: ImageSettings, progress_file: ProgressFile,
             workers: int = 0, progress: Callable[[int], None] | None = None,
             tell: Callable[[str, ArticleFinding], None] | None = None, after: str | None = None) -> BackfillReport:
    """Check every stored article after the id `after` (all of them: None); see the module's docstring.
    `tell(kind, finding)` hears each correction, skip and problem ("corrected", "skipped", "error") as
    its batch is done, so a run killed after hours has reported what it did."""
    report = BackfillReport(resumed_after=after)
    for chunk in in_workers(_check_chunk, _stored_chunks(engine, after), workers, site_url, images):
        changed = []
        told = {kind: len(found) for kind, found in report.found().items()}
        for checked in chunk:
            if checked.error is not None:
                report.problems.append(ArticleFinding(checked.article_id, *checked.error))
                continue
            notes = [ArticleFinding(checked.article_id, where, reason) for where, reason in checked.warnings]
            report.problems += [note for note in notes if not note.reason.endswith(CORRECTED)]
            if checked.article_json is not None:
                changed.append(Rederived(article_from_json(checked.article_json), checked.article_json,
                                         checked.version))
                report.corrections += [note for note in notes if note.reason.endswith(CORRECTED)]
        if changed:
            _store(engine, changed, site_name, report)
        report.checked += len(chunk)
        if tell is not None:
            for kind, found in report.found().items():
                for finding in found[told[kind]:]:
                    tell(kind, finding)
        progress_file.save(chunk[-1].article_id)
        if progress is not None:
            progress(len(chunk))
    progress_file.finish()
    return report


def _store(engine: Engine, batch: list[Rederived], site_name: str, report: BackfillReport) -> None:
    """One transaction for the batch; if another writer got there first, one article at a time, and an
    article written meanwhile is reported (a later run checks it)."""
    try:
        _commit(engine, batch, site_name)
        report.rewritten += [r.article.id for r in batch]
        return
    except ConcurrentWrite:
        pass
    for one in batch:
        try:
            _commit(engine, [one], site_name)
            report.rewritten.append(one.article.id)
        except ConcurrentWrite:
            report.skipped.append(ArticleFinding(one.article.id, "(article)", "written by another writer while it "
                                                 "was checked; run the backfill again to check it"))


def _commit(engine: Engine, batch: list[Rederived], site_name: str) -> list[WriteResult]:
    with engine.begin() as conn:
        results = rewrite_derived(conn, batch, site_name=site_name)
        scopes = {scope: name for result in results for scope, name in result.scopes.items()}
        if scopes:
            store.record_changes(conn, scopes, articles=[r.article_id for r in results if r.scopes])
    return results
