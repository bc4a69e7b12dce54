"""A new site URL changes links, never ids (issue 17 item 6): the id authority fixed per store, the
default site URL that follows PORT."""
from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import lxml.html
import orjson
import pytest
from alembic import command
from alembic.config import Config
from lxml import etree
from sqlalchemy import delete, select, update

from feedsvc import config, store
from feedsvc.web import db
from tests.support.records import put_record

ATOM = {"atom": "http://www.w3.org/2005/Atom"}


def ids_and_links(client) -> dict[str, set[str]]:
    """Entry ids and links of the site's RSS, Atom and JSON feeds, and the feed ids."""
    rss = etree.fromstring(client.get("/feeds/rss.xml").get_data())
    atom = etree.fromstring(client.get("/feeds/atom.xml").get_data())
    feed = json.loads(client.get("/feeds/feed.json").get_data())
    return {
        "ids": set(rss.xpath("//item/guid/text()")) | set(atom.xpath("/atom:feed/atom:entry/atom:id/text()",
                                                                     namespaces=ATOM))
        | {item["id"] for item in feed["items"]} | set(atom.xpath("/atom:feed/atom:id/text()", namespaces=ATOM)),
        "links": set(rss.xpath("//item/link/text()")) | {item["url"] for item in feed["items"]},
    }


def test_another_site_url_keeps_every_id(database_url, make_app, api_headers, make_record):
    first = make_app(SITE_URL="http://news.example")
    put_record(first.test_client(), api_headers, make_record())
    before = ids_and_links(first.test_client())
    moved = make_app(SITE_URL="https://samachar.example.in")
    after = ids_and_links(moved.test_client())
    assert len(after["ids"]) == 2 and after["ids"] == before["ids"] and all("news.example," in i for i in after["ids"])


def test_init_db_records_the_chosen_authority_and_it_stays(database_url, make_app):
    app = make_app(ID_AUTHORITY="samachar.example.in")
    result = app.test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 0 and "samachar.example.in" in result.output
    later = make_app(ID_AUTHORITY="other.example")
    ids = ids_and_links(later.test_client())["ids"]
    assert ids and all(i.startswith("tag:samachar.example.in,") for i in ids)


def test_an_existing_store_keeps_the_ids_its_site_url_gave(database_url, make_app):
    """A store from before the setting has no authority row: its first start records SITE_URL's host."""
    app = make_app(SITE_URL="http://old.example:8000")
    with db.engine(app).begin() as conn:
        conn.execute(delete(store.store_settings))
    assert ids_and_links(app.test_client())["ids"] == {"tag:old.example,2025:feeds"}
    moved = make_app(SITE_URL="https://new.example")
    assert ids_and_links(moved.test_client())["ids"] == {"tag:old.example,2025:feeds"}



def test_an_authority_that_is_no_host_name_is_refused(make_app):
    with pytest.raises(config.ConfigError, match="FEEDSVC_ID_AUTHORITY"):
        make_app(ID_AUTHORITY="news example/x")


OLD, NEW = "http://news.example", "https://samachar.example.in"
LINKED_BODY = ('<p>पहला अनुच्छेद <a href="/articles/other-story">पिछली ख़बर</a> और '
               '<a href="more-details">आगे</a> <a href="https://elsewhere.example/x">बाहर</a></p>'
               '<p><img src="/media/inline.jpg" alt="चित्र"></p>')
_ABSOLUTE = re.compile(r"https?://[^\s\"'<>)]+")


def linked_record(make_record) -> dict:
    return make_record(body_html=LINKED_BODY, authors=[{"key": "reporter", "name": "संवाददाता", "url": "/team/reporter"}])


def every_link(client) -> set[str]:
    """Every absolute URL in every output about the article: feeds, pages, AMP, oEmbed, embed card, sitemaps."""
    slug = "monsoon-session-begins"
    paths = ["/feeds/rss.xml", "/feeds/atom.xml", "/feeds/feed.json", "/feeds/section/national/rss.xml",
             f"/articles/{slug}", f"/amp/{slug}", f"/embed/{slug}", "/sitemap.xml", "/sitemaps/news.xml", "/",
             "/section/national", "/robots.txt"]
    found = set()
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, path
        found |= documents_links(response.get_data(as_text=True))
    for sitemap in [link for link in found if "/sitemaps/" in link]:
        found |= documents_links(client.get(urlsplit(sitemap).path).get_data(as_text=True))
    article_url = next(u for u in found if u.endswith(f"/articles/{slug}"))
    oembed = client.get("/oembed", query_string={"url": article_url, "format": "json"})
    assert oembed.status_code == 200
    found |= documents_links(oembed.get_data(as_text=True).replace("\\/", "/"))
    return found


