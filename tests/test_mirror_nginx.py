"""deploy/nginx/feedsvc.conf on a real nginx (127.0.0.1, ephemeral port, temporary prefix) serving the mirror.

The mirror must answer as the app does: the same bytes in every encoding, the same content types,
cache headers and Last-Modified, 304s, and everything it has no file for passed on to the app.
"""
from __future__ import annotations

import gzip
import http.client
import shutil
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

import brotli
import pytest
from werkzeug.serving import make_server

from bench.servers import Nginx, brotli_available
from tests.support.mirrors import mirrored_files
from tests.support.servers import serving

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("sample-mirror"),  # its mirror exported once (tests/support/mirrors.py)
    pytest.mark.skipif(shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(),
                       reason="needs Debian's nginx (make system-deps)"),
]

HEADERS_AS_THE_APP = ("Content-Type", "Cache-Control", "Access-Control-Allow-Origin",
                      "X-Content-Type-Options", "X-Frame-Options", "Content-Security-Policy")


def get(port: int, path: str, headers: dict | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.title(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def served(sample_app, sample_mirror, tmp_path_factory):
    """(nginx, the app's own HTTP server, the mirror folder): the app answers what the mirror lacks."""
    root, _ = sample_mirror
    with serving(make_server("127.0.0.1", 0, sample_app, threaded=True)) as app_server, \
            Nginx(root, tmp_path_factory.mktemp("nginx"), app_port=app_server.server_port) as nginx:
        yield nginx, sample_app, root


def test_every_mirrored_document_is_served_as_the_app_serves_it(served):
    nginx, app, root = served
    client = app.test_client()
    encodings = ["identity", "gzip"] + (["br"] if brotli_available() else [])
    for url in sorted(mirrored_files(root)):
        for encoding in encodings:
            status, headers, body = get(nginx.port, url, {"Accept-Encoding": encoding})
            expected = client.get(url, headers={"Accept-Encoding": encoding})
            assert status == 200, (url, encoding, status)
            assert "X-Served-By" not in headers, f"{url} was not served from the mirror"
            for name in HEADERS_AS_THE_APP:
                assert headers.get(name) == expected.headers.get(name), (url, encoding, name)
            if "Last-Modified" in expected.headers:   # robots.txt has none from the app; nginx adds one
                assert headers["Last-Modified"] == expected.headers["Last-Modified"], url
            got_encoding = headers.get("Content-Encoding", "identity")
            # Images go out as the app sends them, never from a compressed sibling (deploy/nginx: /media/).
            wanted = "identity" if url.startswith("/media/") else encoding
            assert got_encoding == wanted, (url, encoding)
            decoded = {"identity": lambda b: b, "gzip": gzip.decompress, "br": brotli.decompress}[wanted](body)
            plain = client.get(url).get_data()
            assert decoded == plain, (url, encoding)
            if expected.headers.get("Content-Encoding", "identity") == wanted:
                assert body == expected.get_data(), (url, encoding)   # the very bytes
            if url.startswith("/feeds"):
                assert "Accept-Encoding" in headers.get("Vary", "")


def test_etags_differ_per_encoding_and_answer_304(served):
    nginx, _, _ = served
    tags = set()
    for encoding in ("identity", "gzip"):
        status, headers, _ = get(nginx.port, "/feeds/rss.xml", {"Accept-Encoding": encoding})
        tag = headers["Etag"]
        assert not tag.startswith("W/")
        tags.add(tag)
        status, headers, body = get(nginx.port, "/feeds/rss.xml", {"Accept-Encoding": encoding,
                                                                     "If-None-Match": tag})
        assert status == 304 and body == b""
    assert len(tags) == 2


def test_if_modified_since_the_apps_last_modified_is_304(served):
    nginx, app, _ = served
    last_modified = app.test_client().get("/feeds/atom.xml").headers["Last-Modified"]
    status, _, _ = get(nginx.port, "/feeds/atom.xml", {"If-Modified-Since": last_modified})
    assert status == 304
    earlier = format_datetime(parsedate_to_datetime(last_modified).replace(year=2001), usegmt=True)
    status, _, body = get(nginx.port, "/feeds/atom.xml", {"If-Modified-Since": earlier})
    assert status == 200 and body.startswith(b"<?xml")


def test_query_strings_and_unmirrored_paths_go_to_the_app(served):
    nginx, app, _ = served
    client = app.test_client()
    for path in ("/feeds/rss.xml?limit=5", "/feeds.opml?format=atom", "/api/articles/no-such-article",
                 "/feeds/section/no-such-section/rss.xml"):
        status, headers, body = get(nginx.port, path)
        expected = client.get(path)
        assert headers.get("X-Served-By") == "app", path
        assert status == expected.status_code, path
        assert body == expected.get_data(), path


def test_the_exporters_own_files_are_never_served(served):
    nginx, _, root = served
    assert (root / ".mirror" / "manifest.sqlite").exists()
    status, _, _ = get(nginx.port, "/.mirror/manifest.sqlite")
    assert status == 404
    (root / "feeds" / ".rss.xml.1.2.tmp").write_bytes(b"half a fi")
    status, _, _ = get(nginx.port, "/feeds/.rss.xml.1.2.tmp")
    assert status == 404


def test_browser_navigations_to_feeds_go_to_the_app(served):
    """A browser opening a mirrored feed gets the app's HTML view (web/feeds.py FeedView), not the file."""
    nginx, app, _ = served
    navigation = {"Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "navigate"}
    for path in ("/feeds/rss.xml", "/feeds/atom.xml", "/feeds/feed.json"):
        status, headers, body = get(nginx.port, path, navigation)
        assert headers.get("X-Served-By") == "app" and headers["Content-Type"].startswith("text/html"), path
        assert body == app.test_client().get(path, headers=navigation).get_data(), path
        status, headers, _ = get(nginx.port, path)
        assert "X-Served-By" not in headers and "Sec-Fetch-Dest" in headers["Vary"], path
