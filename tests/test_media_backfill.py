"""`flask media backfill`: articles stored before ingest probed images get their real sizes and
renditions (lead and body), a refused file's figure removed, their feeds bumped but their `updated`
kept; a second run writes nothing; a killed run resumes where it stopped; every article it cannot make
right is named with its file and why, and the walk goes on. Every image is made by Pillow in the test,
and the outputs are read back with feedparser, lxml and Pillow."""
from __future__ import annotations

import json
from pathlib import Path

import feedparser
import lxml.html
import pytest
from sqlalchemy import select, update

from feedsvc.ingest import backfill
from feedsvc.ingest.records import article_from_json, parse_record
from feedsvc.ingest.write import Rederived, commit_write, upsert, withdraw
from feedsvc.store import articles
from feedsvc.web import db
from tests.support.apps import SITE_URL
from tests.support.pictures import bad_image, decoded, file_of, photo

FORMATS = ["jpeg", "webp"]  # AVIF is slow to encode; test_images covers it
SIZES = ["lead:1200x675", "thumbnail:400x225"]
CAPTION = "बाढ़ में डूबा गाँव"


@pytest.fixture
def media_app(make_app, media):
    return make_app(MEDIA_DIR=str(media), IMAGE_FORMATS=FORMATS, IMAGE_RENDITIONS=SIZES,
                    IMAGE_BODY_RENDITIONS=["body:1200", "body_small:400"], RATELIMIT_ENABLED=False)


@pytest.fixture
def store_unprobed(media_app, make_record):
    """Store records as ingest did before it probed images: sizes as declared, no renditions."""
    def store_unprobed(number: int, **changes) -> dict:
        changes.setdefault("published", f"2025-08-01T{9 + number // 60:02d}:{number % 60:02d}:00+05:30")
        record = make_record(id=f"old-{number:03d}", slug=f"old-{number:03d}", **changes)
        article = parse_record(record, site_url=SITE_URL, images=None)
        commit_write(db.engine(media_app), upsert, article, site_name=media_app.config["SITE_NAME"])
        return record
    return store_unprobed


def stored(app, article_id: str):
    with db.engine(app).connect() as conn:
        row = conn.execute(select(articles.c.version, articles.c.modified_at, articles.c.article, articles.c.record)
                           .where(articles.c.id == article_id)).one()
    return row, article_from_json(row.article)


def run(app, *args):
    return app.test_cli_runner().invoke(args=["media", "backfill", "--workers", "0", *args])


def figure_body(src: str) -> str:
    return (f'<p>पहला अनुच्छेद।</p><figure><img src="{src}" width="300" height="600" alt="">'
            f"<figcaption>{CAPTION}</figcaption></figure><p>आख़िरी अनुच्छेद।</p>")


def chart_size(client) -> tuple[str, str]:
    content = feedparser.parse(client.get("/feeds/rss.xml").data).entries[0].content[0].value
    (img,) = [i for i in lxml.html.fragment_fromstring(content, create_parent="div").iter("img")
              if i.get("src").endswith("/media/chart.png")]
    return img.get("width"), img.get("height")


