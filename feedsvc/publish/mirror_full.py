"""A full pass of the static mirror in worker processes: `flask export DIR` from scratch at 1M articles.

The work is done by `workers` processes forked after the app is built, each with its own database
connections (the engine's pool is disposed in the child, as SQLAlchemy asks of forked processes) and
its own test client. Pages, nearly every document, are rendered by the views' own Documents for a
batch at once (feedsvc/web/pages.py `export_pages`: the same bytes, no request each); the others are
fetched through the app as feedsvc/publish/mirror.py does (`fetch`: one request each, every encoding
handed over). The parent hands out batches of documents, each worker writes a batch's files (FILE,
FILE.gz, FILE.br; an image's FILE alone) and answers with what it wrote, and the parent alone writes
the manifest, one transaction per batch.

Resumable after a kill (even kill -9): a file is written under DIR/.mirror/tmp/ and renamed into place,
and only then is its stamp recorded, so a rerun fetches exactly the documents whose stamp is missing
or old — at most the batches in flight when the kill came — and leaves every finished one alone. The
temporary files of a killed run are in that one folder (never served: nginx refuses dot-paths) and
are swept when the next pass starts. The workers die with the exporter.
"""
from __future__ import annotations

import ctypes
import gc
import logging
import multiprocessing
import os
import shutil
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import click
from flask import Flask
from flask.testing import FlaskClient

from feedsvc.publish.mirror import (
    GONE,
    INTERNAL,
    STATE_DIR,
    Document,
    Fetched,
    Report,
    fetch,
    file_for,
    last_modified,
    mtime_of,
    write_atomically,
    write_document,
)
from feedsvc.web import db, ratelimit, render_cache
from feedsvc.web.documents import HTML_TYPE
from feedsvc.web.pages import export_pages

if TYPE_CHECKING:
    from feedsvc.publish.mirror import Mirror

log = logging.getLogger(__name__)

# Documents per task: ~0.1-0.3 s of work, so the progress bar moves smoothly and a kill loses little:
# pages take 2-3 ms each, feeds, OPML and sitemaps tens of milliseconds.
BATCH = 64
OTHER_BATCH = 4
SCRATCH = "tmp"   # under DIR/.mirror: where files are written before they are renamed into place
PASS_DOCUMENTS = "pass_documents"   # manifest state: how many documents the running full pass covers
PR_SET_PDEATHSIG = 1   # <linux/prctl.h>
# Documents written without .gz and .br: deploy/nginx/feedsvc.conf serves them with gzip_static and
# brotli_static off (images are compressed already).
UNCOMPRESSED = ("/media/",)


@dataclass(frozen=True)
class Outcome:
    doc: Document
    status: int
    file: str | None = None   # where it was written (status 200)


def scratch_folder(root: Path) -> Path:
    """The folder of files being written; whatever a killed run left in it is thrown away."""
    folder = root / STATE_DIR / SCRATCH
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def export_in_parallel(mirror: Mirror, docs: list[Document], section_versions: dict[str, int],
                       report: Report, workers: int, progress_bar: bool = False) -> None:
    """Bring every document of `docs` up to date with `workers` processes, recording each in the manifest."""
    held = mirror.manifest.stamps([d.url for d in docs])
    pending = [d for d in docs if held.get(d.url) != d.stamp]
    report.unchanged += len(docs) - len(pending)
    batches = _in_batches(pending)
    scratch = scratch_folder(mirror.root)
    mirror.manifest.set(PASS_DOCUMENTS, len(docs))
    with progress(len(docs), shown=progress_bar) as advance:
        advance(len(docs) - len(pending), skipped=True)
        # Forked, so the built app goes to the workers as it is. A worker that dies (killed, out of
        # memory) breaks the pool and ends the pass with an error, not a wait: a rerun resumes.
        context = multiprocessing.get_context("fork")
        # The listing (two Documents an article) is shared with the workers copy-on-write; frozen, no
        # collection in a worker walks it and copies its pages (the gc.freeze documentation's advice
        # for a fork without exec).
        gc.freeze()
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                                 initargs=(mirror.app, mirror.root, scratch, os.getpid())) as pool:
            futures = [pool.submit(_export_batch, batch) for batch in batches]
            try:
                for future in as_completed(futures):
                    outcomes = future.result()
                    _record(mirror, outcomes, section_versions, report)
                    advance(len(outcomes))
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            finally:
                gc.unfreeze()


def _in_batches(docs: list[Document]) -> list[list[Document]]:
    """The work in tasks, the batches of feeds, OPML, sitemaps and files spread evenly among the
    pages': they cost ten times more a document, and all first made the pass's early rate (the
    progress bar's estimate of the time left, and the bench row that projects the whole from its
    first minutes) a fraction of its rate overall."""
    pages = [d for d in docs if d.article_id is not None]
    others = [d for d in docs if d.article_id is None]
    page_batches = [pages[start:start + BATCH] for start in range(0, len(pages), BATCH)]
    other_batches = [others[start:start + OTHER_BATCH] for start in range(0, len(others), OTHER_BATCH)]
    if not page_batches or not other_batches:
        return other_batches + page_batches
    batches, every = [], len(page_batches) / len(other_batches)
    for i, other in enumerate(other_batches):
        batches += page_batches[round(i * every):round((i + 1) * every)]
        batches.append(other)
    return batches


