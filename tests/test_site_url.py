"""A new site URL changes links, never ids (issue 17 item 6): the id authority fixed per store, the
default site URL that follows PORT."""
from __future__ import annotations

import json

import pytest
from lxml import etree
from sqlalchemy import delete

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
