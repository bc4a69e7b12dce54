"""The static mirror (feedsvc/publish/mirror.py): the app's bytes as files, incremental, atomic, kept current."""
from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import brotli
import pytest
from lxml import etree

from feedsvc.ingest.write import commit_write, withdraw
from feedsvc.publish import mirror as export
from feedsvc.web import db, render_cache
from tests.support.apps import SITE_URL
from tests.support.mirrors import assert_files_are_the_apps_bytes, mirrored_files, watching
from tests.support.records import write

# Every test that syncs a mirror is slow (about 1,300 files a sync); the file-level ones run in every lane.
# The tests of the sample data's mirror share one xdist worker ("sample-mirror", test_mirror_nginx too): each
# worker would otherwise export the samples once per backend (20-40 s CPU each).


@pytest.mark.slow
@pytest.mark.xdist_group("sample-mirror")
def test_every_document_is_the_bytes_the_app_serves(sample_app, sample_mirror):
    root, _ = sample_mirror
    files = assert_files_are_the_apps_bytes(sample_app, root)
    assert {"/feeds/rss.xml", "/feeds/atom.xml", "/feeds/feed.json", "/feeds.opml", "/feeds", "/sitemap.xml",
            "/sitemaps/news.xml", "/robots.txt", "/static/feed.xsl"} <= set(files)
    assert any(url.startswith("/feeds/section/") for url in files)
    assert any(url.startswith("/articles/") for url in files) and any(url.startswith("/amp/") for url in files)


@pytest.mark.slow
@pytest.mark.xdist_group("sample-mirror")
def test_files_carry_the_apps_last_modified(sample_app, sample_mirror):
    root, _ = sample_mirror
    served = sample_app.test_client().get("/feeds/rss.xml")
    from email.utils import parsedate_to_datetime
    expected = parsedate_to_datetime(served.headers["Last-Modified"]).timestamp()
    for suffix in ("", ".gz", ".br"):
        assert (root / f"feeds/rss.xml{suffix}").stat().st_mtime == expected


@pytest.mark.slow
@pytest.mark.xdist_group("sample-mirror")
def test_html_documents_get_an_html_name_beside_their_folder(sample_mirror):
    root, _ = sample_mirror
    assert (root / "feeds.html").is_file() and (root / "feeds").is_dir()
    page = next((root / "articles").glob("*.html"))
    assert b"<html" in page.read_bytes()[:500].lower()


@pytest.mark.slow
@pytest.mark.xdist_group("sample-mirror")
def test_a_second_export_writes_nothing(sample_app, sample_mirror):
    root, first = sample_mirror
    assert first.written > 0
    mirror = export.Mirror(sample_app, root)
    fetched = []
    plain_refresh = mirror.refresh
    mirror.refresh = lambda doc, *args: (fetched.append(doc.url), plain_refresh(doc, *args))
    try:
        again = mirror.sync()
    finally:
        mirror.close()
    # Only the news sitemap may come again: its 48-hour window moves with the clock (NEWS_SECONDS).
    assert set(fetched) <= {"/sitemaps/news.xml"}
    assert again.removed == 0 and again.unchanged + again.written == first.written


