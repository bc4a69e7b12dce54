"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-30 15:33:10.161264
"""
import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('articles',
    sa.Column('id', sa.String(length=128), nullable=False),
    sa.Column('slug', sa.String(length=80), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('section_key', sa.String(length=64), nullable=False),
    sa.Column('section_name', sa.String(length=200), nullable=False),
    sa.Column('published', sa.DateTime(), nullable=False),
    sa.Column('updated', sa.DateTime(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('modified_at', sa.DateTime(), nullable=False),
    sa.Column('withdrawn_at', sa.DateTime(), nullable=True),
    sa.Column('article', sa.Text(), nullable=False),
    sa.Column('record', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('slug')
    )
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.create_index('ix_articles_section_status_published', ['section_key', 'status', 'published', 'id'], unique=False)
        batch_op.create_index('ix_articles_status_published', ['status', 'published', 'id'], unique=False)
        batch_op.create_index('ix_articles_withdrawn_at', ['withdrawn_at'], unique=False)

    op.create_table('partners',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key_hash'),
    sa.UniqueConstraint('name')
    )
    op.create_table('scope_state',
    sa.Column('scope', sa.String(length=80), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('modified_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('scope')
    )
    op.create_table('websub_outbox',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('hub_url', sa.Text(), nullable=False),
    sa.Column('topic_url', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('websub_outbox', schema=None) as batch_op:
        batch_op.create_index('ix_websub_outbox_pending', ['sent_at', 'next_attempt_at'], unique=False)

    op.create_table('article_authors',
    sa.Column('author_key', sa.String(length=64), nullable=False),
    sa.Column('article_id', sa.String(length=128), nullable=False),
    sa.Column('author_name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('published', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['article_id'], ['articles.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('author_key', 'article_id')
    )
    with op.batch_alter_table('article_authors', schema=None) as batch_op:
        batch_op.create_index('ix_article_authors_article', ['article_id'], unique=False)
        batch_op.create_index('ix_article_authors_author_status_published', ['author_key', 'status', 'published', 'article_id'], unique=False)

    op.create_table('article_tags',
    sa.Column('tag_key', sa.String(length=64), nullable=False),
    sa.Column('article_id', sa.String(length=128), nullable=False),
    sa.Column('tag_name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('published', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['article_id'], ['articles.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tag_key', 'article_id')
    )
    with op.batch_alter_table('article_tags', schema=None) as batch_op:
        batch_op.create_index('ix_article_tags_article', ['article_id'], unique=False)
        batch_op.create_index('ix_article_tags_tag_status_published', ['tag_key', 'status', 'published', 'article_id'], unique=False)

    op.create_table('partner_usage',
    sa.Column('partner_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('feed', sa.String(length=300), nullable=False),
    sa.Column('requests', sa.Integer(), nullable=False),
    sa.Column('not_modified', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('partner_id', 'day', 'feed')
    )
    op.create_table('slug_redirects',
    sa.Column('old_slug', sa.String(length=80), nullable=False),
    sa.Column('article_id', sa.String(length=128), nullable=False),
    sa.ForeignKeyConstraint(['article_id'], ['articles.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('old_slug')
    )


def downgrade():
    op.drop_table('slug_redirects')
    op.drop_table('partner_usage')
    with op.batch_alter_table('article_tags', schema=None) as batch_op:
        batch_op.drop_index('ix_article_tags_tag_status_published')
        batch_op.drop_index('ix_article_tags_article')

    op.drop_table('article_tags')
    with op.batch_alter_table('article_authors', schema=None) as batch_op:
        batch_op.drop_index('ix_article_authors_author_status_published')
        batch_op.drop_index('ix_article_authors_article')

    op.drop_table('article_authors')
    with op.batch_alter_table('websub_outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_websub_outbox_pending')

    op.drop_table('websub_outbox')
    op.drop_table('scope_state')
    op.drop_table('partners')
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.drop_index('ix_articles_withdrawn_at')
        batch_op.drop_index('ix_articles_status_published')
        batch_op.drop_index('ix_articles_section_status_published')

    op.drop_table('articles')
