"""The static mirror: every feed, OPML, sitemap and page as files, byte for byte what the app serves.

    flask --app wsgi export DIR            bring DIR up to date (only what changed), then exit
    flask --app wsgi export DIR --watch    ... then keep it up to date, polling the change counters
    flask --app wsgi export DIR --watch --from-now
                                           an empty DIR: no full pass, only what changes from now on

Every document is fetched through the app itself (`app.test_client()`), so the mirror holds exactly
the bytes a client gets from the app: FILE, and beside it FILE.gz and FILE.br for nginx's
gzip_static / brotli_static (the app's own compressed bytes where it compresses, else compressed
here). Each file is written under a temporary dot-name in its folder and then os.replace()d, so a
reader sees the old file or the new one, never part of one. In watch mode a feed's plain file goes
first and its .gz and .br follow from a thread (MirrorFiles): a fresh copy never waits for them.
Files get the document's Last-Modified as their mtime, so nginx announces the same Last-Modified as
the app, on every mirror host alike.
Only a 404 or 410 takes a file away: when the app fails for a document (5xx) the last good copy
stays and is fetched again on the next pass, so nginx keeps serving it rather than the failure.

Incremental: DIR/.mirror/manifest.sqlite keeps a stamp per document that changes whenever its bytes
may change — the scope's change counter for feeds, the article's (and its section's) version for
pages, counts and lastmods for sitemaps — and a run fetches only documents whose stamp differs.
Query-string variants (feed pages 2+, ?limit=, OPML ?format=) are not files; deploy/nginx passes
them to the app.

Watch mode starts watching at once and runs its first full pass in the other thread, so writes and
takedowns never wait for a start-up over many stale documents. It reads scope_state every --interval
seconds (only the rows changed lately: mirror_scopes.py; and the site's row between two feed
documents, to put a newer write's feeds first; on SQLite not while nothing was committed:
store_commits.py); a change re-exports the changed scopes' feeds, the
changed articles' pages and the pages of the translations they list (translated_pages), and a scope
gone from it (a renamed key, feedsvc/ingest/rename.py) has its feed files deleted: nginx then passes
the old URLs to the app, which answers 301 to the new key. No redirect files are written. The
sitemap index and monthly sitemaps need scans of the article table, so they follow at most every
SITEMAP_SECONDS — at once when a page left the mirror (a takedown: the feeds thread, which looks for
one before each feed document it writes, deletes its files and rewrites the sitemaps, and a monthly
sitemap left with no article is deleted too); the news sitemap follows every site change (and every
NEWS_SECONDS, as its 48-hour window moves with the clock). OPML and the directories list every scope
(tens of thousands of tags) and change with every write: they follow at most every LISTS_SECONDS, and
at once when a scope came, left or changed its name.
"""
from __future__ import annotations

import itertools
import json
import logging
import os
import sqlite3
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Callable, Iterable, Mapping

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from werkzeug.exceptions import HTTPException

from feedsvc import store
from feedsvc.ingest.records import article_from_json
from feedsvc.profiles import Profile
from feedsvc.publish.mirror_scopes import ScopeStates
from feedsvc.publish.store_commits import StoreCommits, moved
from feedsvc.render import profiles as shaping
from feedsvc.render import sitemaps
from feedsvc.render.feeds import FORMATS, Scope, Site
from feedsvc.render.feeds.urls import FEEDS, OPML, feed_path, parse_feed_path
from feedsvc.store import articles
from feedsvc.web import db, documents, id_authority, profile_feeds, ratelimit, render_cache
from feedsvc.web.http import ALL_BODIES, strip_encoding

log = logging.getLogger(__name__)

EXPORT_REVISION = "1"       # bump when the mirror's layout changes: every document is fetched again
STATE_DIR = ".mirror"
MANIFEST = "manifest.sqlite"
SIBLINGS = {"gzip": ".gz", "br": ".br"}
# Requests of the exporter carry this, so metrics and the access log leave them out.
INTERNAL = {"feedsvc.internal": True, "REMOTE_ADDR": "127.0.0.1"}
SITEMAP_SECONDS = 60
# OPML and the directories list every scope and change with every write (OPML's dateModified): at 28,000
# scopes the seven OPML files (16 MB each) took the watch 17 CPU-s per write with their compressions
# (in process, bench corpus of 100,000 articles). They follow in the other thread, at most this often,
# or at once when a scope came, left (a rename) or changed its name.
LISTS_SECONDS = 60
NEWS_SECONDS = 300
# Article pages, where the app has the route (issue 5): canonical and AMP.
PAGE_PATHS = ("/articles/{slug}", "/amp/{slug}")
PAGE_SWEEP = 10
# The feeds thread looks back this far for articles that left public view, so a write committed a
# little after a later-stamped one is not missed (removing what is already gone costs nothing).
TAKEDOWN_OVERLAP = timedelta(seconds=10)
# How often the feeds loop looks, between two documents, for takedowns and for a newer write to put first.
LOOK_SECONDS = 0.1
NICENESS = 10   # of the threads that compress the watch's .gz and .br (MirrorFiles)
MAX_PENDING_COMPRESSIONS = 256   # documents waiting for them (a write's fan-out is ~200)
MONTH_SITEMAPS = "/sitemaps/articles-"  # pages made stale by a section change refreshed per watch cycle
# Only these answers take a document out of the mirror; any other failure keeps the last good copy,
# so nginx never falls through to an app that is failing for it.
GONE = (404, 410)


# ---- what the mirror holds ----------------------------------------------------------------------

@dataclass(frozen=True)
class Document:
    url: str            # path the app answers, no query string
    stamp: str          # differs whenever the bytes may differ
    article_id: str | None = None
    section: str | None = None


def feed_documents(scope_states: Iterable[store.ScopeState], salt: str,
                   profiles: Iterable[Profile] = (), only: Iterable[str] | None = None, *,
                   lists: bool = True) -> list[Document]:
    """Every format of every scope's first page, plus OPML and the feed directory; with `profiles`,
    each profile's feed of every scope in every format it allows, its OPML, and the profile directory.
    With `only`, the feeds of those scopes alone (the lists are still whole); without `lists`, no
    OPML or directory (list_documents)."""
    states = {s.scope: s for s in scope_states}
    digests = {p.name: p.digest() for p in profiles}
    profiles = sorted(profiles, key=lambda p: p.name)
    docs = []
    scope_ids = ["site", *sorted(s for s in states if s != "site")]
    if only is not None:
        wanted = set(only)
        scope_ids = [s for s in scope_ids if s in wanted]
    for scope_id in scope_ids:
        state = states.get(scope_id)
        stamp = f"{salt}|{state.version}|{state.modified_at.isoformat()}" if state else f"{salt}|0"
        scope = Scope.from_id(scope_id)
        docs.extend(Document(feed_path(scope, fmt), stamp) for fmt in FORMATS)
        docs.extend(Document(shaping.profile_feed_path(p.name, scope, fmt), f"{stamp}|{digests[p.name]}")
                    for p in profiles for fmt in p.formats)
    return docs + list_documents(states.values(), salt, profiles) if lists else docs


