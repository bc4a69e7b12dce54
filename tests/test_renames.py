"""Renames (issue 17 item 5): a section, tag or author key renamed with `flask rename-scope` or the API
moves every article at once; the old key's feeds (every format, ?lang=, partner and profile feeds)
and listing answer 301 to the new ones, chains in one hop; OPML, /feeds and the mirror show only the new."""
from __future__ import annotations

import json
from urllib.parse import urlsplit

import feedparser
import pytest
from lxml import etree, html
from sqlalchemy import select

from feedsvc.publish import mirror as export
from feedsvc.publish import websub
from feedsvc.store import scope_redirects
from feedsvc.store import websub_outbox as outbox
from feedsvc.web import db
from tests.support.apps import SITE_URL
from tests.support.records import assert_each_record_whole, put_record

OLD = {"section": "national", "tag": "parliament", "author": "test-reporter"}
FEED_FILES = {"rss": "rss.xml", "atom": "atom.xml", "json": "feed.json"}


def rename(runner, kind: str, old: str, new: str, *options: str):
    result = runner.invoke(args=["rename-scope", kind, old, new, *options])
    assert result.exit_code == 0, result.output
    return result


def feed_entries(body: bytes, fmt: str) -> list[dict]:
    """(link, categories or authors) of each entry, read with the parsers readers use."""
    if fmt == "json":
        return [{"link": item["url"], "authors": [a["name"] for a in item.get("authors", [])],
                 "tags": item.get("tags", [])} for item in json.loads(body)["items"]]
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.bozo_exception
    return [{"link": e.link, "authors": [a.get("name") for a in e.get("authors", [])],
             "tags": [t.term for t in e.get("tags", [])]} for e in parsed.entries]


def moved_to(client, path: str, headers=None) -> str:
    response = client.get(path, headers=headers or {})
    assert response.status_code == 301, (path, response.status_code, response.get_data(as_text=True)[:200])
    return response.location


# ---- the old URLs answer 301 ------------------------------------------------------------------------

@pytest.mark.parametrize("kind", list(OLD))
@pytest.mark.parametrize("fmt", list(FEED_FILES))
def test_every_old_feed_url_moves_permanently_to_the_new_key(client, runner, record, kind, fmt):
    rename(runner, kind, OLD[kind], "renamed")
    old, new = f"/feeds/{kind}/{OLD[kind]}/{FEED_FILES[fmt]}", f"/feeds/{kind}/renamed/{FEED_FILES[fmt]}"
    assert moved_to(client, old) == new
    # A single-language feed and a page keep their query string.
    assert moved_to(client, old + "?lang=hi&limit=5") == new + "?lang=hi&limit=5"
    response = client.get(new)
    assert response.status_code == 200
    [entry] = feed_entries(response.get_data(), fmt)
    assert entry["link"] == f"{SITE_URL}/articles/{record['slug']}"


@pytest.mark.parametrize("kind", list(OLD))
def test_the_old_listing_page_moves_and_the_new_one_lists_the_article(client, runner, record, kind):
    rename(runner, kind, OLD[kind], "renamed")
    assert moved_to(client, f"/{kind}/{OLD[kind]}") == f"/{kind}/renamed"
    assert moved_to(client, f"/{kind}/{OLD[kind]}?after=20250801T000000000000~x") == \
        f"/{kind}/renamed?after=20250801T000000000000~x"
    page = html.fromstring(client.get(f"/{kind}/renamed").get_data())
    assert f"{SITE_URL}/articles/{record['slug']}" in page.xpath("//main//a/@href")


def test_the_article_page_links_the_new_section_and_its_feeds(client, runner, record):
    rename(runner, "section", "national", "desh", "--name", "देश-दुनिया")
    page = html.fromstring(client.get(f"/articles/{record['slug']}").get_data())
    assert f"{SITE_URL}/section/desh" in page.xpath("//footer//a/@href")
    assert "देश-दुनिया" in page.xpath("//footer//a/text()")
    feeds = page.xpath("//link[@rel='alternate']/@href")
    assert f"{SITE_URL}/feeds/section/desh/rss.xml" in feeds and not any("/national/" in f for f in feeds)


def test_a_redirect_is_cacheable_and_names_the_old_scope_for_purges(client, runner, record):
    rename(runner, "tag", "parliament", "sansad")
    response = client.get("/feeds/tag/parliament/rss.xml")
    assert response.status_code == 301
    assert response.headers["Cache-Control"].startswith("public, max-age=")
    assert response.headers["Surrogate-Key"].split(" ") == ["tag:parliament"]


# ---- partner and profile feeds ----------------------------------------------------------------------

