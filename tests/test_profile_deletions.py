"""Withdrawn articles in aggregator profile feeds (issue 18 item 1, issue 17 item 2): each profile says a
deletion its own way (updates.deletions), for a bounded window (updates.deletion_days), and the feed
stays valid: RELAX NG, the W3C Feed Validation Service's rules (validate_document), feedparser.
The window and the item count are tested on built feeds in test_profiles.py."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

import feedparser
import pytest
from lxml import etree

from feedsvc import profiles
from feedsvc.render import profiles as shaping
from feedsvc.render.feeds.dcterms import DCTERMS_NS
from feedsvc.render.feeds.ext import MEDIA_NS, TOMBSTONE_NS
from feedsvc.validate import validate_document
from tests.support.apps import SITE_URL
from tests.support.records import put_record

IST = timezone(timedelta(hours=5, minutes=30))
ATOM = "http://www.w3.org/2005/Atom"
BUILT_IN = profiles.built_in()
KINDS = {"rss": "rss", "atom": "atom", "json": "jsonfeed"}
FILES = {"rss": "rss.xml", "atom": "atom.xml", "json": "feed.json"}


def fresh(make_record, n: int, hours_ago: float = 1, **changes) -> dict:
    when = (datetime.now(IST) - timedelta(hours=hours_ago)).replace(microsecond=0).isoformat()
    return make_record(id=f"gone-{n}", slug=f"gone-{n}", published=when, updated=when,
                       title=f"संसद का मानसून सत्र आज से शुरू, विधेयक {n} पेश होगा", **changes)


def served(client, profile: str, fmt: str, scope: str = "") -> bytes:
    path = f"/feeds/profile/{profile}/{scope}{FILES[fmt]}"
    response = client.get(path)
    assert response.status_code == 200, response.data[:300]
    problems = validate_document(response.data, KINDS[fmt], url=SITE_URL + path)
    assert not problems, [str(p) for p in problems]
    if fmt != "json":
        assert not feedparser.parse(response.data).bozo
    return response.data


@pytest.fixture
def withdrawn(client, api_headers, make_record):
    """Two live articles, then one of them withdrawn: (the withdrawn record, its entry id, its original dates)."""
    keep, gone = fresh(make_record, 1, hours_ago=2), fresh(make_record, 2)
    for record in (keep, gone):
        put_record(client, api_headers, record)
    before = etree.fromstring(client.get("/feeds/profile/msn/rss.xml").data)
    [item] = [i for i in before.iter("item") if i.findtext("guid").endswith("/gone-2")]
    response = client.delete("/api/articles/gone-2", headers=api_headers)
    assert response.status_code in (200, 204), response.data
    return gone, item.findtext("guid"), item.findtext("pubDate"), item.findtext(f"{{{DCTERMS_NS}}}modified")


def items_by_id(body: bytes) -> dict:
    return {item.findtext("guid"): item for item in etree.fromstring(body).iter("item")}


def test_smartnews_updates_deletions_media_status(client, withdrawn):
    gone, guid, _, _ = withdrawn
    items = items_by_id(served(client, "smartnews", "rss"))
    marker = items[guid]
    assert marker.findtext(f"{{{MEDIA_NS}}}status") == "deleted"
    # S5: the deletion counts only with an updated pubDate: it is the withdrawal, after the article's own
    assert parsedate_to_datetime(marker.findtext("pubDate")) > datetime.fromisoformat(gone["published"])
    assert marker.findtext("title") == shaping.WITHDRAWN_TITLE and gone["title"] not in etree.tostring(
        marker, encoding="unicode")
    assert list(items).index(guid) == 0   # markers lead the feed, so the byte budget never drops one
    live = [item for key, item in items.items() if key != guid]
    assert live and all(item.find(f"{{{MEDIA_NS}}}status") is None for item in live)


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_msn_updates_deletions_expiry(client, withdrawn, fmt):
    _, guid, published_before, modified_before = withdrawn
    body = served(client, "msn", fmt)
    root = etree.fromstring(body)
    if fmt == "rss":
        [marker] = [item for item in root.iter("item") if item.findtext("guid") == guid]
        assert marker.findtext("pubDate") == published_before     # same id, pubDate kept (keep-published)
        updated = marker.findtext(f"{{{DCTERMS_NS}}}modified")
        assert datetime.fromisoformat(updated) > datetime.fromisoformat(modified_before)
    else:
        [marker] = [e for e in root.iter(f"{{{ATOM}}}entry") if e.findtext(f"{{{ATOM}}}id") == guid]
        updated = marker.findtext(f"{{{ATOM}}}updated")
        assert root.find(f"{{{TOMBSTONE_NS}}}deleted-entry") is None   # MSN is told by expiry, not RFC 6721
    # M5: "same unique ID + expiration date in the past + updated date is newer" takes it down
    valid = datetime.fromisoformat(marker.findtext(f"{{{DCTERMS_NS}}}valid"))
    # Atom's updated has a sub-second part of its own (atom.distinct_updated); the expiry is that second
    assert timedelta(0) <= datetime.fromisoformat(updated) - valid < timedelta(seconds=1)
    assert valid <= datetime.now(timezone.utc)
    others = [e for e in root.iter("item", f"{{{ATOM}}}entry") if e is not marker]
    assert others and all(e.find(f"{{{DCTERMS_NS}}}valid") is None for e in others)


def test_readers_updates_deletions_tombstone(client, withdrawn):
    _, guid, _, _ = withdrawn
    assert guid not in items_by_id(served(client, "readers", "rss"))        # RSS says nothing: the item goes
    atom = etree.fromstring(served(client, "readers", "atom"))
    assert [t.get("ref") for t in atom.iter(f"{{{TOMBSTONE_NS}}}deleted-entry")] == [guid]


@pytest.mark.parametrize("name", ["flipboard", "google-news"])
def test_updates_deletions_none(client, withdrawn, name):
    _, guid, _, _ = withdrawn
    assert BUILT_IN[name].value("updates", "deletions") == "none"
    for fmt in BUILT_IN[name].formats:
        body = client.get(f"/feeds/profile/{name}/{FILES[fmt]}").data
        assert guid.encode() not in body and MEDIA_NS.encode() + b'">deleted' not in body
        assert b"deleted-entry" not in body and b"dcterms:valid" not in body


def test_public_rss_carries_no_marker(client, withdrawn):
    _, guid, _, _ = withdrawn
    body = client.get("/feeds/rss.xml").data
    assert guid.encode() not in body and MEDIA_NS.encode() + b'">deleted' not in body


def test_marker_namespaces_declared_only_when_used(client, api_headers, make_record):
    put_record(client, api_headers, fresh(make_record, 1))
    atom = etree.fromstring(served(client, "msn", "atom"))
    assert DCTERMS_NS not in atom.nsmap.values()   # no marker, so no dcterms: in MSN's Atom
    rss = etree.fromstring(served(client, "msn", "rss"))
    assert "http://schemas.ingestion.microsoft.com/common/" not in rss.nsmap.values()   # no short title, no mi:


def test_validate_profile_reads_markers_as_deletions(app, client, withdrawn, tmp_path):
    """`validate --profile` does not hold a marker to the rules of a live item (text, image, title)."""
    from feedsvc.validate.profile_rules import profile_problems
    _, guid, _, _ = withdrawn
    for name in ("smartnews", "msn"):
        body = client.get(f"/feeds/profile/{name}/rss.xml").data
        broken = [p for p in profile_problems(BUILT_IN[name], body, "rss") if guid in p.message]
        assert not broken, [str(p) for p in broken]
