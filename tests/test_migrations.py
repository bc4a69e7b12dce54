"""The Alembic migrations build exactly the schema store.metadata declares, on every backend."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData, Table

from feedsvc import store
from feedsvc.store import engine as store_engine
from feedsvc.web import db


def schema_drift(engine, metadata) -> list:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        return compare_metadata(context, metadata)


def test_migrated_database_matches_the_declared_schema(empty_database_url, make_app):
    engine = db.engine(make_app(DATABASE_URL=empty_database_url))  # the first app on a database migrates it
    assert schema_drift(engine, store.metadata) == []


def test_a_table_declared_but_not_migrated_is_drift(empty_database_url, make_app):
    engine = db.engine(make_app(DATABASE_URL=empty_database_url))
    declared = MetaData()
    for table in store.metadata.tables.values():
        table.to_metadata(declared)
    Table("not_migrated", declared, Column("id", Integer, primary_key=True))
    assert [change[0] for change in schema_drift(engine, declared)] == ["add_table"]


def test_the_copied_template_tests_start_from_is_the_migrated_schema(database_url, make_app):
    """tests/support/apps.MigratedTemplate: the copy every `database_url` starts as is what migrating builds."""
    engine = db.engine(make_app())
    assert schema_drift(engine, store.metadata) == []
    with engine.connect() as conn:
        heads = MigrationContext.configure(conn).get_current_heads()
    assert set(heads) == set(ScriptDirectory(str(store_engine.Path(store_engine.__file__).parent / "migrations")).get_heads())


def _alembic(engine, command_name: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config
    cfg = Config()
    cfg.set_main_option("script_location", str(store_engine.Path(store_engine.__file__).parent / "migrations"))
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, command_name)(cfg, revision)


def test_0013_fills_the_language_columns_from_stored_articles_and_goes_back(empty_database_url):
    """More articles than one backfill batch, in three languages (one tag longer than the column: left NULL)."""
    import json
    from datetime import datetime

    import sqlalchemy as sa
    engine = store.make_engine(empty_database_url)
    try:
        _alembic(engine, "upgrade", "0012")
        languages = ["hi", "en", "ur-Arab-IN", "en-" + "-".join(["abcdefgh"] * 4)]
        when = datetime(2025, 8, 1, 4, 30)
        articles = sa.table("articles", *(sa.column(name) for name in (
            "id", "slug", "status", "section_key", "section_name", "published", "updated", "version", "modified_at",
            "article", "record")))
        tags = sa.table("article_tags", *(sa.column(n) for n in ("tag_key", "article_id", "tag_name", "status", "published")))
        count = 2500
        with engine.begin() as conn:
            conn.execute(sa.insert(articles), [dict(
                id=f"a{n:05d}", slug=f"a-{n}", status="published", section_key="s", section_name="स", published=when,
                updated=when, version=1, modified_at=when, record="{}",
                article=json.dumps({"title": "शीर्षक", "language": languages[n % 4]}, ensure_ascii=False))
                for n in range(count)])
            conn.execute(sa.insert(tags), [dict(tag_key=key, article_id=f"a{n:05d}", tag_name="t", status="published",
                                                published=when) for n in range(0, count, 7) for key in ("x", "y")])
        _alembic(engine, "upgrade", "head")
        with engine.connect() as conn:
            stored = dict(conn.execute(sa.text("SELECT language, count(*) FROM articles GROUP BY language")).all())
            assert stored == {"hi": 625, "en": 625, "ur-Arab-IN": 625, None: 625}
            mismatched = conn.execute(sa.text(
                "SELECT count(*) FROM article_tags t JOIN articles a ON a.id = t.article_id "
                "WHERE t.language IS NOT a.language" if conn.dialect.name == "sqlite" else
                "SELECT count(*) FROM article_tags t JOIN articles a ON a.id = t.article_id "
                "WHERE t.language IS DISTINCT FROM a.language")).scalar()
            assert mismatched == 0
            assert conn.execute(sa.text("SELECT count(*) FROM article_tags WHERE language = 'en'")).scalar() > 0
            assert store.live_languages(conn) == ["en", "hi", "ur-Arab-IN"]
            page = conn.execute(store.newest_ids_query("tag:x", 3, language="ur-Arab-IN")).all()
            assert [row.id for row in page] == ["a02478", "a02450", "a02422"]   # n = 14 (mod 28), newest id first
        assert schema_drift(engine, store.metadata) == []
        _alembic(engine, "downgrade", "0012")
        with engine.connect() as conn:
            assert "language" not in {c["name"] for c in sa.inspect(conn).get_columns("articles")}
            assert conn.execute(sa.text("SELECT count(*) FROM articles")).scalar() == count
            assert conn.execute(sa.text("SELECT count(*) FROM article_tags")).scalar() == 2 * len(range(0, count, 7))
        _alembic(engine, "upgrade", "head")
        assert schema_drift(engine, store.metadata) == []
    finally:
        engine.dispose()


def test_going_back_step_by_step_never_empties_the_link_tables(empty_database_url):
    """Batch mode's table copy on SQLite dropped `articles` and the cascade took every tag and author link
    (0005's and 0012's downgrades did): each step down to 0001 keeps them."""
    import json
    from datetime import datetime

    import sqlalchemy as sa
    engine = store.make_engine(empty_database_url)
    try:
        _alembic(engine, "upgrade", "0012")
        when = datetime(2025, 8, 1, 4, 30)
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO articles (id, slug, status, section_key, section_name, published, updated, version, "
                "modified_at, article, record, has_video) VALUES ('a1', 'a-1', 'published', 's', 'स', :when, :when, "
                "1, :when, :article, '{}', :video)"), {"when": when, "video": True, "article": json.dumps(
                    {"slug": "a-1", "url": "/articles/a-1", "authors": [], "body_html": "<p>पाठ</p>"})})
            for table, key in (("article_tags", "tag_key"), ("article_authors", "author_key")):
                conn.execute(sa.text(f"INSERT INTO {table} ({key}, article_id, {key[:-4]}_name, status, published) "
                                     "VALUES ('x', 'a1', 't', 'published', :when)"), {"when": when})
        for revision in [f"{n:04d}" for n in range(11, 0, -1)]:
            _alembic(engine, "downgrade", revision)
            with engine.connect() as conn:
                assert conn.execute(sa.text("SELECT count(*) FROM articles")).scalar() == 1, revision
                assert conn.execute(sa.text("SELECT count(*) FROM article_tags")).scalar() == 1, revision
                assert conn.execute(sa.text("SELECT count(*) FROM article_authors")).scalar() == 1, revision
        _alembic(engine, "upgrade", "head")
        assert schema_drift(engine, store.metadata) == []
    finally:
        engine.dispose()
