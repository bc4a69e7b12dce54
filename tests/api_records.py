"""Articles stored through the ingest API, as the CMS stores them: for tests that need some in a fresh app."""
import json

import pytest


def put_record(client, api_headers, record: dict) -> None:
    response = client.put(f"/api/articles/{record['id']}", data=json.dumps(record, ensure_ascii=False),
                          content_type="application/json", headers=api_headers)
    assert response.status_code in (200, 201), response.get_data(as_text=True)


@pytest.fixture
def record(client, api_headers, make_record) -> dict:
    """The conftest's valid record, stored (import this fixture into a test module to use it)."""
    record = make_record()
    put_record(client, api_headers, record)
    return record