def test_backfill_gives_old_articles_real_sizes_and_renditions_and_keeps_updated(database_url, media_app, media,
                                                                                  store_unprobed):
    photo(media / "lead.jpg", (1600, 900))
    photo(media / "chart.png", (1000, 500), "RGBA", "PNG", (255, 0, 0, 128))
    record = store_unprobed(1, image={"url": "/media/lead.jpg", "width": 300, "height": 600, "caption": "संसद"},
                            body_html=figure_body("/media/chart.png"))
    client = media_app.test_client()
    before_row, _ = stored(media_app, "old-001")
    atom_before = client.get("/feeds/atom.xml")
    assert chart_size(client) == ("300", "600")   # as declared, before

    result = run(media_app)
    assert result.exit_code == 0, result.output
    assert "checked 1, rewritten 1" in result.output
    corrected = [line for line in result.output.splitlines() if line.startswith("corrected ")]
    assert any("old-001" in line and "lead.jpg" in line and "declared 300" in line for line in corrected), corrected
    assert any("old-001" in line and "chart.png" in line and "width 300" in line for line in corrected), corrected

    row, article = stored(media_app, "old-001")
    assert (article.image["width"], article.image["height"]) == (1600, 900)
    assert article.image["length"] == (media / "lead.jpg").stat().st_size
    assert json.loads(row.record) == record   # the record as given stays as it was sent
    assert row.version == before_row.version + 1 and row.modified_at > before_row.modified_at
    assert article.updated.isoformat() == "2025-08-01T09:15:00+05:30"

    rss = feedparser.parse(client.get("/feeds/rss.xml").data)
    (enclosure,) = rss.entries[0].enclosures   # the lead rendition, made by the backfill
    rendition = file_of(media, enclosure.href)
    assert (int(enclosure.length), decoded(rendition.read_bytes()).size) == (rendition.stat().st_size, (1200, 675))
    assert chart_size(client) == ("1000", "500")
    atom = client.get("/feeds/atom.xml")
    assert atom.headers["ETag"] != atom_before.headers["ETag"]   # the feed's bytes changed
    assert feedparser.parse(atom.data).entries[0].updated == feedparser.parse(atom_before.data).entries[0].updated
    page = lxml.html.fromstring(client.get("/articles/old-001").data)
    srcsets = page.xpath("//picture/source/@srcset")   # the lead's and the chart's, in WebP
    assert len(srcsets) == 2
    for candidate in ", ".join(srcsets).split(", "):
        url, width = candidate.split(" ")
        picture = decoded(file_of(media, url).read_bytes())
        assert (picture.format, f"{picture.width}w") == ("WEBP", width)
    database = db.engine(media_app).url.render_as_string(hide_password=True)
    assert not backfill.default_state_path(Path(media_app.instance_path), database).exists()   # the walk ended


def test_a_second_run_writes_nothing(database_url, media_app, media, store_unprobed):
    photo(media / "lead.jpg", (1600, 900))
    store_unprobed(1, image={"url": "/media/lead.jpg", "width": 1600, "height": 900})
    store_unprobed(2, image=None)
    assert run(media_app).exit_code == 0
    first, _ = stored(media_app, "old-001")
    etag = media_app.test_client().get("/feeds/rss.xml").headers["ETag"]
    result = run(media_app)
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1].startswith("checked 2, rewritten 0, skipped 0")
    again, _ = stored(media_app, "old-001")
    assert (again.version, again.modified_at) == (first.version, first.modified_at)
    assert media_app.test_client().get("/feeds/rss.xml").headers["ETag"] == etag


@pytest.mark.parametrize("name", ["corrupt.jpg", "bomb.png"])
def test_bad_files_are_reported_by_article_and_file_and_the_walk_goes_on(media_app, media, store_unprobed,
                                                                          monkeypatch, name):
    bad_image(media, name, monkeypatch)
    photo(media / "good.jpg", (800, 450))
    store_unprobed(1, image={"url": f"/media/{name}", "width": 1200, "height": 675})
    store_unprobed(2, image={"url": "/media/good.jpg", "width": 1, "height": 1})
    store_unprobed(3, image=None, body_html=figure_body(f"/media/{name}"))
    result = run(media_app)
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error ")]
    assert any(line.startswith("error old-001: image.url: ") and name in line and "refused" in line for line in errors)
    assert any(line.startswith("error old-003: body_html: ") and name in line and "refused" in line for line in errors)
    assert "checked 3, rewritten 3" in result.output
    assert stored(media_app, "old-001")[1].image is None
    assert stored(media_app, "old-002")[1].image["width"] == 800
    body = stored(media_app, "old-003")[1].body_html
    assert name not in body and CAPTION not in body and "<figure" not in body and "आख़िरी अनुच्छेद।" in body
    for path in ("/feeds/feed.json", "/articles/old-003", "/amp/old-003"):
        assert CAPTION not in media_app.test_client().get(path).get_data(as_text=True), path


