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
