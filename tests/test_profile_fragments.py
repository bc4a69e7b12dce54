"""Aggregator profile feeds composed from entry fragments are the bytes profiles.shape + profiles.write
produce whole: every profile, scope kind and format, cold, warm and in part (a cache too small for
them all), with deletion markers, short titles and byte budgets among them."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import feedparser
import orjson
import pytest

from feedsvc import store
from feedsvc.render import feeds, profile_fragments
from feedsvc.render import profiles as shaping
from feedsvc.render.feeds.ext import MI_NS
from feedsvc.render.feeds.fragments import Fragments
from feedsvc.render.feeds.model import Scope, Site
from feedsvc.web import db, documents
from feedsvc.web.profile_feeds import profiles_of
from tests.support.apps import SITE_URL, import_samples
from tests.support.records import put_record
from tests.support.scopes import scope_ids

IST = timezone(timedelta(hours=5, minutes=30))
# Budgets no page meets whole: none of its items fit, or some do.
BUDGETS = (100, 30_000)


def recent(make_record, n: int, **changes) -> dict:
    when = (datetime.now(IST) - timedelta(hours=n + 1)).replace(microsecond=0).isoformat()
    changes.setdefault("title", f"संसद का मानसून सत्र आज से शुरू, विधेयक संख्या {n} पेश होगा और उस पर बहस होगी")
    return make_record(id=f"recent-{n}", slug=f"recent-{n}", published=when, updated=when, **changes)


@pytest.fixture
def changed_app(app, client, api_headers, make_record):
    """The samples, six fresh articles (short titles on some) and two of them withdrawn since."""
    import_samples(app)
    for n in range(6):
        put_record(client, api_headers, recent(make_record, n, short_title="मानसून सत्र शुरू" if n % 2 else None))
    for n in (1, 4):
        response = client.delete(f"/api/articles/recent-{n}", headers=api_headers)
        assert response.status_code in (200, 204), response.data
    return app


def with_budget(profile, budget: int):
    return replace(profile, rules={**profile.rules, "bytes": {"max": budget, "sources": []}})


def item_count(fmt: str, body: bytes) -> int:
    if fmt == "json":
        return len(orjson.loads(body)["items"])
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.bozo_exception
    return len(parsed.entries)


@pytest.mark.slow
def test_composed_profile_pages_are_the_whole_pages_cold_warm_and_in_part(changed_app):
    site = Site.from_config(changed_app.config)
    built_in = list(profiles_of(changed_app).values())
    every = built_in + [with_budget(profile, budget) for profile in built_in for budget in BUDGETS]
    now = datetime.now(timezone.utc)
    seen = {"marker": 0, "short title": 0, "cut by budget": 0, "empty by budget": 0}
    with db.engine(changed_app).connect() as conn:
        scopes = list(dict.fromkeys(scope_ids(conn) + ["section:national", "tag:parliament"]))
        assert {scope.partition(":")[0] for scope in scopes} == {"site", *store.SCOPE_KINDS}

        def every_page(fragments: Fragments, round_: str) -> None:
            for scope_id in scopes:
                state = feeds.state_of(conn, scope_id)
                named = Scope.from_id(scope_id)
                scope = Scope(named.kind, named.key, state.name)
                whole_base = shaping.load_base_feed(conn, site, scope, state, built_in)
                # Its stamps as the public pages of the state read them (the warm round: read already).
                feeds.render("rss", scope, conn=conn, site=site, state=state, fragments=fragments)
                base = profile_fragments.load_base(conn, site, scope, state, built_in, fragments=fragments)
                for profile in every:
                    for fmt in profile.formats:
                        self_url = shaping.profile_feed_url(profile.name, scope, fmt, SITE_URL)
                        whole = shaping.write(profile, fmt, shaping.shape(profile, whole_base, fmt=fmt,
                                                                           self_url=self_url, now=now))
                        composed = profile_fragments.render(profile, fmt, base, conn=conn, self_url=self_url,
                                                            now=now, fragments=fragments)
                        assert composed == whole, (round_, scope_id, profile.name, fmt, profile.rule("bytes"))
                        seen["marker"] += shaping.WITHDRAWN_TITLE.encode() in composed
                        seen["short title"] += MI_NS.encode() in composed
                        if profile.value("bytes", "max") in BUDGETS:
                            count = item_count(fmt, composed)
                            seen["empty by budget"] += count == 0
                            seen["cut by budget"] += count > 0

        every_remembered = Fragments(revision="test")
        every_page(every_remembered, "cold")
        every_page(every_remembered, "warm")
        assert every_remembered.hits > every_remembered.misses > 0
        # A cache that holds only some of them: pages with some entries remembered and some written.
        some_remembered = Fragments(max_bytes=every_remembered.bytes // 4, revision="test")
        every_page(some_remembered, "in part")
        assert some_remembered.hits and some_remembered.misses
    assert all(seen.values()), seen


def test_a_profile_feed_served_shows_an_edit_and_is_composed(client, app, api_headers, make_record):
    for n in range(3):
        put_record(client, api_headers, recent(make_record, n))
    before = client.get("/feeds/profile/msn/rss.xml").get_data(as_text=True)
    put_record(client, api_headers, recent(make_record, 1, title="बदला हुआ शीर्षक जो इक्कीस अक्षरों से लंबा है"))
    after = client.get("/feeds/profile/msn/rss.xml")
    assert after.status_code == 200
    text = after.get_data(as_text=True)
    assert "बदला हुआ शीर्षक" in text and "बदला हुआ शीर्षक" not in before
    with app.app_context():
        remembered, site = documents.fragments(), documents.site()
    assert remembered is not None and remembered.misses > 0   # the served page was composed
    with db.engine(app).connect() as conn:
        state = feeds.state_of(conn, "site")
        profile = profiles_of(app)["msn"]
        whole = shaping.write(profile, "rss", shaping.shape(
            profile, shaping.load_base_feed(conn, site, Scope("site"), state, profiles_of(app).values()),
            fmt="rss", self_url=shaping.profile_feed_url("msn", Scope("site"), "rss", SITE_URL),
            now=datetime.now(timezone.utc)))
    assert after.data == whole
