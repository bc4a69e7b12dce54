"""The desk's counts: polls, 304s, refusals and errors per feed and day; polls and reported subscribers
per reader family; distinct pollers per family

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 06:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('desk_feed_days',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('feed', sa.String(length=300), nullable=False),
    sa.Column('polls', sa.Integer(), nullable=False),
    sa.Column('not_modified', sa.Integer(), nullable=False),
    sa.Column('refused', sa.Integer(), nullable=False),
    sa.Column('errors', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'feed')
    )
    op.create_table('desk_reader_days',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('feed', sa.String(length=300), nullable=False),
    sa.Column('family', sa.String(length=32), nullable=False),
    sa.Column('polls', sa.Integer(), nullable=False),
    sa.Column('subscribers', sa.Integer(), nullable=True),
    sa.Column('reported_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('day', 'feed', 'family')
    )
    op.create_table('desk_pollers',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('family', sa.String(length=32), nullable=False),
    sa.Column('poller', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('day', 'family', 'poller')
    )


def downgrade():
    op.drop_table('desk_pollers')
    op.drop_table('desk_reader_days')
    op.drop_table('desk_feed_days')
