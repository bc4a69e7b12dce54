"""websub outbox: claim token of the sender holding a row

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 17:10:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('websub_outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claim_token', sa.String(length=32), nullable=True))


def downgrade():
    with op.batch_alter_table('websub_outbox', schema=None) as batch_op:
        batch_op.drop_column('claim_token')
