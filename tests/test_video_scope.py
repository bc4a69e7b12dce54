"""The video scope: articles carrying a player or a video file of their own, as /feeds/video/... in every
format, OPML and profile feeds; each item says it is a video (Media RSS, JSON Feed attachments)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import feedparser
import pytest
from alembic import command
from alembic.config import Config
from jsonschema import Draft202012Validator
from lxml import etree
from sqlalchemy import select

from feedsvc import store
from feedsvc.ingest.records import parse_record
from feedsvc.ingest.videos import videos_in
from feedsvc.store import engine as store_engine
from feedsvc.validate import validate_document
from feedsvc.web import db
from tests.support.apps import ROOT, SITE_URL
from tests.support.records import put_record

MEDIA = "http://search.yahoo.com/mrss/"
JSONFEED_SCHEMA = Draft202012Validator(
    json.loads((ROOT / "feedsvc" / "schemas" / "jsonfeed-1.1.json").read_text("utf-8")))
IST = timezone(timedelta(hours=5, minutes=30))
OWN_FILE = ('<p>मैदान से सीधी तस्वीरें।</p><video controls poster="/media/poster.jpg">'
            '<source src="/media/clip.mp4" type="video/mp4"></video>')


def _when(minutes: int) -> str:
    return (datetime(2025, 8, 1, 9, 0, tzinfo=IST) + timedelta(minutes=minutes)).isoformat()


@pytest.fixture
def stored(client, api_headers, make_record) -> dict[str, dict]:
    """Four articles: a YouTube embed with its duration, a video file of the site's own, a Vimeo frame
    in the body, and one without any video."""
    records = {
        "with-youtube": make_record(id="with-youtube", slug="with-youtube", published=_when(1), updated=_when(1),
                                    embeds=[{"provider": "youtube", "url": "https://youtu.be/dQw4w9WgXcQ?t=42",
                                             "title": "मैच की झलकियाँ", "duration": 95}]),
        "with-file": make_record(id="with-file", slug="with-file", published=_when(2), updated=_when(2),
                                 body_html=OWN_FILE),
        "with-frame": make_record(id="with-frame", slug="with-frame", published=_when(3), updated=_when(3),
                                  body_html='<p>देखें</p><iframe src="https://player.vimeo.com/video/76979871" '
                                            'title="वीमियो"></iframe>'),
        "without": make_record(id="without", slug="without", published=_when(4), updated=_when(4)),
    }
    for record in records.values():
        put_record(client, api_headers, record)
    return records


@pytest.mark.parametrize(("embeds", "body", "expected"), [
    ([{"provider": "youtube", "url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ"}], "<p>x</p>",
     [("https://www.youtube.com/embed/dQw4w9WgXcQ", None)]),
    ([{"provider": "vimeo", "url": "https://vimeo.com/76979871"}], "", [("https://player.vimeo.com/video/76979871", None)]),
    ([{"provider": "twitter", "url": "https://twitter.com/x/status/1"}], "<p>x</p>", []),
    ([], '<iframe src="https://www.youtube.com/embed/dQw4w9WgXcQ"></iframe>',
     [("https://www.youtube.com/embed/dQw4w9WgXcQ", None)]),
    ([{"provider": "youtube", "url": "https://youtu.be/dQw4w9WgXcQ"}],
     '<iframe src="https://www.youtube.com/embed/dQw4w9WgXcQ"></iframe>',
     [("https://www.youtube.com/embed/dQw4w9WgXcQ", None)]),   # the same video once
    ([], '<video src="/media/a.webm"></video><audio src="/media/b.mp3"></audio>', [(None, "/media/a.webm")]),
    ([], '<iframe src="https://maps.example.org/x"></iframe><video controls=""></video>', []),
])
def test_an_article_carries_the_players_and_files_it_embeds(embeds, body, expected):
    found = videos_in(embeds, body, "शीर्षक")
    assert [(v.player, v.file) for v in found] == expected
    assert all(v.title == "शीर्षक" for v in found)


@pytest.mark.parametrize(("given", "expected"), [
    ("</script>", "शीर्षक"),                       # markup only: no title of its own
    ("<b>मैच</b> &amp;lt;i&amp;gt;", "मैच"),       # tags, also when hidden behind references
    ("\u202eमैच", "मैच"),                           # a bidi override
])
def test_a_players_own_title_is_plain_text(given, expected):
    embeds = [{"provider": "youtube", "url": "https://youtu.be/dQw4w9WgXcQ", "title": given}]
    frame = f'<iframe src="https://player.vimeo.com/video/76979871" title="{given.replace("<", "&lt;")}"></iframe>'
    assert [v.title for v in videos_in(embeds, frame, "शीर्षक")] == [expected, expected]


def test_a_markup_title_of_an_embed_never_reaches_a_feed(client, api_headers, make_record):
    put_record(client, api_headers, make_record(
        id="markup-embed", slug="markup-embed", published=_when(5), updated=_when(5),
        embeds=[{"provider": "youtube", "url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ", "title": "</script>"}]))
    for filename, kind in (("rss.xml", "rss"), ("atom.xml", "atom"), ("feed.json", "jsonfeed")):
        response = client.get(f"/feeds/video/{filename}")
        assert not [str(p) for p in validate_document(response.data, kind, url=f"{SITE_URL}/feeds/video/{filename}")]


def test_a_site_video_survives_the_sanitiser_and_a_foreign_insecure_one_does_not(make_record):
    body = OWN_FILE + '<video src="http://cdn.example.org/x.mp4"></video><video src="//cdn.example.org/y.mp4"></video>'
    article = parse_record(make_record(body_html=body), site_url=SITE_URL)
    (video,) = videos_in(article.embeds, article.body_html, article.title)
    assert (video.file, video.type, video.thumbnail) == ("/media/clip.mp4", "video/mp4", "/media/poster.jpg")
    assert article.has_video


def _items(data: bytes) -> dict[str, etree._Element]:
    root = etree.fromstring(data)
    return {item.findtext("link").rsplit("/", 1)[-1]: item for item in root.iter("item")}


def test_the_video_feeds_carry_only_video_articles_in_every_format(client, stored):
    expected = ["with-frame", "with-file", "with-youtube"]   # newest first
    for fmt, filename, kind in (("rss", "rss.xml", "rss"), ("atom", "atom.xml", "atom"), ("json", "feed.json", "jsonfeed")):
        response = client.get(f"/feeds/video/{filename}")
        assert response.status_code == 200, (fmt, response.data[:200])
        assert not [str(p) for p in validate_document(response.data, kind, url=f"{SITE_URL}/feeds/video/{filename}")]
        if fmt == "json":   # feedparser 6.0 reads no JSON Feed: the schema and json do
            JSONFEED_SCHEMA.validate(doc := json.loads(response.data))
            title, links = doc["title"], [item["url"] for item in doc["items"]]
        else:
            parsed = feedparser.parse(response.data)
            assert parsed.bozo == 0, parsed.get("bozo_exception")
            title, links = parsed.feed.title, [e.link for e in parsed.entries]
        assert [link.rsplit("/", 1)[-1] for link in links] == expected, fmt
        assert title.startswith("वीडियो — ")


def test_each_video_item_says_what_its_video_is(client, stored):
    items = _items(client.get("/feeds/video/rss.xml").data)
    youtube = items["with-youtube"].find(f"{{{MEDIA}}}content[@medium='video']")
    assert youtube.get("url") is None and youtube.get("duration") == "95"
    assert youtube.find(f"{{{MEDIA}}}player").get("url") == "https://www.youtube.com/embed/dQw4w9WgXcQ?start=42"
    assert youtube.findtext(f"{{{MEDIA}}}title") == "मैच की झलकियाँ"
    thumbnail = youtube.find(f"{{{MEDIA}}}thumbnail")
    assert (thumbnail.get("url"), thumbnail.get("width")) == ("https://i.ytimg.com/vi/dQw4w9WgXcQ/hqdefault.jpg", "480")
    own = items["with-file"].find(f"{{{MEDIA}}}content[@medium='video']")
    assert (own.get("url"), own.get("type")) == (f"{SITE_URL}/media/clip.mp4", "video/mp4")
    assert own.find(f"{{{MEDIA}}}thumbnail").get("url") == f"{SITE_URL}/media/poster.jpg"
    assert own.findtext(f"{{{MEDIA}}}title") == stored["with-file"]["title"]
    frame = items["with-frame"].find(f"{{{MEDIA}}}content[@medium='video']")
    assert frame.find(f"{{{MEDIA}}}player").get("url") == "https://player.vimeo.com/video/76979871"
    feed = client.get("/feeds/video/feed.json").get_json()
    JSONFEED_SCHEMA.validate(feed)
    attachments = {item["id"].rsplit("/", 1)[-1]: item.get("attachments") for item in feed["items"]}
    assert attachments["with-file"] == [{"url": f"{SITE_URL}/media/clip.mp4", "mime_type": "video/mp4",
                                         "title": stored["with-file"]["title"]}]
    assert attachments["with-youtube"] is None   # a player page is not a file


def test_the_video_scope_is_listed_and_followed_like_every_other(client, stored, app):
    opml = etree.fromstring(client.get("/feeds.opml").data)
    assert f"{SITE_URL}/feeds/video/rss.xml" in {o.get("xmlUrl") for o in opml.iter("outline")}
    assert f"{SITE_URL}/feeds/video/feed.json" in client.get("/feeds").get_data(as_text=True)
    listing = client.get("/video")
    assert listing.status_code == 200 and "with-youtube" in listing.get_data(as_text=True)
    assert client.get("/feeds/video/x/rss.xml").status_code == 404
    profile = client.get("/feeds/profile/smartnews/video/rss.xml")
    assert profile.status_code == 200 and set(_items(profile.data)) == {"with-youtube", "with-file", "with-frame"}


def test_an_article_that_loses_its_video_leaves_the_video_feed(client, api_headers, stored, engine):
    with engine.connect() as conn:
        before = store.scope_state_of(conn, "video").version
    record = dict(stored["with-youtube"], embeds=[], updated=_when(10))
    put_record(client, api_headers, record)
    with engine.connect() as conn:
        assert store.scope_state_of(conn, "video").version == before + 1
        assert conn.execute(select(store.articles.c.has_video).where(store.articles.c.id == "with-youtube")).scalar_one() is False
    assert set(_items(client.get("/feeds/video/rss.xml").data)) == {"with-file", "with-frame"}


def test_the_migration_flags_stored_video_articles_and_opens_their_scope(app, stored):
    config = Config()
    config.set_main_option("script_location", str(store_engine.Path(store_engine.__file__).parent / "migrations"))
    with db.engine(app).begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0009")
        assert store.scope_state_of(conn, "video") is None
        command.upgrade(config, "head")
    with db.engine(app).connect() as conn:
        flagged = set(conn.scalars(select(store.articles.c.id).where(store.articles.c.has_video.is_(True))))
        assert flagged == {"with-youtube", "with-file", "with-frame"}
        assert store.scope_state_of(conn, "video") is not None
