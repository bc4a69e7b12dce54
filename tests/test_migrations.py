"""The Alembic migrations build exactly the schema store.metadata declares, on every backend."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, Table

from feedsvc import store
from feedsvc.web import db


def schema_drift(engine, metadata) -> list:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        return compare_metadata(context, metadata)


def test_migrated_database_matches_the_declared_schema(database_url, make_app):
    engine = db.engine(make_app())  # make_app runs store.migrate
    assert schema_drift(engine, store.metadata) == []


def test_a_table_declared_but_not_migrated_is_drift(database_url, make_app):
    engine = db.engine(make_app())
    declared = MetaData()
    for table in store.metadata.tables.values():
        table.to_metadata(declared)
    Table("not_migrated", declared, Column("id", Integer, primary_key=True))
    assert [change[0] for change in schema_drift(engine, declared)] == ["add_table"]
