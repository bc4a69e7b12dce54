"""articles: index on modified_at, so the mirror's --watch finds what changed without a table scan

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 17:50:00
"""
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.create_index('ix_articles_modified_at', ['modified_at'], unique=False)


def downgrade():
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.drop_index('ix_articles_modified_at')
