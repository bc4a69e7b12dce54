"""One source of truth for formats, scope kinds and feed URLs: everything else derives from them."""
from __future__ import annotations

import itertools

import pytest
from werkzeug.test import EnvironBuilder

from feedsvc import store
from feedsvc.ingest.records import parse_record
from feedsvc.publish import mirror
from feedsvc.render import profiles as shaping
from feedsvc.render.feeds import Scope, formats, opml, scopes_of
from feedsvc.render.feeds.model import SCOPE_WORDS
from feedsvc.render.feeds.urls import FeedTarget, feed_path, listing_path, parse_feed_path
from feedsvc.web.middleware.fastpath import feed_target
from feedsvc.web.profile_feeds import profiles_of
from tests.support.apps import SITE_URL
from tests.support.records import sample_records

SAMPLE_SCOPES = sorted({scope for record in sample_records()
                        for scope in store.article_scopes(parse_record(record, site_url=SITE_URL))})
EVERY_SCOPE = [Scope("site")] + [Scope(kind, f"{kind}-key-1" if kind in store.KEYED_KINDS else "")
                                  for kind in store.SCOPE_KINDS]


@pytest.mark.parametrize("kind", list(store.SCOPE_KINDS))
def test_every_scope_kinds_words_name_its_scope_and_group_it(kind):
    """A keyed kind's title, description and heading carry the scope's name (two tags' feeds must not
    read alike); a kind without keys has no name to carry. Its group is named in Hindi and English."""
    words = store.SCOPE_KINDS[kind].words
    for text in (words.feed_description, words.heading, words.lead):
        assert ("{name}" in text) == store.SCOPE_KINDS[kind].keyed, (kind, text)
    hindi, english = words.group
    assert any("\u0900" <= ch <= "\u097f" for ch in hindi) and english.isascii()
    assert opml.GROUP_TITLES[kind] == f"{hindi} ({english})"
    assert SCOPE_WORDS[kind] is words


def test_every_format_is_declared_once_with_its_writer():
    assert list(formats.FORMATS) == ["rss", "atom", "json"]
    assert {f.filename for f in formats.FORMATS.values()} == set(formats.BY_FILENAME)
    for name, fmt in formats.FORMATS.items():
        assert fmt.name == name and callable(fmt.write) and fmt.content_type.startswith(fmt.mimetype)


@pytest.mark.parametrize(("scope", "fmt"), list(itertools.product(EVERY_SCOPE, formats.FORMATS)))
def test_the_url_map_round_trips_every_scope_and_format(scope, fmt):
    path = feed_path(scope, fmt)
    assert path.endswith("/" + formats.FORMATS[fmt].filename)
    assert parse_feed_path(path) == FeedTarget(scope.kind, scope.key, fmt)


def test_only_feed_urls_parse_as_feeds():
    for path in ["/feeds", "/feeds.opml", "/feeds/", "/feeds/site/x/rss.xml", "/feeds/tag/x/rss.json",
                 "/feeds//rss.xml", "/feeds/rss.xml/", "/tag/x", listing_path(Scope("tag", "x")),
                 "/feeds/tag/rss.xml", "/feeds/video/x/rss.xml", "/feeds/video", listing_path(Scope("video"))]:
        assert parse_feed_path(path) is None, path


def test_an_articles_feeds_come_from_one_function():
    article = next(a for a in (parse_record(r, site_url=SITE_URL) for r in sample_records()) if a.has_video)
    scopes = store.article_scopes(article, "Site")
    assert next(iter(scopes.items())) == ("site", "Site")
    assert {scope_id.partition(":")[0] for scope_id in scopes} == {"site", *store.SCOPE_KINDS}
    assert [s.id for s in scopes_of(article)] == [scope_id for scope_id in scopes if scope_id != "site"]
    assert scopes[f"section:{article.section.key}"] == article.section.name


def test_blueprints_fast_path_and_mirror_agree_on_every_feed_url_of_the_sample_data(sample_app):
    """Every feed the mirror would write is served by the app, read by the fast path as the same
    scope, and ordered by the mirror as that scope: one map, four readers."""
    adapter = sample_app.url_map.bind("localhost")
    docs = mirror.feed_documents([store.ScopeState(s, "", 1, store.now_utc()) for s in SAMPLE_SCOPES], "salt")
    feed_docs = [d for d in docs if parse_feed_path(d.url)]
    assert len(feed_docs) == len(SAMPLE_SCOPES) * len(formats.FORMATS)
    for doc in feed_docs:
        target = parse_feed_path(doc.url)
        endpoint, values = adapter.match(doc.url)
        assert endpoint in ("feeds.site_feed", "feeds.scope_feed", "feeds.whole_kind_feed")
        assert FeedTarget(values["kind"], values["key"], values["fmt"]) == target
        partner_endpoint, partner_values = adapter.match("/partner" + doc.url)
        assert partner_endpoint == "partner_feeds.partner_feed" and partner_values == values
        assert feed_target(EnvironBuilder(path=doc.url).get_environ()) == (target.kind, target.key)
        assert target.scope.id in SAMPLE_SCOPES
        assert mirror._priority(doc)[-1] == target.scope.id
    profiles = list(profiles_of(sample_app).values())
    profile_docs = [d for d in mirror.feed_documents([store.ScopeState(s, "", 1, store.now_utc()) for s in SAMPLE_SCOPES],
                                                     "salt", profiles) if shaping.public_feed_path(d.url)
                    and parse_feed_path(shaping.public_feed_path(d.url))]
    assert len(profile_docs) == len(SAMPLE_SCOPES) * sum(len(p.formats) for p in profiles)
    for doc in profile_docs:
        target = parse_feed_path(shaping.public_feed_path(doc.url))
        endpoint, values = adapter.match(doc.url)
        assert endpoint == "profile_feeds.profile_feed" and (values["kind"], values["key"]) == (target.kind, target.key)
        assert feed_target(EnvironBuilder(path=doc.url).get_environ()) == (target.kind, target.key)
        assert mirror._priority(doc)[0] == 1 and mirror._priority(doc)[-1] == target.scope.id
    with sample_app.test_client() as client:
        for doc in profile_docs[::11]:
            assert client.get(doc.url).status_code == 200, doc.url
        for doc in feed_docs[::7]:
            response = client.get(doc.url)
            fmt = formats.FORMATS[parse_feed_path(doc.url).fmt]
            assert response.status_code == 200 and response.content_type == fmt.content_type


def test_listing_pages_are_routed_by_the_same_map(sample_app):
    adapter = sample_app.url_map.bind("localhost")
    for scope_id in SAMPLE_SCOPES:
        scope = Scope.from_id(scope_id)
        endpoint, values = adapter.match(listing_path(scope))
        assert endpoint == ("pages.home" if scope.kind == "site" else
                            "pages.scope_listing" if scope.key else "pages.whole_kind_listing")
        assert (values["kind"], values["key"]) == (scope.kind, scope.key)
