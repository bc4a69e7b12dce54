"""`flask export` in worker processes (feedsvc/publish/mirror_full.py): the app's bytes, resumable after kill -9."""
from __future__ import annotations

import io
import os
import pty
import re
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from feedsvc.config import DEFAULTS
from feedsvc.ingest.write import commit_write, withdraw
from feedsvc.publish import mirror as export
from feedsvc.publish.mirror_full import UNCOMPRESSED, _in_batches, progress
from feedsvc.web import db
from feedsvc.web.pages import export_pages
from tests.support.mirrors import assert_files_are_the_apps_bytes, mirrored_files
from tests.support.records import write

ARTICLES = 120   # with 6 profiles' feeds: about 1,600 documents, 4,800 files
SITE = "http://news.example"


@pytest.mark.slow
def test_workers_write_the_bytes_the_app_serves(sample_app, tmp_path):
    mirror = export.Mirror(sample_app, tmp_path)
    try:
        report = mirror.sync(workers=2)
    finally:
        mirror.close()
    # Images without .gz or .br: nginx never sends those for /media/ (deploy/nginx/feedsvc.conf).
    files = assert_files_are_the_apps_bytes(sample_app, tmp_path, uncompressed=UNCOMPRESSED)
    assert report.written == len(files) and report.kept == 0
    assert any(url.startswith("/articles/") for url in files) and any(url.startswith("/feeds/profile/") for url in files)
    assert any(url.startswith("/media/") for url in files)
    assert not any((tmp_path / export.STATE_DIR / "tmp").iterdir())


def test_pages_rendered_without_requests_are_what_the_app_answers(app, make_record):
    write(app, make_record())
    write(app, make_record(id="renamed", slug="first-slug"))
    write(app, make_record(id="renamed", slug="second-slug", updated="2025-08-01T12:00:00+05:30"))
    write(app, make_record(id="gone", slug="gone-article"))
    commit_write(db.engine(app), withdraw, "gone", site_name=app.config["SITE_NAME"])
    write(app, make_record(id="draft", slug="draft-article", status="draft"))
    pages = [("/articles/monsoon-session-begins", "test-2025-08-01-monsoon"),
             ("/amp/monsoon-session-begins", "test-2025-08-01-monsoon"), ("/articles/second-slug", "renamed"),
             ("/articles/first-slug", "renamed"), ("/amp/gone-article", "gone"),
             ("/articles/draft-article", "draft"), ("/articles/never-stored", "never-stored")]
    with app.app_context():
        exported = dict(zip((url for url, _ in pages), export_pages(pages), strict=True))
    client = app.test_client()
    for url, page in exported.items():
        served = client.get(url)
        if page is None:   # the app is asked: an old slug answers 301 to the new one
            assert url == "/articles/first-slug" and served.status_code == 301
            continue
        assert page.status == served.status_code, url
        if page.status == 200:
            assert page.body == served.get_data(), url
            assert export.mtime_of(page.last_modified) == export.last_modified(served), url
    assert [exported[url].status for url in ("/amp/gone-article", "/articles/draft-article", "/articles/never-stored")] \
        == [410, 404, 404]


def test_feeds_and_lists_are_spread_among_the_pages():
    others = [export.Document(f"/feeds/{n}.xml", "s") for n in range(10)]
    pages = [export.Document(f"/articles/a{n}", "s", f"a{n}") for n in range(1000)]
    batches = _in_batches(others + pages)
    assert sorted(d.url for batch in batches for d in batch) == sorted(d.url for d in others + pages)
    holding_others = [i for i, batch in enumerate(batches) if batch[0].article_id is None]
    assert len(holding_others) == 3 and holding_others[0] < len(batches) // 3 and holding_others[-1] == len(batches) - 1


@pytest.fixture(scope="module")
def store_url(tmp_path_factory) -> str:
    """A SQLite store of synthetic articles, made as an operator makes one, with its own media folder.

    The default MEDIA_DIR (the checkout's articles/media) is shared by every test process, and each
    file in it is a document of a full export: renditions another test makes there between the
    uninterrupted and the resumed export below would be listed by the second alone, the likeliest
    way its count differed from the first's (once by 120 documents, under load 20)."""
    folder = tmp_path_factory.mktemp("full-export")
    media = folder / "media"
    media.mkdir()
    for original in Path(DEFAULTS["MEDIA_DIR"]).glob("*.jpg"):
        shutil.copy2(original, media / original.name)
    corpus, url = folder / "corpus.jsonl", f"sqlite:///{folder / 'store.sqlite'}"
    subprocess.run([sys.executable, "-m", "bench.synth", str(ARTICLES), "--out", str(corpus)], check=True,
                   capture_output=True)
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "import-articles", str(corpus)], check=True,
                   capture_output=True, env=_env(url))
    return url


