"""Local images: probed at ingest, bad files refused, renditions made once and served immutable, and
every output (feeds, pages, AMP, JSON-LD, the mirror) pointing at renditions that decode to what it says.
Every image here is made by Pillow in the test and every output image is decoded back."""
from __future__ import annotations

import dataclasses
import json
import os
import threading
from pathlib import Path

import feedparser
import lxml.html
import pytest
from lxml import etree
from PIL import Image, features
from sqlalchemy import select

from feedsvc.ingest import images, importer
from feedsvc.ingest.records import parse_record
from feedsvc.publish.mirror import fixed_documents
from feedsvc.store import articles
from feedsvc.validate import validate_document
from feedsvc.web import db
from tests.support.apps import API_TOKEN, SITE_URL, AppFactory, fresh_database
from tests.support.pictures import BAD_IMAGES, bad_image, decoded, file_of, photo
from tests.support.records import VALID_RECORD

SIZES = images.parse_sizes(["lead:1200x675", "lead_4x3:1200x900", "lead_1x1:1200x1200", "social:1200x630",
                            "square:720x720", "thumbnail:400x225", "logo:512x512"])
FORMATS = ("jpeg", "webp")  # AVIF is slow to encode; one test covers it
MEDIA = "{http://search.yahoo.com/mrss/}"


def settings(media: Path, formats=FORMATS) -> images.ImageSettings:
    return images.ImageSettings(SITE_URL, str(media), SIZES, formats)


@pytest.fixture
def media_app(make_app, media):
    return make_app(MEDIA_DIR=str(media), IMAGE_FORMATS=list(FORMATS), RATELIMIT_ENABLED=False)


def put(client, api_headers, record):
    return client.put(f"/api/articles/{record['id']}", json=record, headers=api_headers)


# ---- probing -----------------------------------------------------------------------------------

def test_probe_reads_size_type_and_length_from_the_file(media):
    path = photo(media / "a.png", (640, 360), "RGBA", "PNG", (255, 0, 0, 128))
    facts = images.probe(path)
    assert (facts["width"], facts["height"], facts["type"], facts["length"]) == (640, 360, "image/png",
                                                                                 path.stat().st_size)


def test_probe_gives_the_size_as_shown_after_exif_rotation(media):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown turned a quarter: portrait
    path = photo(media / "turned.jpg", (800, 400), exif=exif.tobytes())
    assert (images.probe(path)["width"], images.probe(path)["height"]) == (400, 800)


def test_a_declared_size_that_disagrees_is_corrected_and_reported(media_app, media, api_headers, make_record):
    photo(media / "real.jpg", (1200, 675))
    response = put(media_app.test_client(), api_headers,
                   make_record(image={"url": "/media/real.jpg", "width": 300, "height": 600}))
    assert response.status_code == 201
    warnings = {w["field"]: w["reason"] for w in response.get_json()["warnings"]}
    assert set(warnings) == {"image.width", "image.height"} and "real.jpg" in warnings["image.width"]
    page = lxml.html.fromstring(media_app.test_client().get("/articles/monsoon-session-begins").data)
    img = page.find_class("lead")[0].find(".//img")
    assert (img.get("width"), img.get("height")) == ("1200", "675")


def test_a_remote_image_keeps_what_the_record_says(media):
    image = {"url": "https://cdn.example/a.jpg", "width": 300, "height": 600}
    assert images.checked_image(image, settings(media)) == (image, [])


@pytest.mark.parametrize("name,reason", BAD_IMAGES)
def test_a_bad_file_is_refused_and_the_record_stored_without_it(media_app, media, api_headers, make_record,
                                                                monkeypatch, name, reason):
    bad_image(media, name, monkeypatch)
    client = media_app.test_client()
    response = put(client, api_headers, make_record(image={"url": f"/media/{name}", "width": 10, "height": 10}))
    assert response.status_code == 201
    (warning,) = response.get_json()["warnings"]
    assert warning["field"] == "image.url" and name in warning["reason"] and reason in warning["reason"]
    page = lxml.html.fromstring(client.get("/articles/monsoon-session-begins").data)
    assert page.find_class("lead") == []  # stored, without the image
    assert json.loads(client.get("/api/articles/test-2025-08-01-monsoon", headers=api_headers).data)["image"]
    assert not (media / "renditions").exists() or not any((media / "renditions").rglob(f"{name}.*"))


