"""The fragment file the worker processes share: what one rendered another composes from, byte for byte;
bounded; and a missing, unwritable or corrupt file costs renders, never an answer."""
from __future__ import annotations

import logging
import os
import sqlite3
import time

import pytest

from feedsvc.render import feeds
from feedsvc.render.feeds.fragment_file import FragmentFile, file_key
from feedsvc.render.feeds.fragments import Fragments
from feedsvc.render.feeds.model import Site
from feedsvc.web import db, documents
from tests.support.records import put_record
from tests.support.scopes import scope_ids


def worker(path, max_bytes: int = 1 << 24) -> Fragments:
    """One worker process's fragment cache, on the shared file at `path`."""
    return Fragments(revision="test", shared=FragmentFile(lambda: path, max_bytes))


@pytest.mark.parametrize("fmt", list(feeds.FORMATS))
def test_pages_composed_from_another_workers_fragments_are_the_whole_pages(sample_app, tmp_path, fmt):
    site = Site.from_config(sample_app.config)
    first, second = worker(tmp_path / "f.sqlite"), worker(tmp_path / "f.sqlite")
    with db.engine(sample_app).connect() as conn:
        for scope in scope_ids(conn):
            for edition in ({}, {"full_text": False}):
                whole = feeds.render(fmt, scope, conn=conn, site=site, **edition)
                assert feeds.render(fmt, scope, conn=conn, site=site, fragments=first, **edition) == whole
                assert feeds.render(fmt, scope, conn=conn, site=site, fragments=second, **edition) == whole
    # The second worker wrote nothing itself: every entry came from the file.
    assert second.shared_hits > 0 and second.misses == 0


def test_the_file_is_held_to_its_bytes_oldest_first(tmp_path):
    shared = FragmentFile(lambda: tmp_path / "f.sqlite", 10_000)
    for n in range(300):
        shared.put_all([(file_key(("rss", n)), b"%03d" % n * 33)])
    with sqlite3.connect(tmp_path / "f.sqlite") as conn:
        held = conn.execute("SELECT sum(length(body)) FROM fragment").fetchone()[0]
        assert held <= 10_000 and conn.execute("SELECT bytes FROM held").fetchone()[0] == held
    assert shared.get_all([file_key(("rss", 299)), file_key(("rss", 0))]) == [b"299" * 33, None]
    shared.put_all([(file_key(("rss", "big")), b"x" * 10_001)])   # larger than the whole file
    assert shared.get_all([file_key(("rss", "big"))]) == [None]


def test_a_corrupt_file_is_rendered_around_and_made_anew(sample_app, tmp_path, caplog):
    path = tmp_path / "f.sqlite"
    path.write_bytes(b"not a database " * 500)
    site = Site.from_config(sample_app.config)
    fragments = worker(path)
    with db.engine(sample_app).connect() as conn, caplog.at_level(logging.WARNING):
        whole = feeds.render("atom", "site", conn=conn, site=site)
        assert feeds.render("atom", "site", conn=conn, site=site, fragments=fragments) == whole
        assert "not a database" in caplog.text
        # The file was made anew: another worker finds what this one rendered since.
        feeds.render("rss", "site", conn=conn, site=site, fragments=fragments)
        later = worker(path)
        assert feeds.render("rss", "site", conn=conn, site=site, fragments=later) == \
            feeds.render("rss", "site", conn=conn, site=site)
        assert later.shared_hits > 0


def test_an_unwritable_folder_costs_renders_only(sample_app, tmp_path):
    blocked = tmp_path / "a file"
    blocked.write_bytes(b"")
    fragments = worker(blocked / "f.sqlite")   # its folder cannot be made
    site = Site.from_config(sample_app.config)
    with db.engine(sample_app).connect() as conn:
        assert feeds.render("json", "site", conn=conn, site=site, fragments=fragments) == \
            feeds.render("json", "site", conn=conn, site=site)
    assert fragments.shared_hits == 0 and len(fragments) > 0   # the memory cache works on


def test_workers_of_one_store_share_one_file_and_a_single_process_none(make_app, api_headers, make_record, tmp_path):
    settings = {"SERVER_PROCESSES": 2, "RATELIMIT_ENABLED": False, "FEED_FRAGMENTS_SHARED_DIR": str(tmp_path)}
    first, second = make_app(**settings), make_app(**settings)
    client = first.test_client()
    for n in range(3):
        put_record(client, api_headers, make_record(id=f"shared-{n}", slug=f"shared-{n}"))
    body = client.get("/feeds/atom.xml").get_data()
    assert second.test_client().get("/feeds/atom.xml").get_data() == body
    assert documents.fragments(second).shared_hits >= 3
    assert documents.fragments(first).shared.path == documents.fragments(second).shared.path
    assert documents.fragments(make_app()).shared is None


def test_files_of_other_stores_unused_for_an_hour_are_deleted(tmp_path):
    old, recent = tmp_path / "old.sqlite", tmp_path / "recent.sqlite"
    for path in (old, recent):
        FragmentFile(lambda path=path: path, 1 << 20).put_all([(file_key("k"), b"fragment")])
    hours_ago = time.time() - 2 * 3600
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(f"{old}{suffix}"):
            os.utime(f"{old}{suffix}", (hours_ago, hours_ago))
    FragmentFile(lambda: tmp_path / "ours.sqlite", 1 << 20).get_all([file_key("k")])
    assert sorted(path.name for path in tmp_path.glob("*.sqlite")) == ["ours.sqlite", "recent.sqlite"]
    assert not list(tmp_path.glob("old.sqlite*"))
