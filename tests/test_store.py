"""Store queries: keyset paging, and plans that read the feed indexes instead of scanning and sorting."""
import os
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy

from feedsvc import store
from feedsvc.ingest import write
from feedsvc.ingest.records import parse_record
from tests.support.plans import ordered_index_plan

IST = timezone(timedelta(hours=5, minutes=30))


def load(engine, make_record, count, start=datetime(2025, 7, 1, 9, 0, tzinfo=IST), same_time_every=1):
    with engine.begin() as conn:
        changed = {}
        for i in range(count):
            when = (start + timedelta(minutes=i // same_time_every)).isoformat()
            record = make_record(id=f"a{i:05d}", slug=f"article-{i}", published=when, updated=when,
                                 section={"key": f"section-{i % 10}", "name": "x"},
                                 tags=[{"key": f"tag-{i % 5}", "name": "t"}],
                                 embeds=[{"provider": "youtube", "url": f"https://youtu.be/video{i:05d}"}] if i % 10 == 0 else [])
            result = write.upsert(conn, parse_record(record, site_url="http://news.example"), site_name="s")
            changed.update(result.scopes)
        store.record_changes(conn, changed)


@pytest.mark.parametrize("scope", ["site", "section:section-3", "tag:tag-3", "author:test-reporter", "video"])
def test_keyset_pages_cover_every_article_once_newest_first(engine, make_record, scope):
    # Several articles share a timestamp so the id must break ties.
    load(engine, make_record, 60, same_time_every=3)
    seen, cursor = [], None
    with engine.connect() as conn:
        everything = store.newest(conn, scope, 1000)
        expected = [a.id for a in everything]
        while True:
            page = store.newest(conn, scope, 7, cursor)
            if not page:
                break
            seen += [a.id for a in page]
            last = page[-1]
            cursor = store.Cursor(store.utc(last.published), last.id)
    assert seen == expected and len(seen) == len(set(seen)) > 0
    published = [store.utc(a.published) for a in everything]
    assert published == sorted(published, reverse=True)


@pytest.mark.parametrize("scope", ["site", "section:section-3", "tag:tag-3", "author:test-reporter", "video"])
def test_versions_of_a_page_name_the_articles_newest_gives(engine, make_record, scope):
    """newest_versions runs a statement built once per shape (values bound when run): the same rows
    as newest_ids_query builds afresh, on every page, in every language."""
    load(engine, make_record, 60, same_time_every=3)
    with engine.connect() as conn:
        for language in (None, "hi", "fr"):
            cursor = None
            while True:
                built = conn.execute(store.newest_ids_query(scope, 7, cursor, syndicated=True, language=language,
                                                            with_version=True)).all()
                assert store.newest_versions(conn, scope, 7, cursor, syndicated=True, language=language) == built
                if not built:
                    break
                cursor = store.Cursor(built[-1].published, built[-1].id)
        with pytest.raises(ValueError):
            store.newest_versions(conn, "planet:mars", 7)


def test_cursor_token_round_trips_and_rejects_garbage():
    cursor = store.Cursor(datetime(2025, 7, 23, 10, 0, 0, 5), "pbs-1~x")
    assert store.Cursor.parse(cursor.token()) == cursor
    with pytest.raises(ValueError):
        store.Cursor.parse("yesterday")


@pytest.mark.parametrize("scope,index", [
    ("site", "ix_articles_status_published"),
    ("section:section-3", "ix_articles_section_status_published"),
    ("tag:tag-1", "ix_article_tags_tag_status_published"),
    ("author:test-reporter", "ix_article_authors_author_status_published"),
    ("video", "ix_articles_video_status_published"),
])
@pytest.mark.slow
def test_newest_reads_an_index_in_order_without_sorting(engine, make_record, scope, index):
    load(engine, make_record, 400)
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # Statistics, as autovacuum keeps them: without any, PostgreSQL guesses one row for each
            # index range (published <= now included) and may walk the site index for a section.
            conn.execute(sqlalchemy.text("ANALYZE"))
        plan = ordered_index_plan(conn, store.newest_ids_query(scope, 50))
    assert index in plan, plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan


@pytest.mark.parametrize("scope,index", [
    ("site", "ix_articles_language_status_published"),
    ("section:section-3", "ix_articles_section_language_status_published"),
    ("tag:tag-1", "ix_article_tags_tag_language_status_published"),
    ("author:test-reporter", "ix_article_authors_author_language_status_published"),
    ("video", "ix_articles_video_language_status_published"),
])
@pytest.mark.slow
def test_a_single_language_page_reads_its_language_index_in_order(engine, make_record, scope, index):
    """?lang= of a language no article uses ("fr") is an empty index range: no article read, none sorted.
    The language every article is in ("hi") may walk the scope's own index as well (PostgreSQL's
    statistics say the filter keeps every row), but never sorts."""
    load(engine, make_record, 400)
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sqlalchemy.text("ANALYZE"))
        for language, with_version in (("fr", False), ("fr", True), ("hi", False)):   # with_version: composed feeds
            plan = ordered_index_plan(conn, store.newest_ids_query(scope, 50, syndicated=True, language=language,
                                                                   with_version=with_version))
            # PostgreSQL may as well take the site's language index for a section: as empty a range.
            wanted = index if conn.dialect.name == "sqlite" else "_language_status_published"
            assert language != "fr" or wanted in plan, plan
            assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan
            assert not any(line.strip() == f"SCAN {table}" for line in plan.splitlines()
                           for table in ("articles", "article_tags", "article_authors")), plan


def test_the_languages_listed_are_a_skip_through_the_language_index(engine, make_record):
    load(engine, make_record, 50)
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sqlalchemy.text("ANALYZE"))
        for statement in (store.queries._NEXT_LANGUAGE.params(after="hi"),
                          store.queries._LANGUAGE_LIVE.params(language="fr", now=store.now_utc())):
            plan = ordered_index_plan(conn, statement)
            assert "ix_articles_language_status_published" in plan, plan
            assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan
        assert store.live_languages(conn) == ["hi"]