def test_the_import_reports_corrections_and_refusals_naming_record_and_file(media_app, media, tmp_path, make_record):
    photo(media / "real.jpg", (1000, 1000))
    (media / "broken.jpg").write_bytes(b"GIF89a broken")
    folder = tmp_path / "records"
    folder.mkdir()
    for name, image in (("a", {"url": "/media/real.jpg", "width": 1200, "height": 1000}),
                        ("b", {"url": "/media/broken.jpg"})):
        record = make_record(id=f"img-{name}", slug=f"img-{name}", image=image)
        (folder / f"{name}.json").write_text(json.dumps(record, ensure_ascii=False), "utf-8")
    result = media_app.test_cli_runner().invoke(args=["import-articles", str(folder)])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning ")]
    assert any("a.json" in w and "image.width" in w and "real.jpg" in w for w in warnings), warnings
    assert any("b.json" in w and "broken.jpg" in w and "refused" in w for w in warnings), warnings
    assert "stored 2" in result.output


def _shown_twice(make_record, number: int) -> dict:
    """A record showing /media/shared.jpg as its lead and in its body."""
    body = '<p>पाठ</p><figure><img src="/media/shared.jpg" alt="चित्र"><figcaption>फ़ोटो</figcaption></figure>'
    return make_record(id=f"shared-{number}", slug=f"shared-{number}", body_html=body,
                       image={"url": "/media/shared.jpg"})


def test_an_image_file_replaced_on_disk_is_probed_again(media, make_record):
    photo(media / "shared.jpg", (900, 600))
    chosen = dataclasses.replace(settings(media), body_widths=(("body", 1200),))
    first = parse_record(_shown_twice(make_record, 1), site_url=SITE_URL, images=chosen)
    photo(media / "shared.jpg", (1000, 1000))
    second = parse_record(_shown_twice(make_record, 2), site_url=SITE_URL, images=chosen)
    for article, size in ((first, (900, 600)), (second, (1000, 1000))):
        assert (article.image["width"], article.image["height"]) == size
        body_image = article.body_images["/media/shared.jpg"]
        assert (body_image["width"], body_image["height"]) == size
        lead = images.rendition(article.image, "lead")
        assert decoded(file_of(media, lead["url"]).read_bytes()).size == (lead["width"], lead["height"])
    assert first.image["key"] != second.image["key"]
    assert images.rendition(first.image, "lead")["width"] == 900 and images.rendition(second.image, "lead")["width"] == 1000


def test_the_records_of_one_import_look_at_each_image_file_once(media_app, make_app, media, make_record, tmp_path,
                                                               monkeypatch):
    photo(media / "shared.jpg", (900, 600))
    corpus = tmp_path / "records.jsonl"
    corpus.write_text("".join(json.dumps(_shown_twice(make_record, n), ensure_ascii=False) + "\n" for n in range(20)),
                      "utf-8")
    chosen = dataclasses.replace(settings(media), body_widths=(("body", 1200),))
    looks = []
    stat = os.stat
    monkeypatch.setattr(os, "stat", lambda path, *args, **kwargs: (
        looks.append(path) if str(path).endswith("/media/shared.jpg") else None, stat(path, *args, **kwargs))[1])
    report = importer.import_files(db.engine(media_app), [corpus], site_url=SITE_URL, site_name="समाचार",
                                   workers=0, images=chosen)
    assert (report.stored, report.errors, len(looks)) == (20, [], 1)
    # Parsed in worker processes (the settings handed to each once), the same images are stored.
    in_workers = make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'workers.db'}", MEDIA_DIR=str(media))
    report = importer.import_files(db.engine(in_workers), [corpus], site_url=SITE_URL, site_name="समाचार",
                                   workers=2, images=chosen)
    assert (report.stored, report.errors) == (20, [])
    assert _stored_images(media_app) == _stored_images(in_workers)
    assert {image["width"] for image in _stored_images(media_app)} == {900}


def _stored_images(app) -> list[dict]:
    with db.engine(app).connect() as conn:
        stored = [json.loads(text) for text in conn.execute(select(articles.c.article).order_by(articles.c.id)).scalars()]
    return [image for article in stored for image in (article["image"], *article["body_images"].values())]


# ---- renditions ----------------------------------------------------------------------------------