def test_partner_feeds_move_with_the_key_in_a_header_or_in_the_path(client, runner, record):
    result = runner.invoke(args=["partners", "add", "Acme News"])
    key = result.stdout.strip()
    rename(runner, "section", "national", "desh")
    assert moved_to(client, "/partner/feeds/section/national/atom.xml", {"X-Partner-Key": key}) == \
        "/partner/feeds/section/desh/atom.xml"
    assert moved_to(client, f"/partner/{key}/feeds/section/national/feed.json") == \
        f"/partner/{key}/feeds/section/desh/feed.json"
    moved = client.get(f"/partner/{key}/feeds/section/desh/feed.json")
    assert moved.status_code == 200 and json.loads(moved.get_data())["items"][0]["content_html"]


@pytest.mark.parametrize("profile, fmt", [("readers", "json"), ("msn", "rss")])
def test_aggregator_profile_feeds_move_too(client, runner, record, profile, fmt):
    rename(runner, "author", "test-reporter", "reporter")
    old = f"/feeds/profile/{profile}/author/test-reporter/{FEED_FILES[fmt]}"
    new = f"/feeds/profile/{profile}/author/reporter/{FEED_FILES[fmt]}"
    assert moved_to(client, old) == new
    assert client.get(new).status_code == 200


# ---- chains, reuse, merges ---------------------------------------------------------------------------

def test_a_chain_of_renames_answers_one_301_to_the_last_key(client, runner, record, app):
    rename(runner, "section", "national", "desh")
    rename(runner, "section", "desh", "bharat")
    assert moved_to(client, "/feeds/section/national/rss.xml") == "/feeds/section/bharat/rss.xml"
    assert moved_to(client, "/feeds/section/desh/rss.xml") == "/feeds/section/bharat/rss.xml"
    # Renamed back: the key is a scope again, and nothing redirects to itself.
    rename(runner, "section", "bharat", "national")
    assert client.get("/feeds/section/national/rss.xml").status_code == 200
    assert moved_to(client, "/section/bharat") == "/section/national"
    with db.engine(app).connect() as conn:
        rows = set(conn.execute(select(scope_redirects.c.old_key, scope_redirects.c.new_key)).all())
    assert rows == {("desh", "national"), ("bharat", "national")}


def test_a_new_scope_that_takes_an_old_key_wins_over_the_redirect(client, runner, api_headers, record, make_record):
    rename(runner, "tag", "parliament", "sansad")
    put_record(client, api_headers, make_record(id="later", slug="later", tags=[{"key": "parliament", "name": "संसद"}],
                                                published="2025-08-02T09:00:00+05:30",
                                                updated="2025-08-02T09:00:00+05:30"))
    response = client.get("/feeds/tag/parliament/rss.xml")
    assert response.status_code == 200
    assert [e["link"] for e in feed_entries(response.get_data(), "rss")] == [f"{SITE_URL}/articles/later"]
    assert client.get("/feeds/tag/sansad/rss.xml").status_code == 200


def test_merging_into_an_existing_tag_keeps_one_tag_per_article(client, runner, api_headers, app, make_record):
    both = make_record(tags=[{"key": "parliament", "name": "संसद"}, {"key": "sansad", "name": "संसद भवन"}])
    put_record(client, api_headers, both)
    result = rename(runner, "tag", "parliament", "sansad")
    assert "merged" in result.output
    stored = json.loads(client.get(f"/api/articles/{both['id']}", headers=api_headers).get_data())
    assert stored["tags"] == [{"key": "sansad", "name": "संसद भवन"}]
    [entry] = feed_entries(client.get("/feeds/tag/sansad/atom.xml").get_data(), "atom")
    assert entry["tags"].count("sansad") == 1 and "parliament" not in entry["tags"]   # Atom's terms are keys
    assert_each_record_whole(db.engine(app))


def test_an_author_given_by_name_only_keeps_the_new_key_when_sent_again(client, runner, api_headers, make_record):
    record = make_record(authors=[{"name": "Ravi Kumar"}])
    put_record(client, api_headers, record)
    rename(runner, "author", "ravi-kumar", "ravi")
    # The CMS sends the same record again, later: the author stays under the new key.
    put_record(client, api_headers, dict(record, updated="2025-08-01T12:00:00+05:30"))
    assert client.get("/feeds/author/ravi/rss.xml").status_code == 200
    assert client.get("/feeds/author/ravi-kumar/rss.xml").status_code == 301


# ---- what lists feeds --------------------------------------------------------------------------------

def test_opml_and_the_directory_list_only_the_new_key(client, runner, record):
    rename(runner, "section", "national", "desh")
    opml = etree.fromstring(client.get("/feeds.opml").get_data())
    urls = [urlsplit(u).path for u in opml.xpath("//outline/@xmlUrl")]
    assert "/feeds/section/desh/rss.xml" in urls and not any("/national/" in u for u in urls)
    directory = html.fromstring(client.get("/feeds").get_data())
    links = directory.xpath("//a/@href")
    assert any(link.endswith("/feeds/section/desh/rss.xml") for link in links)
    assert not any("/section/national" in link for link in links)


# ---- the API, errors ---------------------------------------------------------------------------------

