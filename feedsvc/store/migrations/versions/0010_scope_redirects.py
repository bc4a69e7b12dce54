"""scope_redirects: renamed section, tag and author keys, whose old URLs answer 301

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 13:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'scope_redirects',
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('old_key', sa.String(length=64), nullable=False),
        sa.Column('new_key', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('kind', 'old_key'),
    )
    op.create_index('ix_scope_redirects_new_key', 'scope_redirects', ['kind', 'new_key'])


def downgrade():
    op.drop_index('ix_scope_redirects_new_key', table_name='scope_redirects')
    op.drop_table('scope_redirects')