def documents_links(text: str) -> set[str]:
    return set(_ABSOLUTE.findall(text))


def on_site(links: set[str], site: str) -> set[str]:
    return {link for link in links if link.startswith(site + "/") or link == site}


def test_a_new_site_url_moves_every_link_of_every_output_and_no_id(database_url, make_app, api_headers,
                                                                   make_record):
    first = make_app(SITE_URL=OLD)
    put_record(first.test_client(), api_headers, linked_record(make_record))
    before_ids = ids_and_links(first.test_client())["ids"]
    assert on_site(every_link(first.test_client()), OLD)
    moved = make_app(SITE_URL=NEW)
    links = every_link(moved.test_client())
    assert on_site(links, OLD) == set()
    assert {f"{NEW}/articles/monsoon-session-begins", f"{NEW}/articles/other-story",
            f"{NEW}/articles/more-details", f"{NEW}/media/inline.jpg", f"{NEW}/media/test.jpg",
            f"{NEW}/team/reporter", "https://elsewhere.example/x"} <= links
    assert ids_and_links(moved.test_client())["ids"] == before_ids


def test_the_store_holds_no_url_of_the_site(database_url, make_app, api_headers, make_record):
    app = make_app(SITE_URL=OLD)
    put_record(app.test_client(), api_headers, linked_record(make_record))
    with db.engine(app).connect() as conn:
        stored = conn.execute(select(store.articles.c.article)).scalar_one()
    assert "news.example" not in stored and "elsewhere.example" in stored


def _migrations(conn) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(store.__file__).parent / "migrations"))
    cfg.attributes["connection"] = conn
    return cfg


def test_articles_stored_under_the_old_site_url_are_migrated_to_site_paths(database_url, make_app, api_headers,
                                                                          make_record):
    app = make_app(SITE_URL=OLD)
    client = app.test_client()
    put_record(client, api_headers, linked_record(make_record))
    put_record(client, api_headers, make_record(id="own-url", slug="own-url", url="https://elsewhere.example/own"))
    engine = db.engine(app)
    with engine.begin() as conn:
        command.downgrade(_migrations(conn), "0007")
        for row in conn.execute(select(store.articles.c.id, store.articles.c.article)).fetchall():
            # As the code before 0008 stored it: site paths under the SITE_URL of the import.
            old = orjson.loads(row.article)
            if old["url"].startswith("/"):
                old["url"] = OLD + old["url"]
            old["image"]["url"] = OLD + old["image"]["url"]
            old["authors"] = [[k, n, OLD + u if u else u] for k, n, u in old["authors"]]
            old["body_html"] = old["body_html"].replace('="/', f'="{OLD}/')
            conn.execute(update(store.articles).where(store.articles.c.id == row.id)
                         .values(article=orjson.dumps(old).decode()))
    store.migrate(engine)
    with engine.connect() as conn:
        stored = dict(conn.execute(select(store.articles.c.id, store.articles.c.article)).all())
    assert all("news.example" not in text for text in stored.values())
    migrated = orjson.loads(stored["test-2025-08-01-monsoon"])
    assert (migrated["url"], migrated["image"]["url"], migrated["authors"][0][2]) == \
        ("/articles/monsoon-session-begins", "/media/test.jpg", "/team/reporter")
    body = lxml.html.fragment_fromstring(migrated["body_html"], create_parent="div")
    assert [a.get("href") for a in body.iter("a")] == ["/articles/other-story", "/articles/more-details",
                                                       "https://elsewhere.example/x"]
    assert orjson.loads(stored["own-url"])["url"] == "https://elsewhere.example/own"
    assert on_site(every_link(make_app(SITE_URL=NEW).test_client()), OLD) == set()