def test_the_api_renames_and_answers_what_it_did(client, api_headers, record):
    response = client.post("/api/scopes/section/national/rename", json={"to": "desh", "name": "देश"},
                           headers=api_headers)
    assert response.status_code == 200
    assert response.get_json() == {"kind": "section", "from": "national", "to": "desh", "name": "देश",
                                   "articles": 1, "merged": False}
    assert moved_to(client, "/feeds/section/national/atom.xml") == "/feeds/section/desh/atom.xml"
    # The article's version moved: a CMS holding the old ETag is told.
    stored = client.get(f"/api/articles/{record['id']}", headers=api_headers)
    assert stored.headers["ETag"] == '"v2"' and stored.get_json()["section"] == {"key": "desh", "name": "देश"}


@pytest.mark.parametrize("path, body, status, says", [
    ("/api/scopes/section/nowhere/rename", {"to": "desh"}, 404, "no section 'nowhere'"),
    ("/api/scopes/section/national/rename", {"to": "Desh Videsh"}, 422, "new key"),
    ("/api/scopes/section/national/rename", {"to": "national"}, 422, "the same"),
    ("/api/scopes/category/national/rename", {"to": "desh"}, 422, "kind must be one of"),
    ("/api/scopes/section/national/rename", {"name": "देश"}, 400, '"to"'),
])
def test_a_rename_that_cannot_be_done_says_why_and_changes_nothing(client, api_headers, record, path, body, status,
                                                                   says):
    response = client.post(path, json=body, headers=api_headers)
    assert response.status_code == status
    assert says in " ".join(map(str, response.get_json().values()))
    assert client.get("/feeds/section/national/rss.xml").status_code == 200


def test_the_api_rename_needs_a_token(client, record):
    assert client.post("/api/scopes/section/national/rename", json={"to": "desh"}).status_code == 401
    assert client.get("/feeds/section/national/rss.xml").status_code == 200


def test_the_command_refuses_an_unknown_key(runner, record):
    result = runner.invoke(args=["rename-scope", "tag", "nowhere", "somewhere"])
    assert result.exit_code != 0 and "no tag 'nowhere'" in result.output


# ---- pings, purges, the fast path, the mirror ---------------------------------------------------------

def test_a_rename_pings_and_purges_the_old_and_new_feeds(database_url, make_app, api_headers, make_record):
    app = make_app(WEBSUB_HUBS=["http://hub.example/"], PURGE_WEBHOOKS=["http://cdn.example/purge"],
                   WEBSUB_SENDER="worker")
    client = app.test_client()
    put_record(client, api_headers, make_record())
    with db.engine(app).begin() as conn:
        conn.execute(outbox.delete())
    app.test_cli_runner().invoke(args=["rename-scope", "section", "national", "desh"])
    with db.engine(app).connect() as conn:
        rows = set(conn.execute(select(outbox.c.kind, outbox.c.topic_url)).all())
    topics = {topic for kind, topic in rows if kind == websub.WEBSUB}
    assert {f"{SITE_URL}/feeds/section/national/rss.xml", f"{SITE_URL}/feeds/section/desh/rss.xml"} <= topics
    keys = {topic for kind, topic in rows if kind == websub.PURGE}
    assert {"section:national", "section:desh", "article:test-2025-08-01-monsoon"} <= keys


def test_the_fast_path_never_replays_an_old_feed_after_the_rename(database_url, make_app, api_headers, make_record):
    app = make_app(FAST_PATH=True, RATELIMIT_ENABLED=False)
    client = app.test_client()
    put_record(client, api_headers, make_record())
    for _ in range(2):   # recorded, then replayed
        assert client.get("/feeds/section/national/rss.xml").status_code == 200
    assert app.test_cli_runner().invoke(args=["rename-scope", "section", "national", "desh"]).exit_code == 0
    assert moved_to(client, "/feeds/section/national/rss.xml") == "/feeds/section/desh/rss.xml"


@pytest.mark.slow
def test_the_mirror_drops_the_old_feed_files_and_writes_the_new(app, runner, record, tmp_path):
    mirror = export.Mirror(app, tmp_path)
    try:
        mirror.sync()
        old = [tmp_path / "feeds/section/national" / name for name in FEED_FILES.values()]
        assert all(path.is_file() for path in old)
        rename(runner, "section", "national", "desh")
        mirror.update()
    finally:
        mirror.close()
    for path in old:
        assert not path.exists() and not path.with_name(path.name + ".gz").exists()
    for fmt, name in FEED_FILES.items():
        [entry] = feed_entries((tmp_path / "feeds/section/desh" / name).read_bytes(), fmt)
        assert entry["link"] == f"{SITE_URL}/articles/{record['slug']}"
    page = html.fromstring((tmp_path / f"articles/{record['slug']}.html").read_bytes())
    assert f"{SITE_URL}/section/desh" in page.xpath("//footer//a/@href")
    opml = (tmp_path / "feeds.opml").read_bytes()
    assert b"/feeds/section/desh/" in opml and b"/feeds/section/national/" not in opml