def test_every_configured_rendition_is_made_at_its_size_in_every_format(media):
    photo(media / "big.jpg", (1600, 1600))
    image, _ = images.checked_image({"url": f"{SITE_URL}/media/big.jpg"}, settings(media))
    for name, width, height in SIZES:
        for fmt in FORMATS:
            made = images.rendition(image, name, fmt)
            picture = decoded(file_of(media, made["url"]).read_bytes())
            assert picture.size == (width, height) == (made["width"], made["height"])
            assert picture.format == images.FORMATS[fmt][0]
            assert made["length"] == file_of(media, made["url"]).stat().st_size


def test_a_small_image_is_never_enlarged(media):
    photo(media / "small.jpg", (480, 270))
    image, _ = images.checked_image({"url": f"{SITE_URL}/media/small.jpg"}, settings(media))
    lead, square = images.rendition(image, "lead"), images.rendition(image, "square")
    assert decoded(file_of(media, lead["url"]).read_bytes()).size == (480, 270)
    assert decoded(file_of(media, square["url"]).read_bytes()).size == (270, 270) == (square["width"],
                                                                                       square["height"])


def test_the_crop_keeps_the_focus_in_the_picture(media):
    picture = Image.new("RGB", (1600, 900), "white")
    picture.paste((255, 0, 0), (100, 400, 200, 500))  # a red square around (150, 450): x 0.094, y 0.5
    picture.save(media / "focus.png")
    focus = {"x": 150 / 1600, "y": 0.5}
    image, _ = images.checked_image({"url": f"{SITE_URL}/media/focus.png", "focus": focus}, settings(media))
    square = decoded(file_of(media, images.rendition(image, "square")["url"]).read_bytes()).convert("RGB")
    # The 900x900 crop starts at the left edge (the focus is nearer it than half a crop), scaled to 720.
    assert square.getpixel((120, 360))[0] > 200 and square.getpixel((120, 360))[1] < 60
    centred, _ = images.checked_image({"url": f"{SITE_URL}/media/focus.png"}, settings(media))
    assert centred["key"] != image["key"]  # a new focus makes new names
    plain = decoded(file_of(media, images.rendition(centred, "square")["url"]).read_bytes()).convert("RGB")
    assert sum(plain.getpixel((120, 360))) > 700  # centred, the crop leaves the red square out