@pytest.mark.slow
def test_export_command_writes_the_mirror(sample_app, tmp_path):
    result = sample_app.test_cli_runner().invoke(args=["export", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "written" in result.output
    assert (tmp_path / "out" / "feeds" / "rss.xml.gz").is_file()


@pytest.mark.slow
def test_a_write_rewrites_only_the_documents_it_changes(app, make_record, tmp_path):
    write(app, make_record())
    write(app, make_record(id="other-article", slug="other-article", section={"key": "sports", "name": "खेल"},
                           tags=[{"key": "cricket", "name": "क्रिकेट"}]))
    mirror = export.Mirror(app, tmp_path)
    try:
        mirror.sync()
        untouched = tmp_path / "feeds/section/sports/rss.xml"
        before = untouched.stat().st_mtime_ns
        assert mirror.update() is None  # nothing changed yet

        write(app, make_record(title="संसद में नया विधेयक पेश", updated="2025-08-01T11:00:00+05:30"))
        report = mirror.update()
    finally:
        mirror.close()
    assert report is not None and report.written > 0
    assert "संसद में नया विधेयक पेश".encode() in (tmp_path / "feeds/rss.xml").read_bytes()
    assert "संसद में नया विधेयक पेश".encode() in (tmp_path / "feeds/section/national/atom.xml").read_bytes()
    assert "संसद में नया विधेयक पेश".encode() in (tmp_path / "articles/monsoon-session-begins.html").read_bytes()
    assert untouched.stat().st_mtime_ns == before


@pytest.mark.slow
def test_a_withdrawn_article_leaves_the_mirror(app, make_record, tmp_path):
    write(app, make_record())
    mirror = export.Mirror(app, tmp_path)
    try:
        mirror.sync()
        page = tmp_path / "articles/monsoon-session-begins.html"
        assert page.exists() and Path(str(page) + ".gz").exists()
        commit_write(db.engine(app), withdraw, "test-2025-08-01-monsoon",
                            site_name=app.config["SITE_NAME"])
        mirror.update()
    finally:
        mirror.close()
    assert not page.exists() and not Path(str(page) + ".gz").exists() and not Path(str(page) + ".br").exists()
    assert b"monsoon-session-begins" not in (tmp_path / "feeds/rss.xml").read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("catch_up", ["update", "sync"])
def test_a_withdrawn_translation_leaves_the_mirrored_pages_that_linked_it(app, make_record, tmp_path, catch_up):
    write(app, make_record(id="budget-hi", slug="budget-hi", translations=["budget-en"]))
    # In another section, so that its change does not make the Hindi pages stale by their section.
    write(app, make_record(id="budget-en", slug="budget-en", language="en", title="Budget for farmers",
                           section={"key": "english", "name": "English"}, translations=["budget-hi"]))
    pages = [tmp_path / "articles/budget-hi.html", tmp_path / "amp/budget-hi.html"]
    mirror = export.Mirror(app, tmp_path)
    try:
        mirror.sync()
        assert all(b'hreflang="en"' in page.read_bytes() for page in pages)
        # The Hindi article itself is not written: only its translation's withdrawal changes its pages.
        commit_write(db.engine(app), withdraw, "budget-en", site_name=app.config["SITE_NAME"])
        if catch_up == "update":
            mirror.update()
        else:
            mirror.close()
            mirror = export.Mirror(app, tmp_path)
            mirror.sync()
    finally:
        mirror.close()
    assert not any(b"hreflang" in page.read_bytes() for page in pages)


@pytest.mark.slow
def test_a_takedown_leaves_pages_and_sitemaps_in_the_feeds_cycle_alone(app, make_record, tmp_path):
    """The other thread (pages, sitemaps) can be busy for seconds; a takedown does not wait for it."""
    write(app, make_record())
    write(app, make_record(id="stays", slug="stays"))
    mirror = export.Mirror(app, tmp_path)
    try:
        mirror.sync()
        month = tmp_path / "sitemaps/articles-2025-08.xml"
        locs = lambda: set(etree.fromstring(month.read_bytes()).xpath(  # noqa: E731
            "//sm:loc/text()", namespaces={"sm": "http://www.sitemaps.org/schemas/sitemap/0.9"}))
        assert f"{SITE_URL}/articles/monsoon-session-begins" in locs()
        commit_write(db.engine(app), withdraw, "test-2025-08-01-monsoon", site_name=app.config["SITE_NAME"])
        mirror.update_feeds()
    finally:
        mirror.close()
    for page in ("articles/monsoon-session-begins.html", "amp/monsoon-session-begins.html"):
        assert not any((tmp_path / (page + suffix)).exists() for suffix in ("", ".gz", ".br"))
    assert locs() == {f"{SITE_URL}/articles/stays"}


def test_a_failed_write_leaves_the_old_file_whole(tmp_path, monkeypatch):
    target = tmp_path / "feeds" / "rss.xml"
    export.write_atomically(target, b"<rss>old</rss>", time.time())

    def broken_replace(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(export.os, "replace", broken_replace)
    with pytest.raises(OSError):
        export.write_atomically(target, b"<rss>new, but never finished", time.time())
    assert target.read_bytes() == b"<rss>old</rss>"


class _HeldCompression(Mapping):
    """A document's bodies whose compressions wait until the test lets them go (render_cache.Encodings
    otherwise): what a reader sees while the watch's compressed copies are still being made."""

    def __init__(self, text: str):
        self.encodings, self.go = render_cache.Encodings(text.encode()), threading.Event()

    def __getitem__(self, encoding):
        if encoding != "identity":
            assert self.go.wait(10)
        return self.encodings[encoding]

    def __iter__(self):
        return iter(self.encodings)

    def __len__(self):
        return len(self.encodings)


def _siblings(path: Path) -> dict[str, bytes]:
    return {suffix: Path(str(path) + suffix).read_bytes() for suffix in (".gz", ".br")
            if Path(str(path) + suffix).exists()}


def test_compressed_copies_made_later_never_go_stale_beside_the_plain_file(tmp_path):
    files = export.MirrorFiles(tmp_path)
    feed = tmp_path / "feeds" / "rss.xml"
    try:
        files.write("feeds/rss.xml", render_cache.Encodings("<rss>संस्करण 1</rss>".encode()), 1e9, later=True)
        files.settle()
        assert gzip.decompress(_siblings(feed)[".gz"]) == "<rss>संस्करण 1</rss>".encode()

        second = _HeldCompression("<rss>संस्करण 2</rss>")
        files.write("feeds/rss.xml", second, 2e9, later=True)
        # The plain file is the new version at once, and no sibling of the old one is left beside it.
        assert feed.read_bytes() == "<rss>संस्करण 2</rss>".encode() and _siblings(feed) == {}
        third = _HeldCompression("<rss>संस्करण 3</rss>")
        files.write("feeds/rss.xml", third, 3e9, later=True)
        third.go.set()
        deadline = time.monotonic() + 10
        while len(_siblings(feed)) < 2:
            assert time.monotonic() < deadline, "the third version's compressed copies never came"
            time.sleep(0.01)
        second.go.set()   # the second version's compressions finish after the third's are in place
        files.settle()
        siblings = _siblings(feed)
        assert feed.read_bytes() == "<rss>संस्करण 3</rss>".encode()
        assert gzip.decompress(siblings[".gz"]) == brotli.decompress(siblings[".br"]) == feed.read_bytes()
        assert siblings[".gz"] == third.encodings["gzip"] and siblings[".br"] == third.encodings["br"]
        assert {Path(str(feed) + s).stat().st_mtime for s in ("", ".gz", ".br")} == {3e9}

        gone = _HeldCompression("<rss>संस्करण 4</rss>")
        files.write("feeds/rss.xml", gone, 4e9, later=True)
        files.remove("feeds/rss.xml")   # a takedown while its compressions run: nothing comes back
        gone.go.set()
        files.settle()
        assert not any(Path(str(feed) + s).exists() for s in ("", ".gz", ".br"))
    finally:
        files.close()
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.slow
def test_readers_never_see_part_of_a_file(app, make_record, tmp_path):
    """A reader polling the site feed while the mirror is rewritten again and again always parses it."""
    write(app, make_record())
    mirror = export.Mirror(app, tmp_path)
    feed = tmp_path / "feeds" / "rss.xml"
    stop, seen, problems = threading.Event(), [], []

    def reader():
        while not stop.is_set():
            try:
                data = feed.read_bytes()
                etree.fromstring(data)
                gzip.decompress(Path(str(feed) + ".gz").read_bytes())
                seen.append(len(data))
            except Exception as exc:  # any partial file shows up here
                problems.append(exc)

    try:
        mirror.sync()
        thread = threading.Thread(target=reader)
        thread.start()
        for n in range(8):
            write(app, make_record(title=f"संस्करण {n}: " + "लंबा शीर्षक " * 20, updated=f"2025-08-01T1{n}:00:00+05:30"))
            mirror.update()
        stop.set()
        thread.join()
    finally:
        mirror.close()
    assert not problems, problems[:3]
    assert len(seen) > 8
    assert not [p for p in tmp_path.rglob("*.tmp")], "temporary files left behind"


@pytest.mark.slow
def test_watch_follows_a_write(app, make_record, tmp_path):
    write(app, make_record())
    mirror = export.Mirror(app, tmp_path)
    mirror.sync()
    with watching(mirror):
        write(app, make_record(id="breaking-news", slug="breaking-news", title="ताज़ा ख़बर: बड़ा फ़ैसला"))
        deadline = time.monotonic() + 20
        # The article's link, not its title: the site's description (every feed's head) says "ताज़ा ख़बरें".
        while b"/articles/breaking-news<" not in (tmp_path / "feeds/rss.xml").read_bytes():
            assert time.monotonic() < deadline, "the mirror never showed the write"
            time.sleep(0.02)
    # Stopped: the compressed copies the watch made after the plain file are there, the app's own bytes.
    client = app.test_client()
    for encoding, suffix in (("gzip", ".gz"), ("br", ".br")):
        served = client.get("/feeds/rss.xml", headers={"Accept-Encoding": encoding})
        assert served.headers["Content-Encoding"] == encoding
        assert (tmp_path / f"feeds/rss.xml{suffix}").read_bytes() == served.get_data()


@pytest.mark.slow
def test_mirror_lag_reads_the_manifest(app, make_record, tmp_path):
    write(app, make_record())
    engine = db.engine(app)
    with engine.connect() as conn:
        assert export.mirror_lag(conn, tmp_path)[0] == float("inf")   # never exported
    mirror = export.Mirror(app, tmp_path)
    try:
        mirror.sync()
        with engine.connect() as conn:
            assert export.mirror_lag(conn, tmp_path)[0] == 0.0
        write(app, make_record(id="later", slug="later"))
        with engine.connect() as conn:
            behind, _ = export.mirror_lag(conn, tmp_path)
        assert behind >= 0.0
        mirror.update()
        with engine.connect() as conn:
            behind, last = export.mirror_lag(conn, tmp_path)
    finally:
        mirror.close()
    assert behind == 0.0 and last is not None and last >= 0.0


@pytest.mark.slow
def test_from_now_writes_only_what_changes_after_the_start(app, make_record, tmp_path):
    write(app, make_record())
    # The last write before the start: the watch looks for pages from its time on (inclusive: a write in
    # the same instant is not missed), so its pages may be written once; the older article's are not.
    write(app, make_record(id="just-before", slug="just-before"))
    mirror = export.Mirror(app, tmp_path)
    try:
        mirror.start_from_now()
        assert mirror.update() is None   # no full pass: what the store held at the start stays with the app
        write(app, make_record(id="breaking-news", slug="breaking-news", section={"key": "sports", "name": "खेल"},
                               tags=[{"key": "cricket", "name": "क्रिकेट"}]))
        assert mirror.update() is not None
    finally:
        mirror.close()
    files = mirrored_files(tmp_path)
    assert {"/feeds/rss.xml", "/feeds/section/sports/atom.xml", "/feeds/tag/cricket/feed.json",
            "/feeds/author/test-reporter/rss.xml", "/feeds/profile/readers/tag/cricket/atom.xml",
            "/feeds.opml", "/articles/breaking-news", "/amp/breaking-news"} <= set(files)
    assert not [url for url in files if url.startswith(("/feeds/section/national/", "/feeds/tag/parliament/"))
                or url.endswith("/monsoon-session-begins")]
    assert b"/articles/breaking-news<" in (tmp_path / "feeds/section/sports/rss.xml").read_bytes()
    assert_files_are_the_apps_bytes(app, tmp_path)


def test_from_now_refuses_a_mirror_that_holds_documents(app, tmp_path):
    mirror = export.Mirror(app, tmp_path)
    try:
        mirror.manifest.put(export.Document("/feeds/rss.xml", "an older export"), "feeds/rss.xml", None)
        with pytest.raises(export.MirrorNotEmpty):
            mirror.start_from_now()
    finally:
        mirror.close()


def test_from_now_is_for_the_watch(app, tmp_path):
    result = app.test_cli_runner().invoke(args=["export", str(tmp_path / "out"), "--from-now"])
    assert result.exit_code == 2 and "--watch" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("url", ["/../etc/passwd", "/feeds/../../x", "/.mirror/manifest.sqlite", "/"])
def test_paths_outside_the_mirror_are_refused(url):
    with pytest.raises(ValueError):
        export.file_for(url, "text/html")


# ---- aggregator profiles (issue 18): every profile × scope × format it allows, its OPML, the list ----

@pytest.mark.slow
@pytest.mark.xdist_group("sample-mirror")
def test_every_profile_feed_of_every_scope_is_in_the_mirror(sample_app, sample_mirror):
    from feedsvc import store
    from feedsvc.render import profiles as shaping
    from feedsvc.render.feeds import Scope
    from feedsvc.web.profile_feeds import profiles_of
    root, _ = sample_mirror
    files = mirrored_files(root)
    with db.engine(sample_app).connect() as conn:
        scopes = [Scope.from_id(s.scope) for s in store.all_scopes(conn)]
    profiles = profiles_of(sample_app).values()
    expected = {shaping.profile_feed_path(p.name, scope, fmt) for p in profiles for scope in scopes
                for fmt in p.formats}
    expected |= {f"{shaping.profile_folder(p.name)}/feeds.opml" for p in profiles}
    expected |= {"/feeds/profiles.json", "/feeds/profiles"}
    assert len(scopes) > 5 and expected <= set(files), sorted(expected - set(files))[:5]
    assert "/feeds/profile/smartnews/atom.xml" not in files   # a format the profile does not take
    assert files["/feeds/profiles"] == "feeds/profiles.html"


@pytest.mark.slow
def test_a_withdrawal_reaches_the_mirrors_profile_feeds_as_each_profile_says_it(app, make_record, tmp_path):
    from datetime import datetime, timedelta, timezone
    now = datetime.now(timezone(timedelta(hours=5, minutes=30))).replace(microsecond=0)
    fresh = dict(published=(now - timedelta(hours=1)).isoformat(), updated=(now - timedelta(hours=1)).isoformat())
    write(app, make_record(**fresh))
    write(app, make_record(id="other-article", slug="other-article", **fresh))
    mirror = export.Mirror(app, tmp_path)
    guid = b"articles/test-2025-08-01-monsoon</guid>"
    try:
        mirror.sync()
        assert guid in (tmp_path / "feeds/profile/smartnews/rss.xml").read_bytes()
        commit_write(db.engine(app), withdraw, "test-2025-08-01-monsoon", site_name=app.config["SITE_NAME"])
        report = mirror.update()
    finally:
        mirror.close()
    assert report is not None and report.written > 0
    smartnews = etree.fromstring((tmp_path / "feeds/profile/smartnews/section/national/rss.xml").read_bytes())
    [marker] = [i for i in smartnews.iter("item") if i.findtext("guid").endswith("/test-2025-08-01-monsoon")]
    assert marker.findtext("{http://search.yahoo.com/mrss/}status") == "deleted"
    msn = etree.fromstring((tmp_path / "feeds/profile/msn/atom.xml").read_bytes())
    assert msn.find(".//{http://purl.org/dc/terms/}valid") is not None
    assert guid not in (tmp_path / "feeds/profile/flipboard/rss.xml").read_bytes()
    assert b"monsoon" not in (tmp_path / "feeds/rss.xml").read_bytes()


@pytest.mark.slow
def test_watch_follows_a_write_into_the_profile_feeds(app, make_record, tmp_path):
    write(app, make_record())
    mirror = export.Mirror(app, tmp_path)
    mirror.sync()
    with watching(mirror):
        write(app, make_record(id="breaking-news", slug="breaking-news", title="ताज़ा ख़बर: बड़ा फ़ैसला आज आया"))
        deadline = time.monotonic() + 30
        for path in ("feeds/profile/readers/atom.xml", "feeds/profile/google-news/section/national/rss.xml"):
            while b"breaking-news" not in (tmp_path / path).read_bytes():   # not the title: see above
                assert time.monotonic() < deadline, f"the mirror never showed the write in {path}"
                time.sleep(0.02)


def test_public_feeds_go_before_profile_feeds_and_opml_last():
    urls = ["/feeds.opml", "/feeds/profile/msn/rss.xml", "/feeds/tag/x/rss.xml", "/feeds/rss.xml",
            "/feeds/profile/msn/tag/x/rss.xml", "/feeds/profiles.json"]
    ordered = sorted((export.Document(url, "") for url in urls), key=export._priority)
    assert [d.url for d in ordered][:4] == ["/feeds/rss.xml", "/feeds/tag/x/rss.xml", "/feeds/profile/msn/rss.xml",
                                            "/feeds/profile/msn/tag/x/rss.xml"]


def test_the_latest_writes_feeds_go_before_older_ones_still_due():
    """A backlog (a long start-up pass, a burst of writes) never holds back the newest write's feeds."""
    older, newer = datetime(2025, 8, 1, 9, 0), datetime(2025, 8, 1, 9, 5)
    changed_at = {"tag:old": older, "author:old": older, "tag:new": newer, "site": newer}
    urls = ["/feeds/tag/old/rss.xml", "/feeds/author/old/rss.xml", "/feeds/profile/msn/tag/new/rss.xml",
            "/feeds/tag/new/feed.json", "/feeds/tag/new/rss.xml", "/feeds/rss.xml"]
    ordered = sorted((export.Document(url, "") for url in urls), key=lambda d: export._priority(d, changed_at))
    assert [d.url for d in ordered] == ["/feeds/rss.xml", "/feeds/tag/new/rss.xml", "/feeds/tag/new/feed.json",
                                        "/feeds/tag/old/rss.xml", "/feeds/author/old/rss.xml",
                                        "/feeds/profile/msn/tag/new/rss.xml"]
