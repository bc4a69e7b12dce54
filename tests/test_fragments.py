"""Feeds composed from entry fragments are the bytes the writers produce whole, cold, warm or in part."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import feedparser
import orjson
import pytest

from feedsvc import store
from feedsvc.render import feeds, profile_fragments
from feedsvc.render.feeds.fragments import Fragments
from feedsvc.render.feeds.model import Scope, Site
from feedsvc.web import db, documents
from feedsvc.web.profile_feeds import profiles_of
from tests.support.records import put_record
from tests.support.scopes import scope_ids

EDITIONS = {
    "public": {},
    "summaries": {"full_text": False},
    "short pages": {"limit": 3},
    "one language": {"language": "hi"},
    "partner URL": {"self_url": "http://partner.example/feed?key=k"},
}


def pages(conn, site: Site, fmt: str, scope: str, edition: dict, fragments: Fragments | None) -> list[bytes]:
    """Every page of one feed (two at most), following its next links."""
    bodies, after = [], None
    for _ in range(2):
        body = feeds.render(fmt, scope, conn=conn, site=site, after=after, fragments=fragments, **edition)
        bodies.append(body)
        after = next_cursor(fmt, body)
        if after is None:
            break
    return bodies


def titles(fmt: str, body: bytes) -> list[str]:
    if fmt == "json":
        return [item["title"] for item in orjson.loads(body)["items"]]
    return [entry.title for entry in feedparser.parse(body).entries]


def next_cursor(fmt: str, body: bytes) -> str | None:
    if fmt == "json":
        url = orjson.loads(body).get("next_url")
    else:
        url = next((link.href for link in feedparser.parse(body).feed.get("links", []) if link.rel == "next"), None)
    if not url:
        return None
    return parse_qs(urlsplit(url).query)["after"][0]


@pytest.mark.slow
@pytest.mark.parametrize("fmt", list(feeds.FORMATS))
def test_composed_pages_are_the_whole_pages_cold_warm_and_in_part(sample_app, fmt):
    site = Site.from_config(sample_app.config)
    fragments = Fragments(revision="test")
    with db.engine(sample_app).connect() as conn:
        scopes = scope_ids(conn)
        assert {scope.partition(":")[0] for scope in scopes} == {"site", *store.SCOPE_KINDS}
        # Short pages first, so the longer ones after them find some of their entries remembered.
        editions = sorted(EDITIONS.items(), key=lambda item: item[0] != "short pages")
        for round_ in ("cold", "warm"):
            for scope in scopes:
                for name, edition in editions:
                    whole = pages(conn, site, fmt, scope, edition, None)
                    composed = pages(conn, site, fmt, scope, edition, fragments)
                    assert composed == whole, (round_, scope, name)
    assert fragments.hits > fragments.misses > 0


def test_an_edited_article_is_composed_anew(client, app, api_headers, make_record):
    for n in range(3):
        put_record(client, api_headers, make_record(id=f"edit-{n}", slug=f"edit-{n}", title=f"पहला {n}"))
    site = Site.from_config(app.config)
    with app.app_context():
        fragments = documents.fragments()
        assert fragments is not None
        with db.engine(app).connect() as conn:
            before = {fmt: feeds.render(fmt, "site", conn=conn, site=site, fragments=fragments)
                      for fmt in feeds.FORMATS}
    put_record(client, api_headers, make_record(id="edit-1", slug="edit-1", title="बदला हुआ शीर्षक"))
    with db.engine(app).connect() as conn:
        for fmt in feeds.FORMATS:
            composed = feeds.render(fmt, "site", conn=conn, site=site, fragments=fragments)
            assert composed == feeds.render(fmt, "site", conn=conn, site=site)
            assert composed != before[fmt]
            shown = titles(fmt, composed)
            assert "बदला हुआ शीर्षक" in shown and "पहला 1" not in shown
    # What the app serves is the composed page, and it shows the edit.
    assert "बदला हुआ शीर्षक" in client.get("/feeds/rss.xml").get_data(as_text=True)


def test_fragments_stay_within_their_byte_budget_and_revision():
    fragments = Fragments(max_bytes=1000, revision="r1")
    for n in range(50):
        fragments.put(fragments.key("rss", f"a{n}", 1), b"%02d" % n * 45)
    assert fragments.bytes <= 1000 and len(fragments) == 11
    assert fragments.get(fragments.key("rss", "a49", 1)) == b"49" * 45
    assert fragments.get(fragments.key("rss", "a0", 1)) is None            # the oldest went first
    assert fragments.get(fragments.key("rss", "a49", 2)) is None            # another version
    assert Fragments(revision="r2").key("rss", "a49", 1) != fragments.key("rss", "a49", 1)
    fragments.put(fragments.key("rss", "big", 1), b"x" * 1001)              # larger than the whole budget
    assert fragments.get(fragments.key("rss", "big", 1)) is None and fragments.bytes <= 1000


def test_equal_fragments_are_held_once():
    fragments = Fragments(max_bytes=1000, revision="r1")
    variants = [fragments.key("rss", "a1", 1, f"variant {n}") for n in range(50)]
    for key in variants:   # one entry as 50 variants write it (profiles writing it as the public feed does)
        fragments.put(key, bytes(bytearray(b"x" * 900)))   # equal bytes, 50 distinct objects
    assert len(fragments) == 50 and fragments.bytes == 900
    held = fragments.get_all(variants)
    assert all(piece is held[0] for piece in held)   # one object held, not 50 copies
    fragments.put(fragments.key("rss", "a2", 1), b"z" * 90)
    assert len(fragments) == 51 and fragments.bytes == 990
    # Over budget: the oldest keys leave first, and the shared bytes only with the last of them.
    fragments.put(fragments.key("rss", "a3", 1), b"w" * 90)
    assert fragments.bytes == 180 and len(fragments) == 2
    assert fragments.get_all(variants) == [None] * 50
    fragments.put(fragments.key("rss", "a2", 1), b"v" * 90)   # a key given new bytes lets go of its old ones
    assert fragments.bytes == 180 and fragments.get(fragments.key("rss", "a2", 1)) == b"v" * 90


def test_a_scope_state_is_read_once_for_every_format_and_page_size(client, app, api_headers, make_record):
    for n in range(4):
        put_record(client, api_headers, make_record(id=f"stamp-{n}", slug=f"stamp-{n}", title=f"ख़बर {n}"))
    site = Site.from_config(app.config)
    fragments = Fragments(revision="test")
    with db.engine(app).connect() as conn:
        state = feeds.state_of(conn, "site")
        for limit in (2, 3, 1):   # the widest read so far serves a narrower page
            for fmt in feeds.FORMATS:
                composed = feeds.render(fmt, "site", conn=conn, site=site, limit=limit, state=state, fragments=fragments)
                assert composed == feeds.render(fmt, "site", conn=conn, site=site, limit=limit, state=state)
        assert fragments.stamps.reads == 2   # limit 2 (3 rows read), then limit 3 (4 rows)
        feeds.render("rss", "site", conn=conn, site=site, limit=50, state=state, fragments=fragments)
        feeds.render("atom", "site", conn=conn, site=site, limit=60, state=state, fragments=fragments)
        assert fragments.stamps.reads == 3   # 51 asked, 4 there: every one there is, whatever is asked next
    put_record(client, api_headers, make_record(id="stamp-new", slug="stamp-new", title="नई ख़बर"))
    with db.engine(app).connect() as conn:
        state = feeds.state_of(conn, "site")
        composed = feeds.render("json", "site", conn=conn, site=site, limit=2, state=state, fragments=fragments)
        assert "नई ख़बर" in titles("json", composed) and fragments.stamps.reads == 4   # a new state, read anew
        # Once the profiles' base has read its (longer) list, a public first page reads as many for it.
        profiles = list(profiles_of(app).values())
        profile_fragments.load_base(conn, site, Scope("site"), state, profiles, fragments=fragments)
        assert fragments.stamps.reads == 5
    put_record(client, api_headers, make_record(id="stamp-newer", slug="stamp-newer", title="और नई ख़बर"))
    with db.engine(app).connect() as conn:
        state = feeds.state_of(conn, "site")
        feeds.render("atom", "site", conn=conn, site=site, limit=2, state=state, fragments=fragments)
        base = profile_fragments.load_base(conn, site, Scope("site"), state, profiles, fragments=fragments)
        assert fragments.stamps.reads == 6 and base.keys[0][0] == "stamp-newer"
