"""websub_outbox carries cache purges too (a `kind` column); store_settings keeps the id authority

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 05:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('websub_outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), nullable=False, server_default='websub'))
    op.create_table('store_settings',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade():
    op.drop_table('store_settings')
    with op.batch_alter_table('websub_outbox', schema=None) as batch_op:
        batch_op.drop_column('kind')