def test_an_article_that_cannot_be_checked_is_named_and_the_walk_goes_on(media_app, media, store_unprobed):
    photo(media / "lead.jpg", (1600, 900))
    for number in (1, 2):
        store_unprobed(number, image={"url": "/media/lead.jpg", "width": 1, "height": 1})
    with db.engine(media_app).begin() as conn:   # a stored text that no longer decodes
        conn.execute(update(articles).where(articles.c.id == "old-001").values(record="{not json"))
    result = run(media_app)
    assert result.exit_code == 1
    (error,) = [line for line in result.output.splitlines() if line.startswith("error ")]
    assert error.startswith("error old-001: (stored article): JSONDecodeError")
    assert stored(media_app, "old-002")[1].image["width"] == 1600


def test_renditions_that_cannot_be_written_are_reported_with_the_path(media_app, media, store_unprobed):
    photo(media / "lead.jpg", (1600, 900))
    store_unprobed(1, image={"url": "/media/lead.jpg", "width": 1, "height": 1})
    store_unprobed(2, image=None)
    (media / "renditions").write_text("a file where the renditions folder should be")
    result = run(media_app)
    assert result.exit_code == 1
    (error,) = [line for line in result.output.splitlines() if line.startswith("error ")]
    assert error.startswith(f"error old-001: {media / 'renditions'}")
    assert "checked 2, rewritten 0" in result.output
    assert stored(media_app, "old-001")[1].image["width"] == 1   # left as it was, for the next run


def test_a_killed_run_resumes_where_it_stopped(media_app, media, store_unprobed, monkeypatch):
    photo(media / "lead.jpg", (1600, 900))
    for number in range(1, 6):
        store_unprobed(number, image={"url": "/media/lead.jpg", "width": 300, "height": 600})
    monkeypatch.setattr(backfill, "BATCH_SIZE", 2)
    seen: list[str] = []
    check = backfill._check

    def killed_at_the_fifth(row, *rest):
        seen.append(row[0])
        if len(seen) == 5:   # mid-batch: the third batch is never committed
            raise KeyboardInterrupt
        return check(row, *rest)

    monkeypatch.setattr(backfill, "_check", killed_at_the_fifth)
    killed = run(media_app)
    assert killed.exit_code != 0
    # What the committed batches corrected was told as they were done, not lost with the run.
    assert [line.split(":")[0] for line in killed.output.splitlines() if line.startswith("corrected ")] == \
        [f"corrected old-{n:03d}" for n in (1, 1, 2, 2, 3, 3, 4, 4)]
    assert [stored(media_app, f"old-{n:03d}")[1].image["width"] for n in range(1, 6)] == [1600] * 4 + [300]

    seen.clear()
    monkeypatch.setattr(backfill, "_check", lambda row, *rest: (seen.append(row[0]), check(row, *rest))[1])
    result = run(media_app)
    assert result.exit_code == 0, result.output
    assert "resuming after article old-004" in result.output
    assert seen == ["old-005"] and "checked 1, rewritten 1" in result.output
    assert stored(media_app, "old-005")[1].image["width"] == 1600
    seen.clear()
    assert "checked 5, rewritten 0" in run(media_app).output   # the walk finished: the next one starts over
    assert len(seen) == 5