def list_documents(scope_states: Iterable[store.ScopeState], salt: str, profiles: Iterable[Profile] = ()) -> list[Document]:
    """OPML and the feed directory, each profile's OPML, and the profile directory: documents about
    every scope, whose bytes change with any scope's counter (OPML's dateModified, the directory's
    most recently active tags and authors)."""
    states = sorted(scope_states, key=lambda s: s.scope)
    digests = {p.name: p.digest() for p in profiles}
    profiles = sorted(profiles, key=lambda p: p.name)
    docs = []
    every = f"{salt}|" + ";".join(f"{s.scope}={s.version}:{s.name}" for s in states)
    docs += [Document(OPML, every), Document(FEEDS, every)]
    docs += [Document(shaping.profile_opml_path(p.name), f"{every}|{digests[p.name]}") for p in profiles]
    if profiles:
        listed = f"{salt}|" + ";".join(digests[p.name] for p in profiles)
        docs += [Document(f"{shaping.PROFILE_DIRECTORY}.json", listed), Document(shaping.PROFILE_DIRECTORY, listed)]
    return docs


def fixed_documents(app, salt: str) -> list[Document]:
    """robots.txt, the static files feeds point at (the browser stylesheet, logo, icon), and the article
    images with their renditions (/media/, as MEDIA_DIR holds them: ingest made the renditions)."""
    docs = [Document("/robots.txt", salt)]
    if app.static_folder:
        docs += _folder_documents(Path(app.static_folder), app.static_url_path, salt)
    return docs + _folder_documents(Path(app.config["MEDIA_DIR"]), "/media", salt)


def _folder_documents(folder: Path, url_path: str, salt: str) -> list[Document]:
    """A document per file below `folder`, stamped by size and mtime; dot-files (locks, files being
    written) are not documents."""
    if not folder.is_dir():
        return []
    docs = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue
        stat = path.stat()
        docs.append(Document(f"{url_path}/{relative.as_posix()}", f"{salt}|{stat.st_size}|{stat.st_mtime_ns}"))
    return docs


def sitemap_documents(app, conn: Connection, salt: str) -> list[Document]:
    """The sitemap index and every monthly sitemap (a grouped scan of the articles)."""
    per_file = sitemaps.urls_per_file(app.config["SITE_URL"], app.config["SITEMAP_MAX_URLS"],
                                      app.config["SITEMAP_MAX_BYTES"])
    files = sitemaps.monthly_sitemaps(conn, per_file)
    index = f"{salt}|" + ";".join(f"{f.path}:{f.lastmod.isoformat()}" for f in files)
    return [Document(sitemaps.INDEX_PATH, index)] + [
        Document(f.path, f"{salt}|{f.urls}|{f.lastmod.isoformat()}") for f in files]


def news_document(site_version: int, salt: str) -> Document:
    return Document(sitemaps.NEWS_PATH, f"{salt}|{site_version}|{int(time.time() // NEWS_SECONDS)}")


def page_routes(app) -> list[str]:
    """The article page URL patterns this app serves (none until the pages blueprint is there)."""
    adapter = app.url_map.bind("localhost")
    found = []
    for pattern in PAGE_PATHS:
        try:
            adapter.match(pattern.format(slug="probe"), method="GET")
        except HTTPException:
            continue
        found.append(pattern)
    return found


def page_documents(conn: Connection, routes: list[str], salt: str, section_versions: dict[str, int],
                   changed_since: datetime | None = None):
    """(live page documents, ids of the articles read) — all articles, or those written since a time."""
    query = select(articles.c.id, articles.c.slug, articles.c.status, articles.c.version, articles.c.section_key)
    if changed_since is not None:
        query = query.where(articles.c.modified_at >= changed_since)
    docs, seen = [], []
    for row in conn.execution_options(stream_results=True, yield_per=5000).execute(query):
        seen.append(row.id)
        if row.status != store.LIVE or not routes:
            continue
        section = f"section:{row.section_key}"
        stamp = f"{salt}|{row.version}|{section_versions.get(section, 0)}"
        docs.extend(Document(r.format(slug=row.slug), stamp, row.id, section) for r in routes)
    return docs, seen


def translated_pages(conn: Connection, routes: list[str], salt: str, section_versions: dict[str, int],
                     changed_since: datetime) -> list[Document]:
    """Pages of the translations of the articles written since a time. A page links only translations
    that list it back (feedsvc/render/translations.py), so the articles a changed one lists are the
    only pages that can show it: they are written again, with a stamp naming the write."""
    if not routes:
        return []
    marks: dict[str, list[str]] = {}
    for row in conn.execute(select(articles.c.id, articles.c.version, articles.c.article).where(
            articles.c.modified_at >= changed_since, articles.c.article.contains('"translations":'))):
        for other in article_from_json(row.article).translations:
            marks.setdefault(other, []).append(f"{row.id}.{row.version}")
    docs, ids = [], sorted(marks)
    for start in range(0, len(ids), 500):
        for page in conn.execute(select(articles.c.id, articles.c.slug, articles.c.version, articles.c.section_key)
                                 .where(articles.c.id.in_(ids[start:start + 500]), articles.c.status == store.LIVE)):
            section = f"section:{page.section_key}"
            stamp = f"{salt}|{page.version}|{section_versions.get(section, 0)}|{'+'.join(sorted(marks[page.id]))}"
            docs.extend(Document(r.format(slug=page.slug), stamp, page.id, section) for r in routes)
    return docs


# ---- the manifest -------------------------------------------------------------------------------

