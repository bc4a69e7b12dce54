"""Hostile requests get a 4xx with a clear message (or are served as if the noise were absent), never a 5xx.

The requests are data (tests/hostile/requests/cases.json): path traversal and NUL bytes in slugs,
keys, ids and media paths; huge query strings, keys and tokens; bad limit/after values; malformed
If-None-Match, If-Modified-Since and Accept-Encoding; wrong methods; broken API bodies. They run
through the app on every backend (a NUL byte that reaches PostgreSQL is a driver error, not a
404, unless the app stops it first), and the protocol-level ones (request lines and headers larger
than any route sees) against a real gunicorn.
"""
from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect

from tests.support.apps import API_TOKEN, BACKENDS, AppFactory, fresh_database
from tests.support.records import VALID_RECORD
from tests.support.servers import LIVE_TOKEN, Gunicorn

pytestmark = pytest.mark.postgresql_once  # parametrised over inputs, not over SQL: PostgreSQL runs the first

CASES = json.loads((Path(__file__).resolve().parent / "hostile" / "requests" / "cases.json").read_text("utf-8"))["cases"]
_REPEAT = re.compile(r"\{([^{}]*?)\*(\d+)\}")


def expand(text: str) -> str:
    return _REPEAT.sub(lambda m: m.group(1) * int(m.group(2)), text)


def status_matches(status: int, expected: str) -> bool:
    return any(str(status) == option or (option.endswith("xx") and str(status)[0] == option[0])
               for option in expected.split("|"))


@pytest.fixture(scope="module", params=BACKENDS)
def hostile_client(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"requests-{request.param}")
    with fresh_database(request.param, folder) as url, AppFactory(url, instance=folder / "instance") as make_app:
        app = make_app(RATELIMIT_ENABLED=False)
        client = app.test_client()
        for number, slug in enumerate(("one", "two", "three")):
            record = dict(VALID_RECORD, id=slug, slug=slug, published=f"2025-08-01T0{number}:00:00+05:30")
            record["updated"] = record["published"]
            assert client.put(f"/api/articles/{slug}", json=record,
                              headers={"Authorization": f"Bearer {API_TOKEN}"}).status_code == 201
        yield app, client


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_hostile_request_gets_a_clear_4xx_or_a_normal_answer_never_5xx(hostile_client, case):
    app, client = hostile_client
    path = expand(case["path"])
    route_path = path.split("?")[0]
    try:
        app.url_map.bind("news.example").match(re.sub("%2F", "/", route_path, flags=re.I), method="GET")
    except (MethodNotAllowed, RequestRedirect):
        pass
    except NotFound:
        if not case["status"].startswith("4"):
            pytest.skip(f"no route for {route_path[:60]} yet")
    headers = {name: expand(value) for name, value in case.get("headers", {}).items()}
    if case.get("token"):
        headers["Authorization"] = f"Bearer {API_TOKEN}"
    response = client.open(path, method=case.get("method", "GET"), headers=headers,
                           data=expand(case["body"]).encode("utf-8") if "body" in case else None)
    body = response.get_data(as_text=True)
    # 5xx only where a spec asks for one (oEmbed: 501 for an unsupported format)
    assert response.status_code < 500 or case["status"].startswith("5"), \
        f"{case['name']}: {response.status_code} {body[:300]}"
    assert status_matches(response.status_code, case["status"]), \
        f"{case['name']}: got {response.status_code}, want {case['status']}: {body[:300]}"
    if 400 <= response.status_code < 500 and response.status_code != 405:
        assert body.strip(), f"{case['name']}: a {response.status_code} without a message"
        if case.get("message"):
            assert case["message"].lower() in body.lower(), f"{case['name']}: {body[:300]}"
    if response.status_code == 405:
        assert response.headers.get("Allow"), "a 405 says which methods are allowed"


@pytest.mark.parametrize("path", ["/feeds//rss.xml", "/feeds/section//national/atom.xml?limit=5", "/articles//one"])
@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "news.example.evil.example"])
def test_a_routing_redirect_names_the_site_whatever_the_host_header(hostile_client, path, host):
    _, client = hostile_client
    response = client.get(path, headers={"Host": host})
    assert response.status_code == 308
    location = urlsplit(response.headers["Location"])
    assert (location.scheme, location.netloc) == ("http", "news.example")
    assert "//" not in location.path and location.query == urlsplit(path).query


# ---- protocol level: what gunicorn itself must refuse, and the app must survive ------------------

RAW_REQUESTS = {
    "request-line-of-100-kb": b"GET /feeds/rss.xml?x=" + b"A" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "header-of-100-kb": b"GET /feeds/rss.xml HTTP/1.1\r\nHost: x\r\nX-Big: " + b"B" * 100_000 + b"\r\n\r\n",
    "five-hundred-headers": b"GET /feeds/rss.xml HTTP/1.1\r\nHost: x\r\n"
                            + b"".join(b"X-H%d: v\r\n" % i for i in range(500)) + b"\r\n",
    "nul-in-request-line": b"GET /feeds/rss\x00.xml HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad-http-version": b"GET /feeds/rss.xml HTTP/9.9\r\nHost: x\r\n\r\n",
    "broken-chunked-body": b"PUT /api/articles/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                           b"Content-Type: application/json\r\nAuthorization: Bearer " + LIVE_TOKEN.encode("ascii")
                           + b"\r\n\r\nZZZ\r\n{}\r\n0\r\n\r\n",
    "content-length-and-chunked": b"PUT /api/articles/x HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                                  b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "negative-content-length": b"PUT /api/articles/x HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
}


def raw_exchange(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(payload)
        except OSError:
            pass  # the server may close before reading it all: that is a refusal too
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
                if b"\r\n\r\n" in received:
                    break
        except OSError:
            pass
        return received


@pytest.mark.slow
def test_malformed_http_is_refused_by_gunicorn_and_the_service_carries_on(database_url, engine, tmp_path):
    with Gunicorn(database_url, workers=1, threads=2, log_path=tmp_path / "gunicorn.log") as server:
        for name, payload in RAW_REQUESTS.items():
            answer = raw_exchange(server.port, payload)
            status_line = answer.split(b"\r\n", 1)[0]
            assert not status_line.startswith(b"HTTP/1.1 5") and not status_line.startswith(b"HTTP/1.0 5"), \
                f"{name}: {status_line!r}"
            assert server.request("GET", "/feeds/feed.json")[0] == 200, f"the service is down after {name}"
        assert len(server.worker_pids()) == 1
