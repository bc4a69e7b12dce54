"""The sample records in articles/: valid, faithful to the seed article, varied, and their images real."""
from __future__ import annotations

import collections
import json
import re
import struct
from datetime import datetime
from pathlib import Path

import lxml.html
import pytest
from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parent.parent
ARTICLES = ROOT / "articles"
MEDIA = ARTICLES / "media"
SCHEMA = json.loads((ROOT / "feedsvc" / "schemas" / "article.json").read_text(encoding="utf-8"))
# A copy of ../shared/seed/000_ddb5218e8f9b558d.txt, the article the project started from.
SEED = ROOT / "tests" / "data" / "seed" / "000_ddb5218e8f9b558d.txt"
SEED_ID = "pbs-2025-07-23-all-of-us-are-dead-2"
FILES = sorted(ARTICLES.glob("*.json"))
RECORDS = {path.name: json.loads(path.read_text(encoding="utf-8")) for path in FILES}
PUBLISHED = [r for r in RECORDS.values() if r.get("status", "published") == "published"]


def body_tree(record):
    return lxml.html.fragment_fromstring(record["body_html"], create_parent="div")


def texts(tree, tag):
    return [" ".join(e.text_content().split()) for e in tree.iter(tag)]


def jpeg_size(path: Path) -> tuple[int, int]:
    """(width, height) from a JPEG's start-of-frame marker; raises if the file is not a JPEG."""
    data = path.read_bytes()
    assert data[:2] == b"\xff\xd8", f"{path.name} does not start with a JPEG SOI marker"
    i = 2
    while i + 4 <= len(data):
        assert data[i] == 0xFF, f"{path.name}: broken marker at byte {i}"
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        # SOF0..SOF15 carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height
        i += 2 + length
    raise AssertionError(f"{path.name}: no start-of-frame marker")


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_every_sample_record_validates_against_the_schema(name):
    validator = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
    problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(RECORDS[name])]
    assert problems == []


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_sample_file_is_readable_utf8_named_by_id_with_offset_dates(name):
    raw = (ARTICLES / name).read_text(encoding="utf-8")
    record = RECORDS[name]
    assert name == record["id"] + ".json"
    assert "\\u09" not in raw, "Devanagari must be stored unescaped"
    assert raw == json.dumps(record, ensure_ascii=False, indent=2) + "\n"
    published = datetime.fromisoformat(record["published"])
    updated = datetime.fromisoformat(record.get("updated", record["published"]))
    assert published.utcoffset() is not None and updated >= published
    for correction in record.get("corrections", []):
        assert published <= datetime.fromisoformat(correction["date"]) <= updated


def test_seed_article_is_reproduced_faithfully():
    seed = [line.strip() for line in SEED.read_text(encoding="utf-8").splitlines()]
    record = RECORDS[SEED_ID + ".json"]
    tree = body_tree(record)

    assert record["title"] == seed[0]
    assert record["slug"] == "all-of-us-are-dead-season-2-production-begins"
    byline = next(line for line in seed if " । " in line)
    author, when = byline.split(" । ")
    assert [a["name"] for a in record["authors"]] == [author] == ["रेनू तिवारी"]
    assert record["authors"][0]["key"] == "renu-tiwari"
    seed_time = datetime.strptime(when, "%b %d %Y %I:%M%p")  # "Jul 23 2025 3:30PM", IST
    assert datetime.fromisoformat(record["published"]).replace(tzinfo=None) == seed_time
    assert record["published"] == record["updated"] == "2025-07-23T15:30:00+05:30"
    assert record["section"] == {"key": "entertainment", "name": "मनोरंजन"}
    assert {"all-of-us-are-dead", "netflix"} <= {t["key"] for t in record["tags"]}

    # The seed's body runs from the byline to the site chrome ("Visit Prabhasakshi ...").
    body_lines = [line for line in seed[seed.index(byline) + 1:] if line]
    body_lines = body_lines[:next(i for i, line in enumerate(body_lines) if line.startswith("Visit Prabhasakshi"))]
    headings = texts(tree, "h2")
    assert headings == ["सोशल मीडिया पर एक टीज़र वीडियो रिलीज", "दूसरे सीज़न की घोषणा", "कौन से किरदार वापस आएंगे?"]
    paragraphs = [p for p in texts(tree, "p") if p not in texts(tree, "blockquote")]
    assert [line for line in body_lines if line not in headings] == paragraphs
    for chrome in ("Visit Prabhasakshi", "All the updates here", "अन्य न्यूज़"):
        assert chrome not in record["body_html"]

    quote = texts(tree, "blockquote")
    instagram_post = next(line for line in body_lines if "इंस्टाग्राम पर" in line)
    assert len(quote) == 1 and quote[0] in instagram_post
    assert quote[0].startswith("जब आपको लगा") and "सियोल को निगल जाता है" in quote[0]
    assert record["embeds"] == [{"provider": "youtube", "url": "https://www.youtube.com/watch?v=IN5TD4VRcSM",
                                 "title": "All of Us Are Dead | Official Trailer | Netflix"}]
    assert record["embeds"][0]["title"] in seed
    assert "निर्माण शुरू हो गया है" in record["summary"]


