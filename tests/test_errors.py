"""Error answers: one JSON shape from every route, and one set of handlers registered on the app."""
from __future__ import annotations

import json

import pytest
from flask import Flask

from feedsvc.web import errors
from tests.support.apps import API_TOKEN

pytestmark = pytest.mark.postgresql_once  # parametrised over inputs, not over SQL: PostgreSQL runs the first

# (method, path, headers, status) of JSON errors from every part of the service that answers them.
JSON_ERRORS = [
    ("GET", "/feeds/rss.xml?limit=0", {}, 400),
    ("GET", "/feeds/tag/no-such-tag/rss.xml", {}, 404),
    ("GET", "/feeds.opml?format=pdf", {}, 400),
    ("GET", "/partner/feeds/rss.xml", {}, 401),
    ("GET", "/partner/feeds/rss.xml", {"X-Partner-Key": "not-a-key"}, 401),
    ("GET", "/api/articles/x", {}, 401),
    ("PUT", "/api/articles/x", {"Authorization": f"Bearer {API_TOKEN}"}, 415),
    ("GET", "/api/articles/no-such-article", {"Authorization": f"Bearer {API_TOKEN}"}, 404),
    ("GET", "/oembed?url=http://elsewhere.example/x", {}, 404),
    ("GET", "/feeds/rss.xml?tag=%00", {}, 400),
]


@pytest.mark.parametrize("method, path, headers, status", JSON_ERRORS)
def test_every_json_error_has_one_shape(client, method, path, headers, status):
    response = client.open(path, method=method, headers=headers)
    body = json.loads(response.data)
    assert (response.status_code, response.mimetype) == (status, "application/json")
    assert isinstance(body["error"], str) and body["error"]
    assert all(isinstance(value, str) for key, value in body.items() if key in ("error", "message"))


def test_json_error_takes_the_body_and_the_headers_apart():
    with Flask(__name__).test_request_context():
        response = errors.json_error(429, "too many requests", headers={"Retry-After": "7"},
                                     message="धीरे चलें", retry_after=7)
    assert response.status_code == 429 and response.headers["Retry-After"] == "7"
    assert response.get_json() == {"error": "too many requests", "message": "धीरे चलें", "retry_after": 7}


def test_error_handlers_are_registered_once_on_the_app(app):
    """No blueprint keeps its own copy of a handler the app has (the 400s and 404s once were copied)."""
    on_app = {cls for handlers in app.error_handler_spec[None].values() for cls in handlers}
    assert set(errors.HANDLERS) <= on_app
    for blueprint, by_code in app.error_handler_spec.items():
        if blueprint is not None:
            copied = {cls for handlers in by_code.values() for cls in handlers} & set(errors.HANDLERS)
            assert not copied, f"blueprint {blueprint} handles {copied} itself"


def test_http_errors_answer_json_in_the_api_and_werkzeugs_page_elsewhere(client, api_headers):
    too_large = client.put("/api/articles/x", data=b" " * (4 * 1024 * 1024 + 1), content_type="application/json",
                           headers=api_headers)
    assert too_large.status_code == 413 and too_large.mimetype == "application/json"
    assert too_large.get_json() == {"error": too_large.get_json()["error"]} and too_large.get_json()["error"]
    unknown = client.get("/no/such/page")
    assert unknown.status_code == 404 and unknown.mimetype == "text/html"


def test_a_browser_gets_the_hindi_page_for_a_store_outage_and_a_program_json(app):
    with app.test_request_context(headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}):
        page = errors.unavailable_response()
    with app.test_request_context(headers={"Accept": "application/json"}):
        data = errors.unavailable_response()
    assert page.status_code == data.status_code == 503
    assert "लेख भंडार" in page.get_data(as_text=True) and page.headers["Retry-After"] == "30"
    assert data.get_json() == {"error": "service unavailable", "message": data.get_json()["message"],
                               "retry_after": 30}
    assert data.headers["Cache-Control"] == page.headers["Cache-Control"] == "no-store"
