"""articles: covering index for the sitemap index's per-month counts and lastmods

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 18:20:00
"""
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.create_index('ix_articles_sitemap', ['status', 'published', 'updated', 'withdrawn_at'], unique=False)


def downgrade():
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.drop_index('ix_articles_sitemap')