def _env(url: str) -> dict[str, str]:
    media = Path(url.removeprefix("sqlite:///")).parent / "media"
    return {**os.environ, "FEEDSVC_DATABASE_URL": url, "FEEDSVC_SITE_URL": SITE, "FEEDSVC_MEDIA_DIR": str(media)}


def _export(url: str, root: Path) -> subprocess.Popen:
    # stderr is a pipe, not a terminal: the progress bar must not fill it with redraws.
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "export", str(root), "--workers", "2"],
                            env=_env(url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _recorded(root: Path) -> dict[str, str]:
    path = root / export.STATE_DIR / export.MANIFEST
    if not path.exists():
        return {}
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return dict(db.execute("SELECT url, file FROM documents"))
    except sqlite3.OperationalError:   # the table not made yet
        return {}


def _tree(root: Path, exported_after: float) -> dict[str, tuple[bytes, float | None]]:
    """Every file nginx could serve (not under .mirror/), with its bytes and mtime: the document's
    Last-Modified, or the time it was written where the app sends none (robots.txt), left out here."""
    files = (p for p in root.rglob("*") if p.is_file() and export.STATE_DIR not in p.relative_to(root).parts)
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime if p.stat().st_mtime < exported_after else None)
            for p in files}


@pytest.mark.slow
def test_an_export_killed_midway_resumes_and_ends_as_an_uninterrupted_one(store_url, tmp_path):
    started = time.time()
    whole = _export(store_url, tmp_path / "whole")
    _, whole_log = whole.communicate(timeout=900)
    assert whole.returncode == 0, whole_log
    assert "written" in whole_log and "\r" not in whole_log and whole_log.count("exporting") <= 1, whole_log  # no redraws
    total = len(mirrored_files(tmp_path / "whole"))

    root = tmp_path / "resumed"
    killed = _export(store_url, root)
    deadline = time.monotonic() + 600
    while len(_recorded(root)) < total // 3 and time.monotonic() < deadline and killed.poll() is None:
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)
    done = _recorded(root)
    assert 0 < len(done) < total, "the kill should land in the middle of the export"
    # The news sitemap's stamp moves with the clock (NEWS_SECONDS): a rerun may fetch it once more.
    finished = {url: file for url, file in done.items() if url != "/sitemaps/news.xml"}
    inodes = {url: (root / file).stat().st_ino for url, file in finished.items()}

    resumed = _export(store_url, root)
    _, log = resumed.communicate(timeout=900)
    assert resumed.returncode == 0, log
    # Finished documents are not fetched or written again: the same files (inodes), counted unchanged.
    assert {url: (root / file).stat().st_ino for url, file in finished.items()} == inodes
    written, unchanged = map(int, re.search(r"(\d+) written, (\d+) unchanged", log).groups())
    # Both logs on failure (the store_url fixture says why the counts once differed).
    assert unchanged >= len(finished) and written + unchanged == total, f"{whole_log}\n---- resumed:\n{log}"
    assert _tree(root, started) == _tree(tmp_path / "whole", started)
    assert not any(p.name.startswith(".") for p in root.rglob("*") if export.STATE_DIR not in p.relative_to(root).parts)
    assert not any((root / export.STATE_DIR / "tmp").iterdir())



def _advance_through(total: int) -> None:
    with progress(total, shown=True) as advance:
        advance(total // 2, skipped=True)   # documents an earlier, killed run finished
        for _ in range(total - total // 2):
            advance(1)


def test_the_progress_bar_shows_count_and_rate_on_a_terminal(monkeypatch):
    main, terminal = pty.openpty()
    with os.fdopen(terminal, "w") as stderr:
        monkeypatch.setattr(sys, "stderr", stderr)
        _advance_through(40)
    drawn = b""
    while select.select([main], [], [], 0.5)[0]:
        try:
            chunk = os.read(main, 65536)
        except OSError:   # the terminal's other end is closed: all read
            break
        if not chunk:
            break
        drawn += chunk
    os.close(main)
    text = drawn.decode()
    assert "40/40" in text and re.search(r"[\d,]+ docs/s", text), text


def test_the_progress_bar_writes_only_its_label_to_a_pipe(monkeypatch):
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    _advance_through(40)
    assert stderr.getvalue() == "exporting\n"
