"""articles: visible_from (scheduled publication), in_feeds and in_news_sitemap (out of syndication)

Articles already stored live with a `published` still to come become scheduled, so they leave
every feed and page until their time and then go live through the scheduler like any other.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 05:10:00
"""
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('visible_from', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('in_feeds', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column('in_news_sitemap', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.create_index('ix_articles_visible_from', ['visible_from'], unique=False)
        batch_op.create_index('ix_articles_in_feeds', ['in_feeds'], unique=False)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    for table, also in (('article_tags', ''), ('article_authors', ''), ('articles', ', visible_from = published')):
        op.execute(sa.text(f"UPDATE {table} SET status = 'scheduled'{also} "
                           "WHERE status = 'published' AND published > :now").bindparams(now=now))


def downgrade():
    for table in ('articles', 'article_tags', 'article_authors'):
        op.execute(f"UPDATE {table} SET status = 'published' WHERE status = 'scheduled'")
    # In place, not batch mode's copy of the table: on SQLite dropping the old `articles` would cascade
    # (foreign_keys=ON) and empty article_tags and article_authors.
    op.drop_index('ix_articles_in_feeds', table_name='articles')
    op.drop_index('ix_articles_visible_from', table_name='articles')
    for column in ('in_news_sitemap', 'in_feeds', 'visible_from'):
        op.drop_column('articles', column)
