"""Alembic environment: runs on the connection feedsvc.store.migrate() hands it, or on FEEDSVC_DATABASE_URL."""
import os

from alembic import context

from feedsvc.store import make_engine, metadata

config = context.config


def run(connection):
    # One transaction per migration: a long backfill (0013) commits batch by batch in an autocommit
    # block, which Alembic allows only when it holds the transactions itself.
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                      compare_type=True, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    with make_engine(os.environ.get("FEEDSVC_DATABASE_URL", "sqlite:///instance/feedsvc.db")).connect() as conn:
        run(conn)
