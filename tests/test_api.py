"""The ingest API: tokens, validation errors, size limits, conflicts and withdrawal."""
import json

import pytest

from feedsvc import store
from feedsvc.config import parse_token_digests, token_digest
from feedsvc.web import db


def put(client, record, headers, **extra):
    return client.put(f"/api/articles/{record['id']}", data=json.dumps(record, ensure_ascii=False),
                      content_type="application/json", headers={**headers, **extra})


def test_missing_token_is_401(client, make_record):
    response = put(client, make_record(), {})
    assert response.status_code == 401 and "Bearer" in response.headers["WWW-Authenticate"]


def test_wrong_token_is_403(client, make_record):
    assert put(client, make_record(), {"Authorization": "Bearer nope"}).status_code == 403


def test_token_digest_configuration_is_accepted(database_url, make_app):
    app = make_app(API_TOKENS=["sha256:" + token_digest("s3cret")])
    assert app.config["API_TOKEN_DIGESTS"] == [token_digest("s3cret")]
    assert "s3cret" not in json.dumps(app.config, default=str)


def test_bad_digest_configuration_names_the_variable():
    with pytest.raises(ValueError, match="FEEDSVC_API_TOKENS"):
        parse_token_digests(["sha256:xyz"])


def test_put_creates_then_get_returns_the_record(client, api_headers, make_record):
    record = make_record()
    created = put(client, record, api_headers)
    assert created.status_code == 201 and created.headers["ETag"] == '"v1"'
    fetched = client.get(f"/api/articles/{record['id']}", headers=api_headers)
    assert fetched.status_code == 200 and fetched.get_json() == record


def test_invalid_record_gets_422_listing_every_problem(client, api_headers, make_record):
    response = put(client, make_record(published="2025-08-01 09:15", status="gone"), api_headers)
    assert response.status_code == 422
    fields = {p["field"] for p in response.get_json()["problems"]}
    assert {"published", "status"} <= fields


def test_body_over_limit_is_413(client, api_headers, make_record):
    response = put(client, make_record(body_html="<p>" + "ख" * 5_000_000 + "</p>"), api_headers)
    assert response.status_code == 413


def test_id_mismatch_is_422(client, api_headers, make_record):
    record = make_record()
    response = client.put("/api/articles/another-id", data=json.dumps(record), content_type="application/json",
                          headers=api_headers)
    assert response.status_code == 422


def test_if_match_conflict_is_412(client, api_headers, make_record):
    put(client, make_record(), api_headers)
    first = put(client, make_record(title="पहला संपादन"), api_headers, **{"If-Match": '"v1"'})
    second = put(client, make_record(title="दूसरा संपादन"), api_headers, **{"If-Match": '"v1"'})
    assert first.status_code == 200 and second.status_code == 412
    assert client.get("/api/articles/test-2025-08-01-monsoon", headers=api_headers).get_json()["title"] == "पहला संपादन"


def test_older_update_is_409(client, api_headers, make_record):
    put(client, make_record(updated="2025-08-02T09:00:00+05:30"), api_headers)
    response = put(client, make_record(title="पुराना", updated="2025-08-01T10:00:00+05:30"), api_headers)
    assert response.status_code == 409


def test_delete_withdraws_and_keeps_a_tombstone(app, client, api_headers, make_record):
    put(client, make_record(), api_headers)
    response = client.delete("/api/articles/test-2025-08-01-monsoon", headers=api_headers)
    assert response.status_code == 200 and response.get_json()["outcome"] == "withdrawn"
    with db.engine(app).connect() as conn:
        assert store.newest(conn, "site", 10) == []
        assert store.newest(conn, "tag:parliament", 10) == []
        tombstones = store.withdrawn_since(conn, "section:national", store.now_utc().replace(year=2000))
        assert [a.id for a, _ in tombstones] == ["test-2025-08-01-monsoon"]
    assert client.get("/api/articles/test-2025-08-01-monsoon", headers=api_headers).get_json()["status"] == "withdrawn"


def test_delete_unknown_is_404(client, api_headers):
    assert client.delete("/api/articles/nope", headers=api_headers).status_code == 404


def test_non_json_body_is_a_clear_error(client, api_headers):
    response = client.put("/api/articles/x", data=b"\xff\xfe", content_type="application/json", headers=api_headers)
    assert response.status_code == 400 and "UTF-8" in response.get_json()["error"]