def test_worker_processes_check_as_this_one_does(media_app, media, store_unprobed):
    photo(media / "lead.jpg", (1600, 900))
    for number in range(1, 4):
        store_unprobed(number, image={"url": "/media/lead.jpg", "width": 300, "height": 600})
    result = media_app.test_cli_runner().invoke(args=["media", "backfill", "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert "checked 3, rewritten 3" in result.output
    assert {stored(media_app, f"old-{n:03d}")[1].image["height"] for n in range(1, 4)} == {900}


def test_an_article_written_meanwhile_is_left_to_that_write(media_app, media, store_unprobed):
    photo(media / "lead.jpg", (1600, 900))
    store_unprobed(1, image={"url": "/media/lead.jpg", "width": 300, "height": 600})
    row, article = stored(media_app, "old-001")
    stale = Rederived(article, row.article.encode(), row.version - 1)
    report = backfill.BackfillReport()
    backfill._store(db.engine(media_app), [stale], media_app.config["SITE_NAME"], report)
    assert report.rewritten == [] and [p.article_id for p in report.skipped] == ["old-001"]
    assert stored(media_app, "old-001")[0].version == row.version


def test_articles_ingest_already_probed_are_left_alone(media_app, media, make_record, api_headers):
    photo(media / "test.jpg", (1600, 900))
    photo(media / "chart.jpg", (800, 450))
    # The image's fields in the CMS's order, not the sorted order the store keeps the record in.
    record = make_record(body_html=figure_body("/media/chart.jpg"))
    assert list(record["image"]) != sorted(record["image"])
    client = media_app.test_client()
    sent = json.dumps(record, ensure_ascii=False)   # as the CMS orders it (the test client's json= sorts keys)
    assert client.put(f"/api/articles/{record['id']}", data=sent.encode(), content_type="application/json",
                      headers=api_headers).status_code == 201
    before, _ = stored(media_app, record["id"])
    result = run(media_app)
    assert result.exit_code == 0, result.output
    assert "checked 1, rewritten 0" in result.output
    assert stored(media_app, record["id"])[0].version == before.version


def test_scheduled_and_withdrawn_articles_keep_their_state(media_app, media, store_unprobed, make_record):
    photo(media / "lead.jpg", (1600, 900))
    lead = {"url": "/media/lead.jpg", "width": 300, "height": 600}
    store_unprobed(1, image=lead, published="2099-01-01T09:00:00+05:30", updated=None)
    store_unprobed(2, image=lead)
    commit_write(db.engine(media_app), withdraw, "old-002", site_name=media_app.config["SITE_NAME"])
    with db.engine(media_app).connect() as conn:
        before = {r.id: r for r in conn.execute(select(articles.c.id, articles.c.status, articles.c.visible_from,
                                                       articles.c.withdrawn_at))}
    result = run(media_app)
    assert result.exit_code == 0, result.output
    assert "rewritten 2" in result.output
    with db.engine(media_app).connect() as conn:
        after = {r.id: r for r in conn.execute(select(articles.c.id, articles.c.status, articles.c.visible_from,
                                                      articles.c.withdrawn_at))}
    assert after == before and [after[i].status for i in ("old-001", "old-002")] == ["scheduled", "withdrawn"]
    for number in (1, 2):
        _, article = stored(media_app, f"old-{number:03d}")
        assert (article.status, article.image["width"]) == (after[f"old-{number:03d}"].status, 1600)
    assert media_app.test_client().get("/articles/old-002").status_code == 410


def test_the_lead_image_keeps_the_url_the_stored_article_shows(media_app, media, store_unprobed):
    """A record that gave its image under the site URL of its day: the store has kept the site path
    since migration 0008 rewrote it; the backfill probes that file and keeps that path."""
    photo(media / "lead.jpg", (1600, 900))
    store_unprobed(1, image={"url": "https://old-site.example/media/lead.jpg", "width": 300, "height": 600})
    with db.engine(media_app).begin() as conn:   # what 0008 left: the article's link made a site path
        row = conn.execute(select(articles.c.article).where(articles.c.id == "old-001")).scalar_one()
        moved = json.loads(row)
        moved["image"]["url"] = "/media/lead.jpg"
        conn.execute(update(articles).where(articles.c.id == "old-001").values(article=json.dumps(moved)))
    assert run(media_app).exit_code == 0
    image = stored(media_app, "old-001")[1].image
    assert (image["url"], image["width"], image["height"]) == ("/media/lead.jpg", 1600, 900)