class Manifest:
    """What the mirror holds (url -> file, stamp) and how current it is; SQLite, so 1M pages stay cheap."""

    def __init__(self, root: Path):
        folder = root / STATE_DIR
        folder.mkdir(parents=True, exist_ok=True)
        # Made in one thread and used in another by watch() (each Manifest by one thread at a time).
        self.db = sqlite3.connect(folder / MANIFEST, isolation_level=None, timeout=30, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        # No fsync per statement (each is its own transaction): after a write, the watch put a document's
        # row 200 times and these syncs were a twentieth of its time (bench row `fanout-mirror`). WAL
        # keeps the file consistent; what a power cut can lose is the last few rows, whose documents
        # then carry an old stamp and are fetched again (https://www.sqlite.org/pragma.html#pragma_synchronous).
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS documents (url TEXT PRIMARY KEY, file TEXT NOT NULL, "
                        "stamp TEXT NOT NULL, article_id TEXT, section TEXT, section_version INTEGER)")
        self.db.execute("CREATE INDEX IF NOT EXISTS documents_article ON documents (article_id)")
        self.db.execute("CREATE INDEX IF NOT EXISTS documents_section ON documents (section, section_version)")
        self.db.execute("CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, value TEXT NOT NULL)")

    def stamps(self, urls: list[str]) -> dict[str, str]:
        found = {}
        for start in range(0, len(urls), 500):
            chunk = urls[start:start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(self.db.execute(f"SELECT url, stamp FROM documents WHERE url IN ({marks})", chunk))
        return found

    def files_of_article(self, article_id: str) -> dict[str, str]:
        return dict(self.db.execute("SELECT url, file FROM documents WHERE article_id = ?", (article_id,)))

    def stale_pages(self, section_versions: dict[str, int], limit: int) -> list[tuple[str, str]]:
        """(url, article id) of pages written before their section's latest change."""
        found = []
        for section, version in section_versions.items():
            found += self.db.execute("SELECT url, article_id FROM documents WHERE section = ? AND "
                                     "section_version < ? LIMIT ?", (section, version, limit - len(found)))
            if len(found) >= limit:
                break
        return found

    def put(self, doc: Document, file: str, section_version: int | None) -> None:
        self.db.execute("INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?, ?, ?)",
                        (doc.url, file, doc.stamp, doc.article_id, doc.section, section_version))

    def file_of(self, url: str) -> str | None:
        row = self.db.execute("SELECT file FROM documents WHERE url = ?", (url,)).fetchone()
        return row[0] if row else None

    def drop(self, url: str) -> None:
        self.db.execute("DELETE FROM documents WHERE url = ?", (url,))

    def urls_under(self, prefix: str) -> list[str]:
        # A range on the primary key, not a scan of every page's row.
        return [url for (url,) in self.db.execute("SELECT url FROM documents WHERE url >= ? AND url < ?",
                                                  (prefix, prefix + "\U0010ffff"))]

    def holds_documents(self) -> bool:
        return self.db.execute("SELECT 1 FROM documents LIMIT 1").fetchone() is not None

    def urls(self) -> set[str]:
        return {url for (url,) in self.db.execute("SELECT url FROM documents")}

    def get(self, name: str, default=None):
        row = self.db.execute("SELECT value FROM state WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row else default

    def set(self, name: str, value) -> None:
        self.db.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", (name, json.dumps(value)))

    def close(self) -> None:
        self.db.close()


# ---- writing files ------------------------------------------------------------------------------

def file_for(url: str, content_type: str) -> str:
    """Where a URL lives under DIR: its path, with .html added to extension-less HTML (so /feeds and
    the folder feeds/ can sit side by side, and nginx's `try_files $uri $uri.html` finds it)."""
    relative = url.lstrip("/")
    parts = relative.split("/")
    if not relative or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        raise ValueError(f"refusing to mirror {url!r}")
    if content_type.startswith("text/html") and not relative.endswith(".html"):
        relative += ".html"
    return relative


def write_document(root: Path, relative: str, bodies: Mapping[str, bytes], mtime: float,
                   scratch: Path | None = None) -> None:
    """A document's files: FILE.gz and FILE.br first, FILE last (nginx looks for FILE before its siblings)."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    for encoding, suffix in SIBLINGS.items():
        write_atomically(path.with_name(path.name + suffix), bodies[encoding], mtime, scratch, folder_made=True)
    write_atomically(path, bodies["identity"], mtime, scratch, folder_made=True)


def write_atomically(path: Path, data: bytes, mtime: float, scratch: Path | None = None, *,
                     folder_made: bool = False) -> None:
    """Written under a temporary name (in `scratch` if given, a folder on the same file system), then renamed."""
    if not folder_made:
        path.parent.mkdir(parents=True, exist_ok=True)
    temporary = (scratch or path.parent) / f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp"
    # os.open/os.write, not open(): no buffered file object for a body written in one call.
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        written = memoryview(data)
        while written:
            written = written[os.write(handle, written):]
        os.utime(handle, (mtime, mtime))
    finally:
        os.close(handle)
    os.replace(temporary, path)


def remove_files(root: Path, relative: str) -> None:
    for suffix in ("", *SIBLINGS.values()):
        try:
            (root / (relative + suffix)).unlink()
        except FileNotFoundError:
            pass


class MirrorFiles:
    """The files of a mirror, written by several threads (watch mode's two loops) without mixing versions.

    `write(..., later=True)` (the watch's feeds loop) puts the plain file in place at once and its .gz and
    .br a moment after, compressed in a thread beside the next document's render: a feed's
    compressions (gzip 6 and brotli 8, ~18 ms on a 350 KiB feed: docs/mirror-compression.md) were half of the time to a
    fresh copy. A stale .gz or .br must never sit beside a newer plain file, since nginx's gzip_static
    and brotli_static pick a sibling by its name alone (https://nginx.org/en/docs/http/ngx_http_gzip_static_module.html):
    so the old siblings are deleted before the new plain file is renamed into place (meanwhile nginx
    serves the plain file to every client, the old version until the rename and the new one after),
    and the new siblings are written only if no newer write or removal of the document came since.
    """

    def __init__(self, root: Path, threads: int = 2):
        self.root, self.threads = root, threads
        self._lock = threading.Lock()       # held around file changes only, never around a compression
        self._latest: dict[str, int] = {}   # relative -> the write whose siblings are still to come
        self._writes = itertools.count()
        self._pool: ThreadPoolExecutor | None = None
        self._pending: set[Future] = set()

    def write(self, relative: str, bodies: Mapping[str, bytes], mtime: float, *, later: bool = False) -> None:
        if not later:
            packed = {encoding: bodies[encoding] for encoding in ("identity", *SIBLINGS)}   # compressed unlocked
            with self._lock:
                self._latest.pop(relative, None)   # a pending older copy's siblings are not wanted any more
                write_document(self.root, relative, packed, mtime)
            return
        path = self.root / relative
        with self._lock:
            pending = list(self._pending) if len(self._pending) >= MAX_PENDING_COMPRESSIONS else []
        if pending:   # the bodies they hold are bounded
            wait(pending, return_when=FIRST_COMPLETED)
        with self._lock:
            write = next(self._writes)
            self._latest[relative] = write
            path.parent.mkdir(parents=True, exist_ok=True)
            for suffix in SIBLINGS.values():
                path.with_name(path.name + suffix).unlink(missing_ok=True)
            write_atomically(path, bodies["identity"], mtime, folder_made=True)
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="mirror-compress",
                                                initializer=_yield_cpu)
            compressing = self._pool.submit(self._siblings, relative, bodies, mtime, write)
            self._pending.add(compressing)
        # Each leaves the set as it ends: sifting the whole set before every write took 1.4 ms a feed
        # (cProfile, 200 pending while a write's fan-out was compressed).
        compressing.add_done_callback(self._forget)

    def _forget(self, compressing: Future) -> None:
        with self._lock:
            self._pending.discard(compressing)

    def _siblings(self, relative: str, bodies: Mapping[str, bytes], mtime: float, write: int) -> None:
        try:
            packed = {encoding: bodies[encoding] for encoding in SIBLINGS}   # zlib and brotli release the GIL
            path = self.root / relative
            with self._lock:
                if self._latest.get(relative) != write:
                    return   # a newer copy or a removal came meanwhile: these would be stale
                del self._latest[relative]
                for encoding, suffix in SIBLINGS.items():
                    write_atomically(path.with_name(path.name + suffix), packed[encoding], mtime, folder_made=True)
        except Exception:   # nginx serves the plain file meanwhile; the next change writes them again
            log.exception("mirror could not write the compressed copies of %s", relative)

    def remove(self, relative: str) -> None:
        with self._lock:
            self._latest.pop(relative, None)
            remove_files(self.root, relative)

    def settle(self) -> None:
        """Wait until every compressed copy due is written."""
        with self._lock:
            pending = list(self._pending)
        wait(pending)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _yield_cpu() -> None:
    """Lowers the calling thread's priority (NICENESS more): a render waiting for a core, the app's or
    the next feed's, goes before compressed copies that nginx can do without for a moment. Linux keeps
    a nice value per thread (setpriority(2), "Bugs"; pthreads(7)), so this thread alone yields."""
    thread = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + NICENESS))
    except (AttributeError, OSError):   # no per-thread priorities here: compressions compete as equals
        pass


@dataclass
class Fetched:
    status: int
    content_type: str = ""
    bodies: Mapping[str, bytes] = field(default_factory=dict)  # identity, gzip, br
    mtime: float | None = None


def _validator(response) -> str | None:
    """The ETag without its encoding suffix: the same for every encoding of one version."""
    tag = response.headers.get("ETag")
    return None if tag is None else strip_encoding(tag.strip('"'))


def fetch(client, url: str, *, compress_later: bool = False) -> Fetched:
    """A document as the app serves it, in every encoding; compressed here where the app does not.
    With `compress_later`, the app's own encodings come back as its lazy mapping (render_cache.Encodings):
    each compressed when first read, so the plain file can be written before they are made."""
    handed: list[Mapping[str, bytes]] = []   # the app's bodies in every encoding, where it keeps them (feeds...)
    plain = client.get(url, environ_base={**INTERNAL, ALL_BODIES: handed}, buffered=True)
    if plain.status_code != 200:
        return Fetched(plain.status_code)
    identity = plain.get_data()
    every: Mapping[str, bytes] = handed[0] if handed else {}
    if compress_later and every.get("identity") == identity and all(e in every for e in SIBLINGS):
        return Fetched(200, plain.headers.get("Content-Type", ""), every, last_modified(plain))
    bodies = {"identity": identity}
    if every.get("identity") == identity:
        bodies.update((encoding, every[encoding]) for encoding in SIBLINGS if encoding in every)
    # An answer that does not vary by encoding (a static file, an image) has no compressed copy to ask
    # for: made here at once, not after two more requests that would answer the same bytes.
    varies = "accept-encoding" in plain.headers.get("Vary", "").lower()
    for encoding in (set(SIBLINGS) - set(bodies)) if varies else ():
        packed = client.get(url, headers={"Accept-Encoding": encoding}, environ_base=INTERNAL, buffered=True)
        # Taken only when it is the same version (a write may land between the two requests).
        if (packed.status_code == 200 and packed.headers.get("Content-Encoding") == encoding
                and _validator(packed) == _validator(plain)):
            bodies[encoding] = packed.get_data()
    if len(bodies) < 3:
        bodies = {**render_cache.compress(identity), **bodies}
    return Fetched(200, plain.headers.get("Content-Type", ""), bodies, last_modified(plain))


def mtime_of(last_modified: datetime | None) -> float | None:
    """A document's Last-Modified (naive: UTC) as the timestamp its header names: to the second."""
    if last_modified is None:
        return None
    if last_modified.tzinfo is None:
        last_modified = last_modified.replace(tzinfo=timezone.utc)
    return last_modified.replace(microsecond=0).timestamp()


def last_modified(response) -> float | None:
    """The answer's Last-Modified as a timestamp, for the files' mtime."""
    if response.headers.get("Last-Modified"):
        try:
            return parsedate_to_datetime(response.headers["Last-Modified"]).timestamp()
        except (TypeError, ValueError):
            return None
    return None


# ---- one pass -----------------------------------------------------------------------------------

class MirrorNotEmpty(click.UsageError):
    def __init__(self, root: Path):
        super().__init__(f"{root} holds a mirror already: --from-now starts an empty one (without it, "
                         "`export --watch` brings what it holds up to date while it watches)")


@dataclass
class Report:
    written: int = 0
    unchanged: int = 0
    removed: int = 0
    kept: int = 0        # fetched, but the app failed: the last good copy stays
    seconds: float = 0.0

    def __str__(self) -> str:
        kept = f", {self.kept} kept (app failed)" if self.kept else ""
        return (f"{self.written} written, {self.unchanged} unchanged, {self.removed} removed{kept} "
                f"in {self.seconds:.2f} s")


class Mirror:
    """A mirror folder and the app it copies; `sync()` brings it up to date, `watch()` keeps it so."""

    def __init__(self, app, root: str | Path):
        self.app, self.root = app, Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.manifest = Manifest(self.root)
        self.files = MirrorFiles(self.root)
        self.compress_later = False   # watch mode's feeds loop: plain file first (MirrorFiles)
        self.client = app.test_client()
        self.engine = db.engine(app)
        self.commits = StoreCommits(self.engine)   # each Mirror its own: one per watch thread
        # The commit position take_down last looked at, and since when (time.monotonic()) it stands.
        self._takedowns_seen: tuple[int | None, float] = (None, float("-inf"))
        self._stale_left = True   # the last sweep for stale pages found some (or none was made yet)
        id_authority.fix(app)   # before the salt: it is part of what feeds show
        self.salt = f"{EXPORT_REVISION}|{render_cache.output_revision()}|{Site.from_config(app.config).digest()}"
        self.routes = page_routes(app)
        self.profiles = list(profile_feeds.profiles_of(app).values())
        # In watch mode: the feeds' loop clears `feeds_idle` while it has work; the other loop waits for it.
        self.feeds_idle: threading.Event | None = None
        # Set by the other loop when it rewrote feeds itself (the start-up sync): stamps are checked afresh.
        self.feeds_recheck: threading.Event | None = None
        # What the feeds half and the other half (update_rest) last read of scope_state, each its own.
        self.scopes, self.rest_scopes = ScopeStates(), ScopeStates()
        self._feeds_caught_up = False   # every feed checked once: later cycles look only at moved scopes
        self._known: dict[str, int] | None = None   # the manifest's "scopes", as this Mirror last set them
        self._rest_known: dict[str, int] | None = None   # ... and its "rest_scopes"
        self._feeds_failed: dict[str, Document] = {}
        counters = documents.counters(app)
        if counters is not None:
            counters.recheck_seconds = 0   # the mirror follows every change at once

    def close(self) -> None:
        self.files.close()
        self.manifest.close()
        self.commits.close()

    def share_fragments(self) -> None:
        """Feed entries rendered once, by the app's workers or by this watch, serve both: a write's feeds
        show ~50 entries each, of which the watch's own cache (FEED_FRAGMENTS_MAX_BYTES) held few, while
        the servers' shared fragment file holds those they rendered for their clients."""
        remembered = documents.fragments(self.app)
        if remembered is not None and remembered.shared is None:
            remembered.shared = documents.fragment_file(self.app, self.engine, beside_servers=True)

    # A document's fate: fetched and written if its stamp changed, removed if the app no longer has it.
    def apply(self, docs: list[Document], section_versions: dict[str, int], report: Report,
              progress: Callable[[int], None] | None = None, *, yield_to_feeds: bool = True) -> None:
        held = self.manifest.stamps([d.url for d in docs])
        for doc in docs:
            if yield_to_feeds and self.feeds_idle is not None:
                self.feeds_idle.wait()   # pages and sitemaps give way to feeds
            if held.get(doc.url) == doc.stamp:
                report.unchanged += 1
            else:
                self.refresh(doc, section_versions.get(doc.section) if doc.section else None, report)
            if progress:
                progress(1)

    def refresh(self, doc: Document, section_version: int | None, report: Report) -> None:
        with ratelimit.suspended(self.app):  # the exporter is not a client: no limits on its own requests
            fetched = fetch(self.client, doc.url, compress_later=self.compress_later)
        if fetched.status in GONE:
            self.remove(doc.url, report)
            return
        if fetched.status != 200:
            # A failing app (5xx) or an answer that is no document (a redirect, a refusal): the last
            # good copy stays, and its old stamp has the document fetched again on the next pass.
            log.warning("mirror kept its last copy of %s: the app answered %d", doc.url, fetched.status)
            report.kept += 1
            return
        relative = file_for(doc.url, fetched.content_type)
        mtime = fetched.mtime if fetched.mtime is not None else time.time()
        self.files.write(relative, fetched.bodies, mtime, later=self.compress_later)
        self.manifest.put(doc, relative, section_version)
        report.written += 1

    def remove(self, url: str, report: Report) -> None:
        relative = self.manifest.file_of(url)
        if relative is not None:
            self.files.remove(relative)
            self.manifest.drop(url)
            report.removed += 1

    def sync(self, progress_bar: bool = False, workers: int = 1) -> Report:
        """A full pass: every document checked against its stamp; documents gone from the app removed.
        With `workers` > 1 the documents are fetched by that many forked processes (mirror_full.py)."""
        started = time.perf_counter()
        report = Report()
        with self.engine.connect() as conn:
            states = store.all_scopes(conn)
            versions = {s.scope: s.version for s in states}
            docs = feed_documents(states, self.salt, self.profiles) + fixed_documents(self.app, self.salt)
            docs += sitemap_documents(self.app, conn, self.salt)
            docs.append(news_document(versions.get("site", 0), self.salt))
            pages, _ = page_documents(conn, self.routes, self.salt, versions)
            since = self.manifest.get("pages_since")
            if since:  # a translation written since the last pass changes the pages of the articles it lists
                translated = {d.url: d for d in translated_pages(conn, self.routes, self.salt, versions,
                                                                 datetime.fromisoformat(since))}
                pages = [translated.get(d.url, d) for d in pages]
            newest_write = _newest_write(conn)
        docs += pages
        stale = self.manifest.urls() - {d.url for d in docs}
        if workers > 1:
            from feedsvc.publish.mirror_full import export_in_parallel  # it imports this module
            export_in_parallel(self, docs, versions, report, workers, progress_bar)
        elif progress_bar and len(docs) > 1000:
            with click.progressbar(length=len(docs), label="exporting", file=sys.stderr,
                                   show_pos=True, show_eta=True) as bar:
                self.apply(docs, versions, report, bar.update)
        else:
            self.apply(docs, versions, report)
        for url in stale:
            self.remove(url, report)
        self._record_position(versions, newest_write)
        report.seconds = time.perf_counter() - started
        return report

    def _record_position(self, versions: dict[str, int], newest_write: datetime | None) -> None:
        """The store's change position the mirror is current for: the watch follows changes from there."""
        now = time.time()
        self.manifest.set("scopes", versions)
        self.manifest.set("rest_scopes", versions)
        self.manifest.set("pages_since", newest_write.isoformat() if newest_write else None)
        self.manifest.set("takedowns_since", newest_write.isoformat() if newest_write else None)
        self.manifest.set("sitemaps_at", now)
        self.manifest.set("news_at", now)
        self.manifest.set("lists_at", now)
        self._known = self._rest_known = None

    def start_from_now(self) -> None:
        """Take an empty mirror as current for the store as it is now (`export --watch --from-now`): the
        watch then writes only what changes from here on, and nginx passes every URL without a file to
        the app. A new mirror host serves at once, where a full export takes half an hour at 1M articles;
        a later `export --watch` without the option fills in the rest. Refused for a mirror holding
        documents: one it did not bring up to date could keep a stale copy for good."""
        if self.manifest.holds_documents():
            raise MirrorNotEmpty(self.root)
        with self.engine.connect() as conn:
            for scopes in (self.scopes, self.rest_scopes):   # what they hold now is no change to follow
                scopes.look(conn)
                scopes.moved.clear()
                scopes.listing_changed = False
            newest_write = _newest_write(conn)
        self._record_position(dict(self.scopes.versions), newest_write)
        self._feeds_caught_up = True

    def update(self) -> Report | None:
        """One cycle of both halves of the watch; None when nothing was due."""
        feeds_report = self.update_feeds()
        rest_report = self.update_rest()
        if feeds_report is None and rest_report is None:
            return None
        report = Report()
        for part in filter(None, (feeds_report, rest_report)):
            report.written += part.written
            report.unchanged += part.unchanged
            report.removed += part.removed
            report.kept += part.kept
            report.seconds += part.seconds
        return report

    def update_feeds(self) -> Report | None:
        """Every feed document whose scope changed, most important first (OPML and the directories follow
        in update_rest).

        What pollers and the freshness target look at, so in watch mode it runs on its own and never
        waits behind pages or sitemaps. Between two documents it looks for takedowns and at the site's
        change counter (every article write moves it), so a new write's site feed goes ahead of the
        rest of an older write's tag and author feeds: the whole site first, its sections, then tags
        and authors; RSS, Atom, JSON Feed in turn. The list of what is due is made again only when
        the site moved or the list ran out, and only from the scopes whose counter moved since this
        Mirror last brought their feeds up to date: one write costs its own scopes, not every scope.
        """
        started = time.perf_counter()
        report = Report()
        if self.feeds_recheck is not None and self.feeds_recheck.is_set():
            self.feeds_recheck.clear()
            self._feeds_caught_up = False   # another thread rewrote feeds (the start-up sync): check every stamp
            self._known = None
        tried: set[tuple[str, str]] = set()   # a document the app would not give (503) is tried once a cycle
        due: list[Document] = []   # most important last
        site_version = None
        looked = float("-inf")
        try:
            while True:
                # Between documents, at most every LOOK_SECONDS (each look was ~3 ms, a fifth of a feed's
                # time in the watch): a takedown never waits for a long cycle.
                look = time.monotonic() - looked >= LOOK_SECONDS or not due
                if look:
                    looked = time.monotonic()
                    self.take_down(report)
                if look:
                    position = self.commits.position()
                    with self.engine.connect() as conn:
                        if site_version is None or not due or _site_version(conn) != site_version:
                            self.scopes.look(conn, position)
                            site_version = self.scopes.versions.get("site", 0)
                            due = self._due_feeds(tried)
                if not due:
                    break
                if self.feeds_idle is not None:
                    self.feeds_idle.clear()
                doc = due.pop()
                tried.add((doc.url, doc.stamp))
                kept = report.kept
                self.refresh(doc, None, report)
                if report.kept > kept:
                    self._feeds_failed[doc.url] = doc   # its stamp stays old: tried again next cycle
                else:
                    self._feeds_failed.pop(doc.url, None)
        finally:
            if self.feeds_idle is not None:
                self.feeds_idle.set()
        self._feeds_caught_up = True
        changed = self._caught_up_with(report)
        if not changed and not (report.written or report.removed):
            return None
        if changed:
            # How late the mirror is for the newest change it now shows (server clocks, naive UTC).
            lag = (store.now_utc() - max(s.modified_at for s in changed)).total_seconds()
            self.manifest.set("last_update", {"at": time.time(), "lag_seconds": lag})
        report.seconds = time.perf_counter() - started
        return report

    def _caught_up_with(self, report: Report) -> list[store.ScopeState]:
        """The scopes whose counter moved since the manifest last said, now that their feeds are written;
        the feeds of scopes gone (renamed) leave the mirror. The manifest is written only on a change:
        its JSON of every scope's counter was read and written on each look (22 ms at 28,000 scopes)."""
        moved, self.scopes.moved = self.scopes.moved, set()
        if not moved:
            return []
        if self._known is None:
            self._known = self.manifest.get("scopes", {})
        versions, known = self.scopes.versions, self._known
        self._forget_gone_scopes(set(known) - set(versions), report)
        changed = [self.scopes.by_scope[scope] for scope in moved
                   if scope in versions and known.get(scope) != versions[scope]]
        if changed or len(known) != len(versions):
            self.manifest.set("scopes", versions)
            self._known = dict(versions)
        return changed

    def _due_feeds(self, tried: set[tuple[str, str]]) -> list[Document]:
        """Feed documents whose file is older than their stamp, least important first: of the scopes
        that moved since this Mirror last caught up (all of them the first time), and the ones that
        failed before. The lists (OPML, directories) follow in the other loop (update_rest)."""
        moved = self.scopes.moved if self._feeds_caught_up else None
        if moved is not None and not moved and not self._feeds_failed:
            return []
        states = self.scopes.states() if moved is None else [self.scopes.by_scope[s] for s in moved
                                                             if s in self.scopes.by_scope]
        docs = feed_documents(states, self.salt, self.profiles, only=moved, lists=False)
        by_url = {d.url: d for d in docs}
        docs += [d for url, d in self._feeds_failed.items() if url not in by_url]
        held = self.manifest.stamps([d.url for d in docs])
        due = [d for d in docs if held.get(d.url) != d.stamp and (d.url, d.stamp) not in tried]
        changed_at = {s.scope: s.modified_at for s in states}
        return sorted(due, key=lambda d: _priority(d, changed_at), reverse=True)

    def take_down(self, report: Report) -> None:
        """Articles that left public view lately (a DELETE, a draft again) lose their page files at once,
        and the sitemaps are rewritten without them, in the feeds thread ahead of the feeds: the other
        thread may be busy for seconds, and a takedown is due everywhere within one (issue 17)."""
        # Its look goes on for TAKEDOWN_OVERLAP after the store's last commit, as its window does: a page
        # the other thread was writing when its article left is written after the look that missed it.
        position = self.commits.position()
        seen, since_when = self._takedowns_seen
        if moved(position, seen):
            since_when = time.monotonic()
        elif time.monotonic() - since_when > TAKEDOWN_OVERLAP.total_seconds():
            return
        with self.engine.connect() as conn:
            newest = _newest_write(conn)
            since = self.manifest.get("takedowns_since")
            gone = [] if since is None else conn.execute(
                select(articles.c.id).where(articles.c.modified_at >= datetime.fromisoformat(since),
                                            articles.c.status != store.LIVE)).scalars().all()
            removed = [url for article_id in gone for url in self.manifest.files_of_article(article_id)]
            for url in removed:
                self.remove(url, report)
            if removed:
                listed = sitemap_documents(self.app, conn, self.salt)
                versions = {s.scope: s.version for s in store.all_scopes(conn)}
                self._forget_old_sitemaps({d.url for d in listed}, report)
                self.apply([*listed, news_document(versions.get("site", 0), self.salt)], versions, report,
                           yield_to_feeds=False)
        if newest is not None and (newest - TAKEDOWN_OVERLAP).isoformat() != since:
            self.manifest.set("takedowns_since", (newest - TAKEDOWN_OVERLAP).isoformat())
        self._takedowns_seen = (position, since_when)

    def update_rest(self) -> Report | None:
        """Pages of changed articles, the news sitemap, the other sitemaps when due, a few stale pages."""
        started = time.perf_counter()
        report = Report()
        now = time.time()
        position = self.commits.position()
        with self.engine.connect() as conn:
            scopes = self.rest_scopes
            scopes.look(conn, position)
            versions = scopes.versions
            if self._rest_known is None:
                self._rest_known = self.manifest.get("rest_scopes", {})
            changed = bool(scopes.moved) and versions != self._rest_known
            listing_changed = scopes.listing_changed
            scopes.moved.clear()
            scopes.listing_changed = False
            sitemaps_dirty = self.manifest.get("sitemaps_dirty", False) or changed
            lists_dirty = self.manifest.get("lists_dirty", False) or changed
            docs, pages_left = [], False
            if changed and self.routes:
                since = self.manifest.get("pages_since")
                pages, seen = page_documents(conn, self.routes, self.salt, versions,
                                             datetime.fromisoformat(since) if since else datetime.min)
                docs += pages
                rewritten = {d.url for d in pages}
                docs += [d for d in translated_pages(conn, self.routes, self.salt, versions,
                                                     datetime.fromisoformat(since) if since else datetime.min)
                         if d.url not in rewritten]
                pages_left = self._forget_old_pages(seen, rewritten, report)
                newest = _newest_write(conn)
                self.manifest.set("pages_since", newest.isoformat() if newest else since)
            # A page taken away (a takedown, a new slug) leaves the sitemaps at once, not at their next turn,
            # and they do not give way to feeds: a takedown is due within a second everywhere.
            urgent: list[Document] = []
            if changed or now - self.manifest.get("news_at", 0) >= NEWS_SECONDS:
                (urgent if pages_left else docs).append(news_document(versions.get("site", 0), self.salt))
                self.manifest.set("news_at", now)
            if sitemaps_dirty and (pages_left or now - self.manifest.get("sitemaps_at", 0) >= SITEMAP_SECONDS):
                listed = sitemap_documents(self.app, conn, self.salt)
                (urgent if pages_left else docs).extend(listed)
                self._forget_old_sitemaps({d.url for d in listed}, report)
                self.manifest.set("sitemaps_at", now)
                sitemaps_dirty = False
            if lists_dirty and (listing_changed or now - self.manifest.get("lists_at", 0) >= LISTS_SECONDS):
                docs += list_documents(scopes.states(), self.salt, self.profiles)
                self.manifest.set("lists_at", now)
                lists_dirty = False
            # Pages turn stale only when a section moves: a sweep that found none is not made again till then.
            if self.routes and (changed or self._stale_left):
                docs += self._stale_pages(conn, versions, report)
        self.apply(urgent, versions, report, yield_to_feeds=False)
        self.apply(docs, versions, report)
        if changed:
            self.manifest.set("rest_scopes", versions)
            self._rest_known = dict(versions)
        self.manifest.set("sitemaps_dirty", sitemaps_dirty)
        self.manifest.set("lists_dirty", lists_dirty)
        if not changed and not (report.written or report.removed):
            return None
        report.seconds = time.perf_counter() - started
        return report

    def _stale_pages(self, conn: Connection, versions: dict[str, int], report: Report) -> list[Document]:
        """A few pages written before their section last changed (they list its newest articles)."""
        sections = {s: v for s, v in versions.items() if s.startswith("section:")}
        docs = []
        found = self.manifest.stale_pages(sections, PAGE_SWEEP)
        self._stale_left = bool(found)
        for url, article_id in found:
            row = conn.execute(select(articles.c.version, articles.c.status, articles.c.section_key)
                               .where(articles.c.id == article_id)).first()
            if row is None or row.status != store.LIVE:
                self.remove(url, report)
                continue
            section = f"section:{row.section_key}"
            docs.append(Document(url, f"{self.salt}|{row.version}|{versions.get(section, 0)}", article_id, section))
        return docs

    def _forget_gone_scopes(self, scopes: set[str], report: Report) -> None:
        """A renamed scope's feed files leave the mirror: nginx then passes its URLs to the app, which
        answers 301 to the new key (as for an old article slug, which has no file either)."""
        for scope_id in scopes:
            for fmt in FORMATS:
                self.remove(feed_path(Scope.from_id(scope_id), fmt), report)

    def _forget_old_sitemaps(self, current: set[str], report: Report) -> None:
        """A monthly sitemap whose last article left (a takedown) leaves the mirror with it."""
        for url in self.manifest.urls_under(MONTH_SITEMAPS):
            if url not in current:
                self.remove(url, report)

    def _forget_old_pages(self, article_ids: list[str], current: set[str], report: Report) -> bool:
        """Pages under an article's old slug, or of a withdrawn article, leave the mirror; True if any did."""
        removed = False
        for article_id in article_ids:
            for url in self.manifest.files_of_article(article_id):
                if url not in current:
                    self.remove(url, report)
                    removed = True
        return removed

    def watch(self, interval: float = 0.2, stop: threading.Event | None = None,
              on_update: Callable[[Report], None] | None = None, *, sync_first: bool = False) -> None:
        """Keep the mirror current until `stop` is set: feeds and takedowns in this thread, the rest in
        another. With `sync_first` the other thread begins with a full pass (`sync`), after this one's
        first cycle: a start-up over many stale documents never holds back a write's feeds or a takedown."""
        stop = stop or threading.Event()
        self.share_fragments()
        rest = Mirror(self.app, self.root)   # its own manifest connection and test client
        rest.files = self.files   # one writer of the files: it keeps the two loops' copies of a feed apart
        self.compress_later = True   # what pollers wait for first; pages and sitemaps are written whole
        rest.feeds_idle = self.feeds_idle = threading.Event()
        recheck = rest.feeds_recheck = self.feeds_recheck = threading.Event()
        self.feeds_idle.set()
        first_cycle = threading.Event()

        def feeds() -> Report | None:
            try:
                return self.update_feeds()
            finally:
                first_cycle.set()

        def other() -> None:
            if sync_first:
                while not first_cycle.wait(0.1):
                    if stop.is_set():
                        return
                report = _guarded(rest.sync)
                recheck.set()   # the pass wrote feeds too: the feeds loop checks every stamp again
                if report is not None and on_update:
                    on_update(report)
            _loop(rest.update_rest, max(interval, 0.5), stop, on_update)

        helper = threading.Thread(target=other, name="mirror-rest", daemon=True)
        helper.start()
        try:
            _loop(feeds, interval, stop, on_update)
        finally:
            stop.set()
            self.feeds_idle.set()   # never leave the other loop waiting
            helper.join()
            rest.manifest.close()
            rest.commits.close()
            self.files.settle()
            self.compress_later = False


def _guarded(update: Callable[[], Report | None]) -> Report | None:
    try:
        return update()
    except Exception:  # a store hiccup must not end the watcher; the next cycle retries
        log.exception("mirror update failed; retrying")
        return None


def _loop(update: Callable[[], Report | None], interval: float, stop: threading.Event,
          on_update: Callable[[Report], None] | None) -> None:
    while not stop.is_set():
        report = _guarded(update)
        if report is not None and on_update:
            on_update(report)
        stop.wait(interval)


_KIND_ORDER = {kind: i for i, kind in enumerate(["site", *store.SCOPE_KINDS])}
_FORMAT_ORDER = {fmt: i for i, fmt in enumerate(FORMATS)}
_FIRST_KINDS = ("site", "section")   # what most readers follow, and what every write changes


def _priority(doc: Document, changed_at: dict[str, datetime] | None = None) -> tuple:
    """Public feeds before aggregator profiles' (which follow in the same order); in each, with
    `changed_at` (scope -> when its counter last moved), the latest write's feeds ahead of any older
    ones still due; site and section feeds before tag and author feeds, formats in their order (RSS
    first); OPML last."""
    target, profile = parse_feed_path(doc.url), 0
    public = shaping.public_feed_path(doc.url) if target is None else None
    if public is not None:
        target, profile = parse_feed_path(public), 1
    if target is None:
        return (9, 0, 0, 0, 0, doc.url)   # OPML and the directories
    when = changed_at.get(target.scope.id) if changed_at else None
    return (profile, -when.timestamp() if when else 0, 0 if target.kind in _FIRST_KINDS else 1,
            _FORMAT_ORDER[target.fmt], _KIND_ORDER[target.kind], target.scope.id)


def _site_version(conn: Connection) -> int:
    """The site's change counter: one row by its key, moved by every article write."""
    site = store.scope_state_of(conn, "site")
    return site.version if site else 0


def _newest_write(conn: Connection) -> datetime | None:
    return conn.execute(select(func.max(articles.c.modified_at))).scalar_one()


def mirror_lag(conn: Connection, root: str | Path) -> tuple[float, float | None]:
    """(seconds since the oldest store change the mirror does not show yet, or 0; lag of its last update)."""
    path = Path(root) / STATE_DIR / MANIFEST
    if not path.exists():
        return float("inf"), None
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = dict(db.execute("SELECT name, value FROM state WHERE name IN ('scopes', 'last_update')"))
    finally:
        db.close()
    known = json.loads(rows.get("scopes", "{}"))
    pending = [s.modified_at for s in store.all_scopes(conn) if known.get(s.scope) != s.version]
    lag = (store.now_utc() - min(pending)).total_seconds() if pending else 0.0
    last = json.loads(rows["last_update"])["lag_seconds"] if "last_update" in rows else None
    return max(lag, 0.0), last


# ---- the command --------------------------------------------------------------------------------

@click.command("export")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--watch", is_flag=True, help="Keep the mirror current until interrupted.")
@click.option("--interval", default=0.2, show_default=True, type=click.FloatRange(0.01, 60),
              help="Seconds between two looks at the change counters in --watch mode.")
@click.option("--workers", default=os.cpu_count() or 1, show_default=True, type=click.IntRange(1, 64),
              help="Processes fetching documents in the full pass (1: in this process).")
@click.option("--from-now", is_flag=True,
              help="With --watch, into an empty DIRECTORY: no full pass; write only what changes from now on "
                   "(nginx passes the rest to the app).")
@with_appcontext
def export_command(directory, watch, interval, workers, from_now):
    """Write every feed, OPML, sitemap and page to DIRECTORY as files (+ .gz, .br), only what changed."""
    if from_now and not watch:
        raise click.UsageError("--from-now starts a watch: give --watch too")
    app = current_app._get_current_object()
    store.migrate(db.engine(app))
    mirror = Mirror(app, directory)
    try:
        if not watch:
            click.echo(f"mirror {directory}: {mirror.sync(progress_bar=True, workers=workers)}", err=True)
            return
        if from_now:
            mirror.start_from_now()
            what = f"watching the store every {interval} s from its present changes on"
        else:
            # The full pass runs beside the watch, not before it: writes and takedowns go first meanwhile.
            # It runs in this process (forking workers from a process with running threads is unsafe).
            what = f"bringing it up to date while watching the store every {interval} s"
        click.echo(f"mirror {directory}: {what} (Ctrl-C stops)", err=True)
        mirror.watch(interval, sync_first=not from_now, on_update=lambda r: click.echo(
            f"{datetime.now(timezone.utc):%H:%M:%S} mirror updated: {r}", err=True))
    except KeyboardInterrupt:
        pass
    finally:
        mirror.close()