def test_exif_rotation_cmyk_alpha_and_animation_come_out_right(media):
    exif = Image.Exif()
    exif[0x0112] = 6
    photo(media / "turned.jpg", (900, 1600), exif=exif.tobytes())  # shown 1600x900
    photo(media / "cmyk.jpg", (1200, 675), "CMYK", color=(0, 255, 255, 0))  # red in CMYK
    photo(media / "alpha.png", (1200, 675), "RGBA", "PNG", (0, 0, 255, 0))  # fully transparent
    frames = [Image.new("P", (800, 450), i) for i in range(3)]
    frames[0].save(media / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    made = {name: images.checked_image({"url": f"{SITE_URL}/media/{name}"}, settings(media))[0]
            for name in ("turned.jpg", "cmyk.jpg", "alpha.png", "anim.gif")}
    assert (made["turned.jpg"]["width"], made["turned.jpg"]["height"]) == (1600, 900)
    assert images.rendition(made["turned.jpg"], "lead")["height"] == 675
    cmyk = decoded(file_of(media, images.rendition(made["cmyk.jpg"], "lead")["url"]).read_bytes())
    assert cmyk.mode == "RGB" and cmyk.getpixel((600, 300))[0] > 200 and cmyk.getpixel((600, 300))[2] < 60
    flat = decoded(file_of(media, images.rendition(made["alpha.png"], "lead", "jpeg")["url"]).read_bytes())
    assert min(flat.getpixel((10, 10))) > 245  # transparent goes white in JPEG
    webp = decoded(file_of(media, images.rendition(made["alpha.png"], "lead", "webp")["url"]).read_bytes())
    assert webp.mode == "RGBA" and webp.getpixel((10, 10))[3] == 0  # and stays transparent in WebP
    anim = decoded(file_of(media, images.rendition(made["anim.gif"], "thumbnail")["url"]).read_bytes())
    assert anim.size == (400, 225) and getattr(anim, "n_frames", 1) == 1
    assert made["anim.gif"]["type"] == "image/gif"


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow has no AVIF encoder")
def test_avif_renditions_where_pillow_writes_them(media):
    photo(media / "a.jpg", (1200, 675))
    image, _ = images.checked_image({"url": f"{SITE_URL}/media/a.jpg"}, settings(media, ("jpeg", "avif")))
    made = images.rendition(image, "thumbnail", "avif")
    assert decoded(file_of(media, made["url"]).read_bytes()).size == (400, 225)


def test_a_missing_rendition_is_made_once_however_many_ask(media, monkeypatch):
    photo(media / "busy.jpg", (1600, 900))
    calls = []
    encode = images._encode
    monkeypatch.setattr(images, "_encode", lambda *args: (calls.append(args[2]), encode(*args)))
    key = images.rendition_key(images.probe(media / "busy.jpg")["sha256"], None)
    barrier = threading.Barrier(8)
    found = []

    def ask():
        barrier.wait()
        found.append(images.ensure_rendition(settings(media), "lead", key, "busy.jpg.webp"))
    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len(set(found)) == 1
    assert decoded(found[0].read_bytes()).size == (1200, 675)


def test_renditions_are_served_immutable_and_only_configured_sizes_exist(media_app, media, api_headers,
                                                                         make_record):
    photo(media / "served.jpg", (1600, 900))
    client = media_app.test_client()
    put(client, api_headers, make_record(image={"url": "/media/served.jpg"}))
    url = client.get("/feeds/feed.json").get_json()["items"][0]["image"]
    path = url[len(SITE_URL):]
    file_of(media, url).unlink()  # missing: made again on request
    response = client.get(path)
    assert response.status_code == 200 and decoded(response.data).size == (1200, 675)
    directives = set(response.headers["Cache-Control"].replace(" ", "").split(","))
    assert directives == {"public", "max-age=31536000", "immutable"}
    assert client.get(path.replace("/lead/", "/huge/")).status_code == 404
    key = path.split("/")[4]
    assert client.get(path.replace(key, "0" * 12)).status_code == 404  # not the source's hash
    assert client.get(path[: -len(".jpg")] + ".bmp").status_code == 404
    original = client.get("/media/served.jpg?w=720")
    assert original.data == (media / "served.jpg").read_bytes()  # a query makes no new size


# ---- every output --------------------------------------------------------------------------------

# One article with a 1600 px lead image, its renditions made once for the tests below (14 encodings, about
# 0.6 s CPU): they only read it. One group, so one worker makes them.
published_once = pytest.mark.xdist_group("images-published")


@pytest.fixture(scope="module")
def published_site(tmp_path_factory, migrated_template):
    """(app, media folder) with the article published through the API."""
    folder = tmp_path_factory.mktemp("images-published")
    media = folder / "media"
    media.mkdir()
    with fresh_database("sqlite", folder, template=migrated_template) as url, \
            AppFactory(url, instance=folder / "instance", migrated=True) as make:
        app = make(MEDIA_DIR=str(media), IMAGE_FORMATS=list(FORMATS), RATELIMIT_ENABLED=False)
        photo(media / "lead.jpg", (1600, 1600))
        record = dict(VALID_RECORD, image={"url": "/media/lead.jpg", "width": 1600, "height": 1600, "caption": "पतंग"})
        assert put(app.test_client(), {"Authorization": f"Bearer {API_TOKEN}"}, record).status_code == 201
        yield app, media


@pytest.fixture
def published(published_site):
    return published_site[0].test_client()


@pytest.fixture
def published_media(published_site) -> Path:
    return published_site[1]


@published_once
def test_rss_has_the_enclosure_with_real_length_and_media_renditions(published, published_media):
    entry = feedparser.parse(published.get("/feeds/rss.xml").data).entries[0]
    (enclosure,) = entry.enclosures
    data = file_of(published_media, enclosure["href"]).read_bytes()
    assert int(enclosure["length"]) == len(data) and enclosure["type"] == "image/jpeg"
    assert decoded(data).size == (1200, 675)
    content = entry.media_content[0]
    assert (content["url"], content["width"], content["height"]) == (enclosure["href"], "1200", "675")
    assert content["filesize"] == str(len(data))
    thumbnail = entry.media_thumbnail[0]
    assert decoded(file_of(published_media, thumbnail["url"]).read_bytes()).size == (400, 225)


@published_once
def test_json_feed_has_image_and_banner_image(published, published_media):
    item = published.get("/feeds/feed.json").get_json()["items"][0]
    assert decoded(file_of(published_media, item["image"]).read_bytes()).size == (1200, 675)
    assert decoded(file_of(published_media, item["banner_image"]).read_bytes()).size == (1200, 630)


@published_once
def test_the_page_offers_webp_and_jpeg_through_picture(published, published_media):
    page = lxml.html.fromstring(published.get("/articles/monsoon-session-begins").data)
    picture = page.find_class("lead")[0].find("picture")
    (source,) = picture.findall(".//source")
    assert source.get("type") == "image/webp" and source.get("sizes")
    for srcset, fmt in ((source.get("srcset"), "WEBP"), (picture.find(".//img").get("srcset"), "JPEG")):
        for candidate in srcset.split(", "):
            url, width = candidate.split(" ")
            image = decoded(file_of(published_media, url).read_bytes())
            assert image.format == fmt and f"{image.width}w" == width
    img = picture.find(".//img")
    assert decoded(file_of(published_media, img.get("src")).read_bytes()).size == (int(img.get("width")),
                                                                         int(img.get("height")))
    og = {m.get("property"): m.get("content") for m in page.iter("meta") if m.get("property")}
    social = decoded(file_of(published_media, og["og:image"]).read_bytes())
    assert social.size == (int(og["og:image:width"]), int(og["og:image:height"])) == (1200, 630)
    ld = json.loads(page.xpath("//script[@type='application/ld+json']")[0].text)
    shapes = [decoded(file_of(published_media, url).read_bytes()).size for url in ld["image"]]
    assert shapes == [(1200, 675), (1200, 900), (1200, 1200)]  # 16x9, 4x3, 1x1 at 1200 px wide


@published_once
def test_the_amp_page_has_amp_img_with_srcset(published, published_media):
    page = lxml.html.fromstring(published.get("/amp/monsoon-session-begins").data)
    lead = page.xpath("//amp-img")[0]
    widths = [c.split(" ")[1] for c in lead.get("srcset").split(", ")]
    assert widths == ["1200w", "400w"]
    assert decoded(file_of(published_media, lead.get("src")).read_bytes()).size == (int(lead.get("width")),
                                                                          int(lead.get("height")))


@published_once
def test_the_mirror_exports_media_and_renditions_but_not_locks(published_site):
    media_app, media = published_site
    urls = {doc.url for doc in fixed_documents(media_app, "salt")}
    assert "/media/lead.jpg" in urls
    assert any(url.startswith("/media/renditions/lead/") and url.endswith(".webp") for url in urls)
    assert (media / "renditions" / ".locks").is_dir() and not any("/." in url for url in urls)


# ---- video ---------------------------------------------------------------------------------------

def test_a_youtube_embed_makes_the_item_a_video_in_rss_and_atom(media_app, api_headers, make_record):
    client = media_app.test_client()
    embed = {"provider": "youtube", "url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ", "title": "संसद से सीधा"}
    assert put(client, api_headers, make_record(embeds=[embed])).status_code == 201
    for path in ("/feeds/rss.xml", "/feeds/atom.xml"):
        response = client.get(path)
        assert validate_document(response.data, "rss" if "rss" in path else "atom", url=SITE_URL + path) == []
        root = etree.fromstring(response.data)
        (video,) = root.iterfind(".//{http://search.yahoo.com/mrss/}content[@medium='video']")
        assert video.get("url") is None  # no file: the player is the way to it
        assert video.find(f"{MEDIA}player").get("url") == "https://www.youtube.com/embed/dQw4w9WgXcQ"
        assert video.find(f"{MEDIA}title").text == "संसद से सीधा"
        assert video.find(f"{MEDIA}thumbnail").get("url") == "https://i.ytimg.com/vi/dQw4w9WgXcQ/hqdefault.jpg"


def test_an_article_without_a_player_is_no_video(media_app, api_headers, make_record):
    client = media_app.test_client()
    put(client, api_headers, make_record(embeds=[{"provider": "twitter", "url": "https://x.com/a/status/1"}]))
    root = etree.fromstring(client.get("/feeds/rss.xml").data)
    assert root.find(".//{http://search.yahoo.com/mrss/}content[@medium='video']") is None
