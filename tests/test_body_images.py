"""Images inside article bodies: probed at ingest as the lead image is (sizes corrected and reported,
bad files refused and removed while the record is stored, each file probed once), their renditions
made uncropped, and every output (page <picture>, AMP amp-img, feeds' plain <img>, the mirror) giving
sizes and srcset candidates that decode to what they say. Every image is made by Pillow in the test."""
from __future__ import annotations

import json

import feedparser
import lxml.html
import pytest

from feedsvc.ingest import images
from feedsvc.ingest.records import parse_record
from feedsvc.publish.mirror import fixed_documents
from feedsvc.validate import validate_document
from feedsvc.validate.amp_validator import errors_only, validate_amp
from tests.support.apps import SITE_URL
from tests.support.pictures import BAD_IMAGES, bad_image, decoded, file_of, photo

FORMATS = ["jpeg", "webp"]  # AVIF is slow to encode; test_images covers it
SLUG = "monsoon-session-begins"


def body_with(*imgs: str) -> str:
    figures = "".join(f"<figure>{img}<figcaption>चित्र</figcaption></figure>" for img in imgs)
    return f"<p>संसद का मानसून सत्र आज से शुरू हो रहा है।</p>{figures}<p>सरकार कई विधेयक पेश करेगी।</p>"


@pytest.fixture
def media_app(make_app, media):
    return make_app(MEDIA_DIR=str(media), IMAGE_FORMATS=FORMATS, RATELIMIT_ENABLED=False)


@pytest.fixture
def put(media_app, api_headers, make_record):
    """Store a record without a lead image whose body is `body`; the API's answer."""
    def put(body: str, **changes):
        record = make_record(body_html=body, image=None, **changes)
        return media_app.test_client().put(f"/api/articles/{record['id']}", json=record, headers=api_headers)
    return put


def body_warnings(response) -> list[str]:
    return [w["reason"] for w in response.get_json().get("warnings", []) if w["field"] == "body_html"]


def settings(media, widths=(("body", 1200), ("body_medium", 720), ("body_small", 400))) -> images.ImageSettings:
    return images.ImageSettings(SITE_URL, str(media), (), tuple(FORMATS), widths)


# ---- ingest --------------------------------------------------------------------------------------

def test_a_declared_body_image_size_that_disagrees_is_corrected_and_reported(put, media_app, media):
    photo(media / "chart.png", (1600, 900), "RGBA", "PNG", (255, 0, 0, 128))
    response = put(body_with('<img src="/media/chart.png" width="300" height="600" alt="ग्राफ़">'))
    assert response.status_code == 201
    reasons = body_warnings(response)
    assert len(reasons) == 2 and all("chart.png" in r and "corrected" in r for r in reasons), reasons
    assert "declared width 300" in reasons[0] and "1600" in reasons[0]
    rss = media_app.test_client().get("/feeds/rss.xml").data
    assert validate_document(rss, "rss", url=f"{SITE_URL}/feeds/rss.xml") == []
    (img,) = lxml.html.fragment_fromstring(feedparser.parse(rss).entries[0].content[0].value,
                                           create_parent="div").iter("img")
    # Feeds keep the plain <img>, now with the file's real size.
    assert (img.get("width"), img.get("height"), img.get("alt")) == ("1600", "900", "ग्राफ़")
    assert decoded(file_of(media, img.get("src")).read_bytes()).size == (1600, 900)


def test_a_body_image_without_a_size_gets_the_real_one_and_no_warning(put, media_app, media):
    photo(media / "plain.jpg", (640, 480))
    response = put(body_with('<img src="/media/plain.jpg" alt="">'))
    assert response.status_code == 201 and body_warnings(response) == []
    item = media_app.test_client().get("/feeds/feed.json").get_json()["items"][0]
    (img,) = lxml.html.fragment_fromstring(item["content_html"], create_parent="div").iter("img")
    assert (img.get("width"), img.get("height")) == ("640", "480")


@pytest.mark.parametrize("name,reason", BAD_IMAGES)
def test_a_bad_body_image_is_refused_and_removed_and_the_record_stored(put, media_app, media, monkeypatch,
                                                                       name, reason):
    bad_image(media, name, monkeypatch)
    photo(media / "good.jpg", (800, 450))
    response = put(body_with(f'<img src="/media/{name}" alt="ख़राब">', '<img src="/media/good.jpg" alt="ठीक">'))
    assert response.status_code == 201
    (warning,) = body_warnings(response)
    assert name in warning and reason in warning and "removed" in warning
    client = media_app.test_client()
    for path in (f"/articles/{SLUG}", "/feeds/rss.xml"):
        shown = client.get(path).data.decode()
        assert name not in shown and "good.jpg" in shown, path
    assert not any((media / "renditions").rglob(f"{name}.*"))