def test_insert_rows_stores_what_sqlalchemy_insert_stores(engine):
    # insert_rows skips SQLAlchemy's per-row handling for the import; a time stored in another text
    # form (SQLite keeps times as text) would compare wrongly in every keyset page and index range,
    # and UTF-8 bytes stored as a BLOB would read back as bytes.
    times = [datetime(2025, 7, 1, 3, 30), datetime(2025, 7, 1, 3, 30, 0, 5), datetime(1999, 12, 31, 23, 59, 59)]
    rows = [dict(id=f"{way}-{n}", slug=f"{way}-{n}", status="published", section_key="s", section_name="स",
                 published=when, updated=when, version=1, modified_at=times[0], withdrawn_at=None, article="{}",
                 record="{}") for way in ("core", "bulk") for n, when in enumerate(times)]
    with engine.begin() as conn:
        conn.execute(sqlalchemy.insert(store.articles), [dict(row, article='{"t":"शीर्षक"}') for row in rows[:3]])
        store.insert_rows(conn, store.articles, [dict(row, article='{"t":"शीर्षक"}'.encode()) for row in rows[3:]])
    with engine.connect() as conn:
        raw = conn.execute(sqlalchemy.text("SELECT id, CAST(published AS TEXT), CAST(modified_at AS TEXT), "
                                           "withdrawn_at, section_name FROM articles ORDER BY id")).all()
        typed = conn.execute(sqlalchemy.select(store.articles.c.id, store.articles.c.published, store.articles.c.article)
                             .order_by(store.articles.c.id)).all()
    by_way = {way: [row[1:] for row in raw if row[0].startswith(way)] for way in ("core", "bulk")}
    assert by_way["bulk"] == by_way["core"]
    assert [row.published for row in typed] == times + times
    assert {row.article for row in typed} == {'{"t":"शीर्षक"}'}  # UTF-8 bytes given, text stored


@pytest.mark.skipif(not os.environ.get("FEEDSVC_TEST_POSTGRESQL_URL"), reason="needs FEEDSVC_TEST_POSTGRESQL_URL")
@pytest.mark.parametrize("prepared", [True, False])
def test_pool_sizes_and_prepared_statements_come_from_the_settings(make_app, prepared):
    from feedsvc.web import db
    app = make_app(DATABASE_URL=os.environ["FEEDSVC_TEST_POSTGRESQL_URL"], DATABASE_POOL_SIZE=2,
                   DATABASE_MAX_OVERFLOW=1, DATABASE_PREPARED_STATEMENTS=prepared)
    engine = db.engine(app)
    assert (engine.pool.size(), engine.pool._max_overflow) == (2, 1)
    connection = engine.raw_connection()
    try:
        # psycopg's own default is 5; None never prepares (what PgBouncer in transaction mode needs).
        assert connection.driver_connection.prepare_threshold == (5 if prepared else None)
    finally:
        connection.close()
