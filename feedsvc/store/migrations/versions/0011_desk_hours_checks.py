"""The desk: counts per hour (the last 24 hours), partner bytes, each feed's last validation, items
profiles left out

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 07:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('desk_feed_hours',
    sa.Column('hour', sa.DateTime(), nullable=False),
    sa.Column('feed', sa.String(length=300), nullable=False),
    sa.Column('polls', sa.Integer(), nullable=False),
    sa.Column('not_modified', sa.Integer(), nullable=False),
    sa.Column('refused', sa.Integer(), nullable=False),
    sa.Column('errors', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('hour', 'feed')
    )
    op.create_table('desk_validations',
    sa.Column('feed', sa.String(length=300), nullable=False),
    sa.Column('checked_at', sa.DateTime(), nullable=False),
    sa.Column('problems', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('feed')
    )
    op.create_table('desk_left_out',
    sa.Column('profile', sa.String(length=64), nullable=False),
    sa.Column('item', sa.String(length=128), nullable=False),
    sa.Column('rule', sa.String(length=64), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('seen_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('profile', 'item', 'rule')
    )
    with op.batch_alter_table('partner_usage', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bytes', sa.BigInteger(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('partner_usage', schema=None) as batch_op:
        batch_op.drop_column('bytes')
    op.drop_table('desk_left_out')
    op.drop_table('desk_validations')
    op.drop_table('desk_feed_hours')