def test_a_missing_body_file_is_kept_as_declared_and_a_remote_one_untouched(put, media_app):
    response = put(body_with('<img src="/media/later.jpg" width="10" height="20" alt="">',
                             '<img src="https://cdn.example/far.jpg" width="10" height="20" alt="">'))
    assert response.status_code == 201
    (warning,) = body_warnings(response)
    assert "later.jpg" in warning and "not in MEDIA_DIR" in warning
    item = media_app.test_client().get("/feeds/feed.json").get_json()["items"][0]
    sizes = [(i.get("width"), i.get("height"))
             for i in lxml.html.fragment_fromstring(item["content_html"], create_parent="div").iter("img")]
    assert sizes == [("10", "20"), ("10", "20")]


def test_the_import_reports_body_images_naming_record_field_and_file(media_app, media, tmp_path, make_record):
    photo(media / "real.jpg", (1000, 500))
    (media / "broken.jpg").write_bytes(b"GIF89a broken")
    folder = tmp_path / "records"
    folder.mkdir()
    for name, img in (("a", '<img src="/media/real.jpg" width="1200" height="500">'),
                      ("b", '<img src="/media/broken.jpg">')):
        record = make_record(id=f"img-{name}", slug=f"img-{name}", image=None, body_html=body_with(img))
        (folder / f"{name}.json").write_text(json.dumps(record, ensure_ascii=False), "utf-8")
    result = media_app.test_cli_runner().invoke(args=["import-articles", str(folder)])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning ")]
    assert any("a.json" in w and "body_html" in w and "real.jpg" in w and "width 1200" in w for w in warnings), warnings
    assert any("b.json" in w and "body_html" in w and "broken.jpg" in w and "refused" in w for w in warnings), warnings
    assert "stored 2" in result.output