def _record(mirror: Mirror, outcomes: list[Outcome], section_versions: dict[str, int], report: Report) -> None:
    """A worker's batch into the manifest, in one transaction (one fsync, not one per document)."""
    mirror.manifest.db.execute("BEGIN")
    try:
        for outcome in outcomes:
            doc = outcome.doc
            if outcome.file is not None:
                mirror.manifest.put(doc, outcome.file, section_versions.get(doc.section) if doc.section else None)
                report.written += 1
            elif outcome.status in GONE:
                mirror.remove(doc.url, report)
            else:
                log.warning("mirror kept its last copy of %s: the app answered %d", doc.url, outcome.status)
                report.kept += 1
        mirror.manifest.db.execute("COMMIT")
    except BaseException:
        mirror.manifest.db.execute("ROLLBACK")
        raise


# ---- in each worker ----------------------------------------------------------------------------

@dataclass
class _Worker:
    app: Flask
    client: FlaskClient
    root: Path
    scratch: Path
    parent: int


_worker: _Worker | None = None


def _start_worker(app, root: Path, scratch: Path, parent: int) -> None:
    global _worker
    _die_with_parent()
    # The parent's pooled connections must not be used from two processes: this child opens its own.
    db.engine(app).dispose(close=False)
    _worker = _Worker(app, app.test_client(), root, scratch, parent)


def _die_with_parent() -> None:
    """On Linux the kernel kills this worker when the exporter dies (prctl(2) PR_SET_PDEATHSIG), even
    one idle on its task queue; elsewhere a worker notices at its next document (`_export_batch`)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def _export_batch(docs: list[Document]) -> list[Outcome]:
    worker = _worker
    assert worker is not None, "a batch outside a worker"
    pages = [(doc, doc.article_id) for doc in docs if doc.article_id is not None]
    # Pages (nearly every document at a million articles) are rendered by the views' own Documents
    # in one app context for the batch, not requested one by one (pages.export_pages); the others, a
    # few thousand feeds, OPML, sitemaps and files, are fetched through the app.
    with worker.app.app_context():
        rendered = dict(zip((doc for doc, _ in pages), export_pages([(doc.url, article_id) for doc, article_id in pages]),
                            strict=True))
    outcomes = []
    for doc in docs:
        if os.getppid() != worker.parent:   # the exporter was killed: nobody will record this work
            os._exit(1)
        page = rendered.get(doc)
        if page is not None:
            fetched = Fetched(page.status)
            if page.status == 200:
                fetched = Fetched(200, HTML_TYPE, render_cache.compress(page.body), mtime_of(page.last_modified))
        elif doc.url.startswith(UNCOMPRESSED):
            outcomes.append(_export_uncompressed(worker, doc))
            continue
        else:
            with ratelimit.suspended(worker.app):
                fetched = fetch(worker.client, doc.url)
        if fetched.status != 200:
            outcomes.append(Outcome(doc, fetched.status))
            continue
        relative = file_for(doc.url, fetched.content_type)
        mtime = fetched.mtime if fetched.mtime is not None else time.time()
        write_document(worker.root, relative, fetched.bodies, mtime, worker.scratch)
        outcomes.append(Outcome(doc, 200, relative))
    return outcomes


def _export_uncompressed(worker: _Worker, doc: Document) -> Outcome:
    """An image: its file alone, no .gz or .br (nginx never sends those for /media/, and compressing an
    already compressed picture twice was half the time of exporting it: 2.3 against 1.2 ms).
    Siblings an older mirror wrote are left: never served, and a file of MEDIA_DIR may itself be
    named like one."""
    with ratelimit.suspended(worker.app):
        answer = worker.client.get(doc.url, environ_base=INTERNAL, buffered=True)
    if answer.status_code != 200:
        return Outcome(doc, answer.status_code)
    relative = file_for(doc.url, answer.headers.get("Content-Type", ""))
    mtime = last_modified(answer)
    write_atomically(worker.root / relative, answer.get_data(), mtime if mtime is not None else time.time(),
                     worker.scratch)
    return Outcome(doc, 200, relative)


# ---- the progress bar ---------------------------------------------------------------------------

@contextmanager
def progress(total: int, shown: bool) -> Iterator[Callable[..., None]]:
    """click's progress bar (documents done/total, the rate of those fetched, ETA) on stderr; on a pipe
    click writes only its label, so logs stay readable."""
    if not shown:
        yield lambda done, skipped=False: None
        return
    started, fetched = time.perf_counter(), 0
    # The rate goes in the bar's "current item": click draws it on a terminal only (a changed label
    # would be written out as a new line on a pipe).
    with click.progressbar(length=total, label="exporting", file=sys.stderr, show_pos=True, show_eta=True,
                           item_show_func=lambda rate: rate) as bar:
        def advance(done: int, skipped: bool = False) -> None:
            nonlocal fetched
            if not skipped:
                fetched += done
            bar.update(done, f"{fetched / (time.perf_counter() - started):,.0f} docs/s")
        yield advance
