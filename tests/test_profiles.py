"""Aggregator profiles: one test per rule of each built-in profile, the edge cases of issue 18, the
profile URLs, start-up checks of profile files, `validate --profile` and partners bound to a profile."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import feedparser
import lxml.html
import pytest
from lxml import etree

from feedsvc import profiles
from feedsvc.ingest.records import parse_record
from feedsvc.ops.metrics import PROFILE_LEFT_OUT
from feedsvc.profiles.text import graphemes, length
from feedsvc.render import profiles as shaping
from feedsvc.render.feeds.entries import entry_from_article
from feedsvc.render.feeds.ext import MI_NS, SNF_NS, WEBFEEDS_NS
from feedsvc.render.feeds.model import Feed, Scope, Site, Tombstone
from tests.support.apps import SITE_URL
from tests.support.records import VALID_RECORD

pytestmark = pytest.mark.postgresql_once  # parametrised over inputs, not over SQL: PostgreSQL runs the first

NOW = datetime(2025, 8, 2, 12, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))
SITE = Site(url=SITE_URL, name="समाचार", description="देश, दुनिया, खेल, कारोबार और मनोरंजन की ताज़ा ख़बरें हिंदी में",
            language="hi", logo=f"{SITE_URL}/static/logo.png", icon=f"{SITE_URL}/static/icon.png", copyright="©")
BUILT_IN = profiles.built_in()
YEAR_AGO = "2024-07-01T09:00:00+05:30"   # over MSN's 364 days before NOW
CONJUNCT_WORD = "क्षत्रिय"   # क्ष and त्रि are one grapheme cluster each


def record(n: int = 1, **changes) -> dict:
    data = dict(VALID_RECORD, id=f"p-{n}", slug=f"story-{n}", **changes)
    return {k: v for k, v in data.items() if v is not None}


def feed_of(*records: dict) -> Feed:
    articles = [parse_record(r, site_url=SITE_URL) for r in records]
    entries = [entry_from_article(a, SITE, full_text=True) for a in articles]
    return Feed(site=SITE, scope=Scope("site"), id="tag:x,2025:feeds", title=SITE.name, description=SITE.description,
                home_url=SITE_URL + "/", self_url=SITE_URL + "/feeds/rss.xml", first_url=SITE_URL + "/feeds/rss.xml",
                next_url=None, updated=NOW, entries=entries, sources={e.id: a for e, a in zip(entries, articles, strict=True)})


def shaped(name: str, *records: dict, now: datetime = NOW) -> Feed:
    return shaping.shape(BUILT_IN[name], feed_of(*records), fmt="rss", self_url=f"{SITE_URL}/x", now=now)


def rss(name: str, feed: Feed) -> etree._Element:
    return etree.fromstring(shaping.write(BUILT_IN[name], "rss", feed))


def title_of_graphemes(count: int) -> str:
    """A title of `count` grapheme clusters whose last word is a conjunct-heavy one."""
    tail = " " + CONJUNCT_WORD
    head = "क" * (count - length(tail))
    return head[: len(head) // 2] + " " + head[len(head) // 2 + 1:] + tail if count > 20 else head + tail


@pytest.fixture
def left_out():
    seen = []

    def listen(profile, items, **_):
        seen.extend((profile, left.rule) for left in items)
    shaping.left_out.connect(listen)
    yield seen
    shaping.left_out.disconnect(listen)


# ---- title ------------------------------------------------------------------------------------

@pytest.mark.parametrize("count", [60, 61])
def test_apple_news_title_max(count):
    title = title_of_graphemes(count)
    assert length(title) == count
    [entry] = shaped("apple-news", record(title=title)).entries
    assert length(entry.title) <= 60
    if count == 60:
        assert entry.title == title
    else:
        # cut at the space before the conjunct word: no cluster split, no dangling virama
        assert entry.title.endswith("…") and CONJUNCT_WORD not in entry.title
        assert all(cluster in graphemes(title) or cluster == "…" for cluster in graphemes(entry.title))
        assert not entry.title.rstrip("…").endswith("्")


def test_apple_news_title_max_in_one_long_word_keeps_conjuncts_whole():
    title = "क्ष" * 30 + "त्रि" * 31   # 61 clusters of three code points, no space to cut at
    [entry] = shaped("apple-news", record(title=title)).entries
    kept = graphemes(entry.title.rstrip("…"))
    assert len(kept) == 59 and set(kept) <= {"क्ष", "त्रि"}


@pytest.mark.parametrize("count", [14, 15])
def test_apple_news_title_has_no_minimum(count):
    title = title_of_graphemes(count)
    assert [e.title for e in shaped("apple-news", record(title=title)).entries] == [title]


@pytest.mark.parametrize("count, kept", [(20, False), (21, True)])
def test_msn_title_min(count, kept, left_out):
    feed = shaped("msn", record(title=title_of_graphemes(count)))
    assert bool(feed.entries) is kept
    assert (("msn", "title.min") in left_out) is not kept


def test_msn_title_max_cuts_over_150():
    [entry] = shaped("msn", record(title=("समाचार " * 40).strip())).entries
    assert length(entry.title) <= 150 and entry.title.endswith("…")


def test_msn_title_short_title_element():
    root = rss("msn", shaped("msn", record(short_title="मानसून सत्र शुरू")))
    assert root.find(f".//item/{{{MI_NS}}}shortTitle").text == "मानसून सत्र शुरू"


def test_apple_news_title_short_title_replaces_a_long_title():
    [entry] = shaped("apple-news", record(title=title_of_graphemes(80), short_title="मानसून सत्र शुरू")).entries
    assert entry.title == "मानसून सत्र शुरू"


# ---- window, bytes, dates ---------------------------------------------------------------------

def test_msn_window_max_count():
    feed = shaped("msn", *[record(n) for n in range(40)])
    assert len(feed.entries) == 29


def test_msn_window_max_age_days(left_out):
    old = record(2, published="2024-07-01T09:00:00+05:30", updated="2024-07-01T09:00:00+05:30")
    feed = shaped("msn", record(1), old)
    assert [e.id.rsplit("/", 1)[1] for e in feed.entries] == ["p-1"]
    assert ("msn", "window.max_age_days") in left_out


@pytest.mark.parametrize("name", ["msn", "smartnews", "flipboard", "google-news", "apple-news"])
def test_dates_no_future(name, left_out):
    tomorrow = (NOW + timedelta(days=1)).isoformat()
    image = {"url": "/media/x.jpg", "width": 1200, "height": 675}
    feed = shaped(name, record(1, image=image), record(2, published=tomorrow, updated=tomorrow, image=image))
    assert "p-2" not in [e.id.rsplit("/", 1)[1] for e in feed.entries]
    assert (name, "dates.no_future") in left_out


def long_record(n: int) -> dict:
    body = "".join(f"<p>{'भारत की अर्थव्यवस्था तेज़ी से बढ़ रही है। ' * 40}</p>" for _ in range(6))
    return record(n, body_html=body, published=f"2025-08-01T{n // 60:02d}:{n % 60:02d}:00+05:30",
                  updated=f"2025-08-01T{n // 60:02d}:{n % 60:02d}:00+05:30")


@pytest.mark.parametrize("name, budget", [("google-news", 2_000_000), ("smartnews", 1_000_000)])
def test_bytes_max_keeps_whole_items(name, budget):
    feed = shaping.shape(replace(BUILT_IN[name], rules={**BUILT_IN[name].rules, "window": {"max_count": 200, "sources": []}}),
                         feed_of(*[long_record(n) for n in range(200)]), fmt="rss", self_url=SITE_URL, now=NOW)
    body = shaping.write(BUILT_IN[name], "rss", feed)
    parsed = feedparser.parse(body)
    assert len(body) <= budget < len(shaping.feeds.write("rss", feed))
    assert not parsed.bozo and 0 < len(parsed.entries) < 200
    assert all(e.content[0].value.endswith("</p>") for e in parsed.entries)   # never cut mid-item


def test_google_news_window_max_count():
    assert len(shaped("google-news", *[record(n) for n in range(70)]).entries) == 60


def test_flipboard_window_min_count_is_reported_by_the_checker():
    from feedsvc.validate.profile_rules import profile_problems
    body = shaping.write(BUILT_IN["flipboard"], "rss", shaped("flipboard", record(1)))
    assert "flipboard:window.min_count" in {p.rule for p in profile_problems(BUILT_IN["flipboard"], body, "rss",
                                                                             now=NOW)}


# ---- language, channel --------------------------------------------------------------------------

def test_msn_language_one_language(left_out):
    feed = shaped("msn", record(1), record(2, language="en", title="Monsoon session of Parliament begins today"))
    assert [e.language for e in feed.entries] == ["hi"]
    assert ("msn", "language.one_language") in left_out


@pytest.mark.parametrize("name", ["flipboard", "smartnews", "google-news"])
def test_mixed_languages_kept_where_the_profile_allows(name):
    image = {"url": "/media/x.jpg", "width": 1200, "height": 675}
    feed = shaped(name, record(1, image=image, summary="स" * 400),
                  record(2, language="en", title="Monsoon session begins", image=image, summary="s" * 400))
    assert sorted(e.language for e in feed.entries) == ["en", "hi"]


def test_apple_news_language_tag():
    assert rss("apple-news", shaped("apple-news", record())).findtext("channel/language") == "hi-IN"


def test_smartnews_channel_description_max():
    description = rss("smartnews", shaped("smartnews", record())).findtext("channel/description")
    assert length(description) <= 30 < length(SITE.description)


# ---- text, summary, HTML, images, links --------------------------------------------------------

@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_text_full(name):
    image = {"url": "/media/x.jpg", "width": 1200, "height": 675}
    [entry] = shaped(name, record(image=image, summary="स" * 400)).entries
    assert "विधेयक" in entry.content_html


def test_flipboard_summary_min():
    body = "".join(f"<p>{'संसद में आज कई विधेयक पेश किए जाएँगे। ' * 10}</p>" for _ in range(3))
    [entry] = shaped("flipboard", record(body_html=body, image={"url": "/m.jpg", "width": 800, "height": 600})).entries
    assert length(entry.summary) >= 300


def test_flipboard_summary_min_leaves_out_a_short_story(left_out):
    assert not shaped("flipboard", record(image={"url": "/m.jpg", "width": 800, "height": 600})).entries
    assert ("flipboard", "summary.min") in left_out


def test_msn_html_allow_list():
    body = "<p>पाठ</p><figure><img src='https://x.example/a.jpg' alt=''><figcaption>चित्र</figcaption></figure>" \
           "<table><tr><td>१</td></tr></table><pre>कोड</pre>"
    [entry] = shaped("msn", record(body_html=body, image=None)).entries
    assert "<table>" in entry.content_html and "<figure" not in entry.content_html and "<pre" not in entry.content_html


@pytest.mark.parametrize("width, kept", [(719, False), (720, True)])
def test_msn_image_min_px(width, kept):
    [entry] = shaped("msn", record(image={"url": "/m.jpg", "width": width, "height": 400})).entries
    assert (entry.image is not None) is kept   # an item without a usable image stays (image.without = keep)


@pytest.mark.parametrize("height, kept", [(381, True), (380, False)])
def test_msn_image_aspect(height, kept):
    [entry] = shaped("msn", record(image={"url": "/m.jpg", "width": 720, "height": height})).entries
    assert (entry.image is not None) is kept   # 720/381 = 1.890, 720/380 = 1.895


@pytest.mark.parametrize("side, kept", [(499, False), (500, True)])
def test_flipboard_image_min_px_and_without(side, kept, left_out):
    feed = shaped("flipboard", record(image={"url": "/m.jpg", "width": 1200, "height": side}, summary="स" * 400))
    assert bool(feed.entries) is kept
    assert (("flipboard", "image.without") in left_out) is not kept


@pytest.mark.parametrize("side, kept", [(199, False), (200, True)])
def test_smartnews_image_min_px(side, kept):
    [entry] = shaped("smartnews", record(image={"url": "/m.jpg", "width": 300, "height": side})).entries
    assert (entry.image is not None) is kept


@pytest.mark.parametrize("name, tagged", [("msn", True), ("flipboard", True), ("smartnews", False)])
def test_links_utm(name, tagged):
    image = {"url": "/media/x.jpg", "width": 1200, "height": 675}
    root = rss(name, shaped(name, record(image=image, summary="स" * 400)))
    assert ("utm_source=" in root.findtext("channel/item/link")) is tagged
    assert "utm_" not in root.findtext("channel/item/guid")


# ---- namespaces and updates ----------------------------------------------------------------------

@pytest.mark.parametrize("name, namespace, element", [("readers", WEBFEEDS_NS, "channel/{%s}accentColor"),
                                                      ("smartnews", SNF_NS, "channel/{%s}logo/{%s}url")])
def test_extensions(name, namespace, element):
    root = rss(name, shaped(name, record()))
    assert root.find(element.replace("%s", namespace)) is not None
    assert not feedparser.parse(etree.tostring(root)).bozo


@pytest.mark.parametrize("name, moves", [("google-news", True), ("smartnews", True), ("msn", False)])
def test_updates_on_significant_update(name, moves):
    changed = record(significantly_updated="2025-08-01T15:00:00+05:30", updated="2025-08-01T16:00:00+05:30",
                     image={"url": "/m.jpg", "width": 1200, "height": 675})
    [entry] = shaped(name, changed).entries
    assert (entry.published.isoformat() == "2025-08-01T15:00:00+05:30") is moves


def test_exclude_profiles_keeps_an_article_out():
    feed = shaped("smartnews", record(1), record(2, syndication={"exclude_profiles": ["smartnews"]}))
    assert [e.id.rsplit("/", 1)[1] for e in feed.entries] == ["p-1"]


# ---- profile files -------------------------------------------------------------------------------

def test_malformed_profile_stops_start_up_naming_file_and_field(tmp_path, make_app):
    text = (profiles.BUILT_IN / "msn.toml").read_text("utf-8").replace("min = 21", 'min = "twenty"')
    (tmp_path / "msn.toml").write_text(text, "utf-8")
    with pytest.raises(profiles.ProfileError) as raised:
        make_app(PROFILES_DIR=str(tmp_path))
    assert raised.value.path.endswith("msn.toml") and raised.value.field == "rules.title.min"


def test_profile_rule_must_name_known_sources(tmp_path):
    text = (profiles.BUILT_IN / "msn.toml").read_text("utf-8").replace('sources = ["M1", "M6"]', 'sources = ["M99"]')
    (tmp_path / "msn.toml").write_text(text, "utf-8")
    with pytest.raises(profiles.ProfileError, match=r"msn.toml: rules.bytes.sources.0: names 'M99'"):
        profiles.parse(tmp_path / "msn.toml")


# ---- served -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_every_profile_feed_reads_without_bozo(sample_client, name):
    for fmt in BUILT_IN[name].formats:
        filename = {"rss": "rss.xml", "atom": "atom.xml", "json": "feed.json"}[fmt]
        for path in (f"/feeds/profile/{name}/{filename}", f"/feeds/profile/{name}/section/national/{filename}"):
            response = sample_client.get(path)
            assert response.status_code == 200, path
            if fmt != "json":
                assert not feedparser.parse(response.data).bozo, path


def test_unknown_profile_is_a_404_listing_the_profiles(sample_client):
    response = sample_client.get("/feeds/profile/nope/rss.xml")
    listing = {"error": "unknown profile", "profiles": sorted(BUILT_IN), "directory": f"{SITE_URL}/feeds/profiles"}
    assert response.status_code == 404
    assert response.get_json() == {**listing, "message": "no feed profile named 'nope'"}
    not_taken = sample_client.get("/feeds/profile/smartnews/atom.xml")   # a format it does not take
    assert not_taken.status_code == 404
    assert not_taken.get_json() == {**listing, "message": "the smartnews profile serves rss only"}


def test_profiles_json_and_page(sample_client):
    listed = {p["name"]: p for p in sample_client.get("/feeds/profiles.json").get_json()["profiles"]}
    assert set(listed) == set(BUILT_IN)
    assert listed["msn"]["feeds"] == {"rss": f"{SITE_URL}/feeds/profile/msn/rss.xml",
                                      "atom": f"{SITE_URL}/feeds/profile/msn/atom.xml"}
    assert listed["msn"]["rules"]["title"]["max"] == 150 and listed["msn"]["rules"]["title"]["sources"][0]["url"]
    page = sample_client.get("/feeds/profiles")
    assert page.status_code == 200 and "msn" in page.get_data(as_text=True)


def test_profile_opml_lists_profile_feeds(sample_client):
    root = etree.fromstring(sample_client.get("/feeds/profile/flipboard/feeds.opml").data)
    urls = [o.get("xmlUrl") for o in root.iter("outline") if o.get("xmlUrl")]
    assert f"{SITE_URL}/feeds/profile/flipboard/rss.xml" in urls
    assert f"{SITE_URL}/feeds/profile/flipboard/section/national/rss.xml" in urls


def test_profile_feed_answers_304(sample_client):
    first = sample_client.get("/feeds/profile/smartnews/rss.xml")
    again = sample_client.get("/feeds/profile/smartnews/rss.xml", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304


def test_left_out_items_are_counted_in_metrics(sample_client):
    sample_client.get("/feeds/profile/msn/section/national/rss.xml")   # the samples are over a year old
    metrics = sample_client.get("/metrics").get_data(as_text=True)
    assert 'feedsvc_profile_items_left_out_total{profile="msn",rule="window.max_age_days"}' in metrics


def test_validate_profile_names_broken_rules_with_item_ids(sample_app, tmp_path):
    document = tmp_path / "feed.xml"
    document.write_bytes(sample_app.test_client().get("/feeds/rss.xml").data)
    result = sample_app.test_cli_runner().invoke(args=["validate", "--profile", "msn", str(document)])
    assert result.exit_code == 1
    assert "msn:window.max_count" in result.output
    assert "msn:window.max_age_days: item tag:" in result.output


def test_partner_bound_to_a_profile_gets_its_feed(runner, client, api_headers):
    from tests.support.records import put_record
    put_record(client, api_headers, record(1, image={"url": "/m.jpg", "width": 1200, "height": 675}))
    result = runner.invoke(args=["partners", "add", "Smart", "--profile", "smartnews"])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    body = client.get("/partner/feeds/rss.xml", headers={"X-Partner-Key": key}).data
    assert etree.fromstring(body).find(f"channel/{{{SNF_NS}}}logo") is not None
    refused = runner.invoke(args=["partners", "add", "Other", "--profile", "nope"])
    assert refused.exit_code != 0 and "smartnews" in refused.output


# ---- withdrawn articles (end to end: test_profile_deletions.py) ------------------------------------

def feed_with_withdrawals(*days_before_change: float) -> Feed:
    gone = [Tombstone(f"tag:x,2025:articles/w-{i}", NOW - timedelta(days=d), f"{SITE_URL}/articles/w-{i}")
            for i, d in enumerate(days_before_change)]
    return replace(feed_of(*[record(n) for n in range(40)]), tombstones=gone)


def markers_of(feed: Feed) -> list[str]:
    return [e.id.rsplit("/", 1)[1] for e in feed.entries if e.title == shaping.WITHDRAWN_TITLE]


@pytest.mark.parametrize("name", ["msn", "smartnews"])
def test_updates_deletion_days(name):
    shaped_feed = shaping.shape(BUILT_IN[name], feed_with_withdrawals(0, 6.9, 7.1, 30), fmt="rss",
                                self_url=SITE_URL, now=NOW)
    assert BUILT_IN[name].value("updates", "deletion_days") == 7
    assert markers_of(shaped_feed) == ["w-0", "w-1"]   # a week back from the scope's last change, then gone


def test_updates_deletion_days_defaults_to_the_sites_tombstone_window():
    shaped_feed = shaping.shape(BUILT_IN["readers"], feed_with_withdrawals(0, 29, 31), fmt="atom",
                                self_url=SITE_URL, now=NOW)
    assert [t.ref.rsplit("/", 1)[1] for t in shaped_feed.tombstones] == ["w-0", "w-1"]   # Site.tombstone_days = 30
    assert not markers_of(shaped_feed)


def test_msn_window_max_count_keeps_markers_first():
    shaped_feed = shaping.shape(BUILT_IN["msn"], feed_with_withdrawals(0, 1), fmt="rss", self_url=SITE_URL, now=NOW)
    assert len(shaped_feed.entries) == 29 and markers_of(shaped_feed) == ["w-0", "w-1"]
    assert [e.title for e in shaped_feed.entries[:2]] == [shaping.WITHDRAWN_TITLE] * 2


def test_withdrawn_title_meets_the_title_rule_of_every_profile_with_markers():
    for profile in BUILT_IN.values():
        if shaping.deletions_of(profile) in shaping.MARKED_IN_ITEMS:
            title = profile.rule("title")
            assert title.get("min", 0) <= length(shaping.WITHDRAWN_TITLE) <= title.get("max", 10**6), profile.name


# ---- Apple News: no "read more" teasers ----------------------------------------------------------

@pytest.mark.parametrize("summary, kept", [("संसद का सत्र आज से शुरू… और पढ़ें »", "संसद का सत्र आज से शुरू"),
                                           ("The session opens today. Read more...", "The session opens today"),
                                           ("बहस जारी रहेगी", "बहस जारी रहेगी")])
def test_apple_news_summary_teasers(summary, kept):
    [entry] = shaped("apple-news", record(summary=summary)).entries
    assert entry.summary == kept


def test_apple_news_summary_teasers_is_reported_by_the_checker():
    from feedsvc.validate.profile_rules import profile_problems
    body = shaping.feeds.write("rss", feed_of(record(summary="संसद का सत्र आज से शुरू… आगे पढ़ें")))
    assert "apple-news:summary.teasers" in {p.rule for p in profile_problems(BUILT_IN["apple-news"], body, "rss",
                                                                              now=NOW)}


# ---- SmartNews: snf:analytics ---------------------------------------------------------------------

def test_smartnews_extensions_analytics():
    site = replace(SITE, smartnews_analytics_id="G-ABC123XYZ")
    feed = replace(feed_of(record(title="</script>]]> मानसून सत्र आज से शुरू & <b>")), site=site)
    root = rss("smartnews", shaping.shape(BUILT_IN["smartnews"], feed, fmt="rss", self_url=SITE_URL, now=NOW))
    tag = root.findtext(f"channel/item/{{{SNF_NS}}}analytics")
    assert "gtag/js?id=G-ABC123XYZ" in tag and "'G-ABC123XYZ'" not in tag and '"G-ABC123XYZ"' in tag
    scripts = lxml.html.fragment_fromstring(tag, create_parent="div").findall("script")
    assert len(scripts) == 2 and "</script>" not in scripts[1].text and "]]>" not in tag
    assert "https://www.smartnews.com/" in scripts[1].text


def test_smartnews_extensions_analytics_left_out_without_an_id():
    root = rss("smartnews", shaped("smartnews", record()))
    assert root.find(f"channel/item/{{{SNF_NS}}}analytics") is None


# ---- fast: an entry is shaped once per content, for every scope and format --------------------------

def test_an_entry_is_shaped_once_per_content(monkeypatch):
    calls = []
    real = shaping.shape_entry
    monkeypatch.setattr(shaping, "shape_entry", lambda *args: calls.append(args[1].id) or real(*args))
    unique = record(7001, title="एक ख़ास ख़बर जो केवल इस परीक्षण में है, आकार एक बार")
    for fmt in ("rss", "atom"):
        for feed in (feed_of(unique), feed_of(unique, record(7002))):   # two scopes holding the article
            shaping.shape(BUILT_IN["google-news"], feed, fmt=fmt, self_url=SITE_URL, now=NOW)
    assert calls.count(feed_of(unique).entries[0].id) == 1
    edited = dict(unique, title=unique["title"] + " (बदली)", updated="2025-08-01T10:00:00+05:30")
    shaping.shape(BUILT_IN["google-news"], feed_of(edited), fmt="rss", self_url=SITE_URL, now=NOW)
    assert calls.count(feed_of(unique).entries[0].id) == 2   # an edit is shaped again


def test_left_out_items_are_announced_with_id_rule_and_reason():
    heard = []

    def hear(profile, items, **_):
        heard.append((profile, items))
    with shaping.left_out.connected_to(hear):
        shaped("msn", record(8001, title=title_of_graphemes(20)))
    [(profile, items)] = heard   # one signal per check, with every item it left out
    [said] = [left for left in items if left.item.endswith("8001")]
    assert profile == "msn" and said.rule == "title.min" and "at least 21" in said.message


def test_metrics_count_each_rule_of_each_item_a_check_leaves_out(app):
    def counted() -> float:
        [family] = PROFILE_LEFT_OUT.collect()
        return sum(sample.value for sample in family.samples if sample.name.endswith("_total")
                   and sample.labels == {"profile": "msn", "rule": "window.max_age_days"})
    before = counted()
    with app.app_context():   # each app counts what is rendered in its context (web/app_signals.py)
        shaped("msn", record(1), *[record(8100 + n, published=YEAR_AGO, updated=YEAR_AGO) for n in range(4)])
    assert counted() - before == 4


def test_left_out_logs_date_rules_as_one_info_line_per_check_and_real_breaks_as_warnings(caplog):
    # An old corpus leaves out thousands of articles for their dates: one line per check, not one per item.
    olds = [record(8200 + n, published=YEAR_AGO, updated=YEAR_AGO) for n in range(5)]
    tomorrow = (NOW + timedelta(days=1)).isoformat()
    checked = (record(1), record(8300, title=title_of_graphemes(20)), record(8301, published=tomorrow, updated=tomorrow),
               *olds)
    with caplog.at_level(logging.INFO, logger=shaping.__name__):
        shaped("msn", *checked)
    said = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == shaping.__name__]
    [warning] = [message for level, message in said if level == logging.WARNING]
    assert "p-8300" in warning and "title.min" in warning
    assert [message for level, message in said if level == logging.INFO] == \
        ["left out of the msn feeds by their dates: 1 dates.no_future, 5 window.max_age_days"]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=shaping.__name__):
        shaped("msn", *checked)   # the same versions again: nothing new to say
    assert not [r for r in caplog.records if r.name == shaping.__name__]


# ---- rules every profile may set, each profile that sets it --------------------------------------

@pytest.mark.parametrize("name", [n for n in sorted(BUILT_IN) if BUILT_IN[n].value("language", "tag")])
def test_language_tag(name):
    image = {"url": "/media/x.jpg", "width": 1200, "height": 675}
    feed = shaped(name, record(image=image, summary="स" * 400))
    assert rss(name, feed).findtext("channel/language") == BUILT_IN[name].value("language", "tag")


@pytest.mark.parametrize("name", [n for n in sorted(BUILT_IN) if BUILT_IN[n].value("window", "max_count")])
def test_window_max_count(name):
    maximum = BUILT_IN[name].value("window", "max_count")
    image = {"url": "/media/x.jpg", "width": 1200, "height": 675}
    feed = shaped(name, *[record(n, image=image, summary="स" * 400) for n in range(maximum + 5)])
    assert len(feed.entries) == maximum


@pytest.mark.parametrize("name", [n for n in sorted(BUILT_IN) if BUILT_IN[n].rule("html")])
def test_html_allow_list(name):
    body = ("<p>पाठ <b>मोटा</b> <a href='https://x.example/' title='t'>कड़ी</a></p><figure><img src='https://x.example/a.jpg'"
            " alt='' width='800' height='450'><figcaption>चित्र</figcaption></figure><table><tr><td>१</td></tr></table>"
            "<pre>कोड</pre><h2>शीर्षक</h2>")
    [entry] = shaped(name, record(body_html=body, image=None, summary="स" * 400)).entries
    allowed = set(BUILT_IN[name].rule("html")["tags"])
    root = lxml.html.fragment_fromstring(entry.content_html, create_parent="div")
    found = {element.tag for element in root.iter() if element is not root}
    assert found and found <= allowed, found - allowed
    attributes = BUILT_IN[name].rule("html").get("attributes", {})
    assert all(set(e.attrib) <= set(attributes.get(e.tag, ())) for e in root.iter() if e is not root)


@pytest.mark.parametrize("width, height, kept", [(990, 300, True), (1000, 300, False)])
def test_smartnews_image_aspect(width, height, kept):
    [entry] = shaped("smartnews", record(image={"url": "/m.jpg", "width": width, "height": height})).entries
    assert (entry.image is not None) is kept   # long side at most 3.3 times the short one


def test_master_checked_profiles_are_not_checked_again_and_jsonschema_stays_unimported(tmp_path):
    # A fresh interpreter: this one has imported jsonschema long ago.
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    env.pop(profiles.CHECKED_ENV, None)
    checked = subprocess.run([sys.executable, "-m", "feedsvc.profiles"], env=env, cwd=root,
                             capture_output=True, text=True, check=True).stdout.strip()
    assert checked.split(",") == [profiles.text_digest(path.read_text("utf-8"))
                                  for path in sorted(profiles.BUILT_IN.glob("*.toml"))]
    probe = "import sys; from feedsvc import profiles; profiles.built_in(); print('jsonschema' in sys.modules)"
    for listed, imported in ((checked, "False"), ("", "True")):
        run = subprocess.run([sys.executable, "-c", probe], env={**env, profiles.CHECKED_ENV: listed}, cwd=root,
                             capture_output=True, text=True, check=True)
        assert run.stdout.strip() == imported


def test_a_file_changed_since_the_master_checked_it_is_checked_again(tmp_path, monkeypatch):
    good = (profiles.BUILT_IN / "msn.toml").read_text("utf-8")
    monkeypatch.setenv(profiles.CHECKED_ENV, profiles.text_digest(good))
    (tmp_path / "msn.toml").write_text(good.replace("min = 21", 'min = "twenty"'), "utf-8")
    with pytest.raises(profiles.ProfileError) as raised:
        profiles.parse(tmp_path / "msn.toml")
    assert raised.value.field == "rules.title.min"


def test_the_master_check_fails_on_a_malformed_profile_naming_it(tmp_path):
    text = (profiles.BUILT_IN / "msn.toml").read_text("utf-8").replace("min = 21", 'min = "twenty"')
    (tmp_path / "msn.toml").write_text(text, "utf-8")
    root = Path(__file__).resolve().parent.parent
    run = subprocess.run([sys.executable, "-m", "feedsvc.profiles", str(tmp_path)], cwd=root,
                         env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True, text=True)
    assert run.returncode == 1 and not run.stdout and "msn.toml: rules.title.min" in run.stderr