def test_samples_cover_enough_sections_authors_months_and_statuses():
    assert len(PUBLISHED) >= 40
    assert len({r["section"]["key"] for r in PUBLISHED}) >= 6
    assert len({a["key"] for r in PUBLISHED for a in r["authors"]}) >= 4
    assert len({r["published"][:7] for r in PUBLISHED}) >= 4
    statuses = collections.Counter(r.get("status", "published") for r in RECORDS.values())
    assert statuses["draft"] == 1 and set(statuses) == {"published", "draft"}
    assert sum("slug" not in r for r in RECORDS.values()) >= 3, "some records must rely on the derived slug"
    assert all("url" not in r for r in RECORDS.values())
    assert any(r["updated"] > r["published"] for r in PUBLISHED)
    assert sum("corrections" in r for r in RECORDS.values()) >= 1


def test_keys_name_the_same_thing_everywhere_and_tags_are_shared():
    names = collections.defaultdict(set)
    uses = collections.Counter()
    for record in RECORDS.values():
        names["section", record["section"]["key"]].add(record["section"]["name"])
        for author in record["authors"]:
            names["author", author["key"]].add(author["name"])
        for tag in record["tags"]:
            names["tag", tag["key"]].add(tag["name"])
            uses[tag["key"]] += 1
    assert {k: v for k, v in names.items() if len(v) > 1} == {}
    assert [tag for tag, n in uses.items() if n < 2] == []


def test_samples_use_rich_html_and_every_embed_provider():
    tags = collections.Counter(el.tag for r in RECORDS.values() for el in body_tree(r).iter())
    for tag in ("p", "h2", "ul", "ol", "li", "table", "blockquote", "figure", "img", "figcaption"):
        assert tags[tag] > 0, tag
    providers = collections.Counter(e["provider"] for r in RECORDS.values() for e in r.get("embeds", []))
    assert {"youtube", "twitter", "instagram", "vimeo"} <= set(providers)
    assert any(re.match(r"^[A-Za-z0-9 .]+ \| ", r["title"]) for r in PUBLISHED), "some titles carry a topic prefix"


def media_references():
    """(record id, path, declared width, declared height) for lead images and inline <img>."""
    for record in RECORDS.values():
        image = record.get("image")
        if image:
            yield record["id"], image["url"], image.get("width"), image.get("height")
        for img in body_tree(record).iter("img"):
            yield record["id"], img.get("src"), int(img.get("width")), int(img.get("height"))


def test_every_published_record_has_a_lead_image():
    assert [r["id"] for r in PUBLISHED if "image" not in r] == []


@pytest.mark.parametrize("record_id,url,width,height", list(media_references()))
def test_referenced_image_exists_as_jpeg_of_declared_size(record_id, url, width, height):
    assert url.startswith("/media/"), url
    path = MEDIA / url.removeprefix("/media/")
    assert path.is_file(), f"{record_id} references missing {url}"
    assert jpeg_size(path) == (width, height)


def test_every_shipped_image_is_used():
    used = {url.removeprefix("/media/") for _, url, _, _ in media_references()}
    assert sorted(p.name for p in MEDIA.glob("*") if p.is_file() and p.name not in used) == []