def test_a_file_in_many_bodies_is_probed_once_good_or_bad(media, monkeypatch):
    photo(media / "shared.jpg", (900, 600))
    whole = photo(media / "whole.jpg", (900, 600)).read_bytes()
    (media / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    calls = []
    probe = images.probe
    monkeypatch.setattr(images, "probe", lambda path: (calls.append(path.name), probe(path))[1])
    for number in range(20):
        record = {"id": f"r-{number}", "title": f"शीर्षक {number}", "section": {"key": "national", "name": "देश"},
                  "authors": [{"name": "संवाददाता"}], "published": "2025-08-01T09:15:00+05:30",
                  "body_html": body_with('<img src="/media/shared.jpg" width="1" height="1">',
                                         '<img src="/media/truncated.jpg">')}
        article = parse_record(record, site_url=SITE_URL, images=settings(media))
        assert (article.body_images["/media/shared.jpg"]["width"], len(article.warnings)) == (900, 3)
        assert "truncated.jpg" not in article.body_html
    assert sorted(calls) == ["shared.jpg", "truncated.jpg"]


# ---- renditions ----------------------------------------------------------------------------------

@pytest.mark.parametrize("size,expected", [
    ((1600, 900), {"body": (1200, 675), "body_medium": (720, 405), "body_small": (400, 225)}),
    # Never enlarged, never cropped: a narrow portrait comes out whole, and a width it cannot reach is
    # made once, at its own width (body_medium would be the same 600 px picture as body).
    ((600, 1200), {"body": (600, 1200), "body_small": (400, 800)}),
])
def test_body_renditions_keep_the_whole_picture_at_each_width(media, size, expected):
    source = photo(media / "tall.jpg", size)
    made = images.make_body_renditions(source, images.probe(source), settings(media))
    assert {name: (r["width"], r["height"]) for name, r in made.items()} == expected
    image = {"url": f"{SITE_URL}/media/tall.jpg", "key": images.rendition_key(images.probe(source)["sha256"], None),
             "renditions": made}
    for name, shape in expected.items():
        for fmt, pillow in (("jpeg", "JPEG"), ("webp", "WEBP")):
            found = images.rendition(image, name, fmt)
            picture = decoded(file_of(media, found["url"]).read_bytes())
            assert (picture.format, picture.size, found["length"]) == (pillow, shape, made[name]["bytes"][fmt])


@pytest.fixture
def published(put, media):
    photo(media / "chart.jpg", (1600, 900))
    assert put(body_with('<img src="/media/chart.jpg" width="800" height="450" alt="ग्राफ़">')).status_code == 201
    return media


def test_a_missing_body_rendition_is_made_on_request_and_served_immutable(published, media_app, media):
    client = media_app.test_client()
    page = lxml.html.fromstring(client.get(f"/articles/{SLUG}").data)
    url = page.find_class("article-body")[0].find(".//img").get("srcset").split(", ")[-1].split(" ")[0]
    file_of(media, url).unlink()
    response = client.get(url[len(SITE_URL):])
    assert response.status_code == 200 and decoded(response.data).size == (400, 225)
    assert "immutable" in response.headers["Cache-Control"]
    assert client.get(url[len(SITE_URL):].replace("/body_small/", "/body_huge/")).status_code == 404


def test_the_mirror_exports_body_renditions(published, media_app):
    urls = {doc.url for doc in fixed_documents(media_app, "salt")}
    assert "/media/chart.jpg" in urls
    for name in ("body", "body_medium", "body_small"):
        assert any(url.startswith(f"/media/renditions/{name}/") and url.endswith(".webp") for url in urls), name


# ---- outputs -------------------------------------------------------------------------------------

def srcset_sizes(media, srcset: str, fmt: str) -> list[tuple[int, int]]:
    """Each candidate of a srcset decoded: its format must be `fmt` and its width the one the candidate states."""
    sizes = []
    for candidate in srcset.split(", "):
        url, width = candidate.split(" ")
        picture = decoded(file_of(media, url).read_bytes())
        assert picture.format == fmt and f"{picture.width}w" == width
        sizes.append(picture.size)
    return sizes


def test_the_page_shows_a_body_image_through_picture_with_srcset(published, media_app, media):
    response = media_app.test_client().get(f"/articles/{SLUG}")
    assert validate_document(response.data, "html", url=f"{SITE_URL}/articles/{SLUG}") == []
    body = lxml.html.fromstring(response.data).find_class("article-body")[0]
    (picture,) = body.iter("picture")
    (source,) = picture.findall("source")
    assert source.get("type") == "image/webp" and source.get("sizes")
    assert srcset_sizes(media, source.get("srcset"), "WEBP") == [(1200, 675), (720, 405), (400, 225)]
    img = picture.find(".//img")  # libxml2 knows no void <source> and nests the img inside it
    assert srcset_sizes(media, img.get("srcset"), "JPEG") == [(1200, 675), (720, 405), (400, 225)]
    assert (img.get("width"), img.get("height"), img.get("alt"), img.get("loading")) == ("1600", "900", "ग्राफ़", "lazy")
    assert decoded(file_of(media, img.get("src")).read_bytes()).size == (1600, 900)


@pytest.mark.slow
def test_the_amp_page_gives_a_body_image_its_real_size_and_srcset(published, media_app, media):
    html = media_app.test_client().get(f"/amp/{SLUG}").get_data(as_text=True)
    assert errors_only(validate_amp(html)) == []
    assert validate_document(html.encode(), "amp", url=f"{SITE_URL}/amp/{SLUG}") == []
    (amp_img,) = lxml.html.fromstring(html).xpath("//figure/amp-img")
    assert (amp_img.get("width"), amp_img.get("height")) == ("1600", "900")
    assert srcset_sizes(media, amp_img.get("srcset"), "JPEG") == [(1200, 675), (720, 405), (400, 225)]
    assert decoded(file_of(media, amp_img.get("src")).read_bytes()).size == (1600, 900)


def test_a_body_image_with_a_devanagari_file_name_is_found_and_probed(media):
    photo(media / "बारिश का ग्राफ़.jpg", (700, 350))
    record = {"id": "r-hi", "title": "बारिश", "section": {"key": "national", "name": "देश"},
              "authors": [{"name": "संवाददाता"}], "published": "2025-08-01T09:15:00+05:30",
              "body_html": body_with('<img src="/media/बारिश का ग्राफ़.jpg" alt="">')}
    article = parse_record(record, site_url=SITE_URL, images=settings(media))
    assert article.warnings == []
    ((src, image),) = article.body_images.items()
    assert src.isascii() and src in article.body_html  # stored as the URI the body writes
    assert (image["width"], image["height"], set(image["renditions"])) == (700, 350, {"body", "body_small"})
    assert 'width="700" height="350"' in article.body_html


# ---- a refused image's figure ----------------------------------------------------------------------

UNSAFE = [("javascript:alert(1)", "unsafe"), ("data:image/png;base64,iVBORw0KGgo=", "unsafe")]


def body_texts(client) -> dict[str, str]:
    """The article body's HTML as each output carries it: RSS, Atom and JSON Feed content, page, AMP page."""
    rss, atom = (feedparser.parse(client.get(f"/feeds/{name}").data) for name in ("rss.xml", "atom.xml"))
    page, amp = (lxml.html.fromstring(client.get(path).data) for path in (f"/articles/{SLUG}", f"/amp/{SLUG}"))
    return {"rss": rss.entries[0].content[0].value, "atom": atom.entries[0].content[0].value,
            "json": client.get("/feeds/feed.json").get_json()["items"][0]["content_html"],
            "page": lxml.html.tostring(page.find_class("article-body")[0], encoding="unicode"),
            "amp": lxml.html.tostring(amp.xpath("//article")[0], encoding="unicode")}


@pytest.mark.parametrize("bad", [name for name, _ in BAD_IMAGES] + [src for src, _ in UNSAFE])
def test_a_refused_image_takes_its_figure_and_caption_out_of_every_output(put, media_app, media, monkeypatch, bad):
    src = bad if ":" in bad else f"/media/{bad_image(media, bad, monkeypatch).name}"
    photo(media / "good.jpg", (800, 450))
    body = (f'<p>पहला अनुच्छेद।</p><figure><img src="{src}" alt="ख़राब"><figcaption>बाढ़ में डूबा गाँव</figcaption>'
            f'</figure><figure><img src="/media/good.jpg" alt="ठीक"><figcaption>संसद भवन</figcaption></figure>'
            f'<p>आख़िरी अनुच्छेद।</p>')
    assert put(body).status_code == 201
    for output, shown in body_texts(media_app.test_client()).items():
        fragment = lxml.html.fragment_fromstring(shown, create_parent="div")
        captions = [" ".join(c.text_content().split()) for c in fragment.iter("figcaption")]
        assert captions == ["संसद भवन"], (output, shown)
        assert len(list(fragment.iter("figure"))) == 1, output
        assert "बाढ़ में डूबा गाँव" not in fragment.text_content(), output
        assert "पहला अनुच्छेद।" in fragment.text_content() and "आख़िरी अनुच्छेद।" in fragment.text_content()


def test_a_figure_that_still_shows_something_keeps_its_caption(put, media_app, media, monkeypatch):
    bad_image(media, "corrupt.jpg", monkeypatch)
    photo(media / "good.jpg", (800, 450))
    response = put('<figure><img src="/media/corrupt.jpg" alt=""><img src="/media/good.jpg" alt="">'
                   '<figcaption>दो तस्वीरें</figcaption></figure>'
                   '<figure><img src="data:image/png;base64,AAAA"><blockquote>उद्धरण</blockquote>'
                   '<figcaption>वक्ता</figcaption></figure>')
    assert response.status_code == 201
    (warning,) = body_warnings(response)
    assert "corrupt.jpg" in warning and "refused" in warning
    for output, shown in body_texts(media_app.test_client()).items():
        fragment = lxml.html.fragment_fromstring(shown, create_parent="div")
        assert [c.text_content().strip() for c in fragment.iter("figcaption")] == ["दो तस्वीरें", "वक्ता"], output


def test_figure_tags_written_as_text_or_in_attributes_are_not_figures(put, media_app):
    hostile = ('<p>&lt;figure&gt;</p><figure><img src="data:x" alt="</figure><figure>">'
               '<figcaption>हटाओ</figcaption></figure>'
               '<abbr title="<figure>">क</abbr><figure><figcaption>खाली</figcaption></figure>'
               '<img src="/media/none.jpg" alt="</figure>" onerror="alert(1)"><p>अंत</p>')
    assert put(hostile).status_code == 201
    shown = body_texts(media_app.test_client())["json"]
    fragment = lxml.html.fragment_fromstring(shown, create_parent="div")
    assert list(fragment.iter("figure")) == [] and "हटाओ" not in shown and "खाली" not in shown
    assert [e.get("title") for e in fragment.iter("abbr")] == ["<figure>"]
    assert [(i.get("alt"), i.get("onerror")) for i in fragment.iter("img")] == [("</figure>", None)]
    assert fragment.text_content().startswith("<figure>") and fragment.text_content().endswith("अंत")
