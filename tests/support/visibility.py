"""What "unknown" looks like on every public route, and the store's traces of a write: shared by the
tests of drafts and of scheduled articles, which must both be indistinguishable from unknown slugs."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from feedsvc import store
from feedsvc.store import websub_outbox
from feedsvc.web import db
from tests.support.apps import SITE_URL
from tests.support.records import put_record

SCOPES = ("site", "section:national", "tag:parliament", "author:test-reporter")


@pytest.fixture
def live(client, api_headers, make_record) -> dict:
    """A published article in the draft's section, tag and author, so all their feeds exist."""
    record = make_record(id="live-1", slug="live-story", published="2025-07-30T09:00:00+05:30",
                         updated="2025-07-30T09:00:00+05:30")
    put_record(client, api_headers, record)
    return record


def public_routes(slug: str) -> list[str]:
    return [f"/articles/{slug}", f"/amp/{slug}", f"/embed/{slug}",
            f"/oembed?url={SITE_URL}/articles/{slug}", f"/oembed?url={SITE_URL}/amp/{slug}&format=xml"]


def answer(client, path: str, slug: str) -> tuple:
    """What a reader learns from a route: status, where it points, caching and the body (slug masked)."""
    response = client.get(path)
    body = response.get_data(as_text=True).replace(slug, "SLUG")
    return response.status_code, response.headers.get("Location"), response.headers.get("Cache-Control"), body


def assert_as_unknown(client, *slugs: str) -> None:
    for route in range(len(public_routes("x"))):
        unknown = answer(client, public_routes("never-used-slug")[route], "never-used-slug")
        assert unknown[0] == 404
        for slug in slugs:
            assert answer(client, public_routes(slug)[route], slug) == unknown, public_routes(slug)[route]


def outbox_rows(app) -> int:
    with db.engine(app).connect() as conn:
        return conn.execute(select(func.count()).select_from(websub_outbox)).scalar_one()


def scope_versions(app) -> dict:
    with db.engine(app).connect() as conn:
        return {s.scope: s.version for s in store.all_scopes(conn)}
