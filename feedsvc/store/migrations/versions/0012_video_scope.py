"""articles.has_video: the video scope (/feeds/video/...), with its index; stored articles backfilled

The flag is what feedsvc/ingest/videos.has_video says of the stored article (a player embed, a
player frame or a <video> file in its body). Only rows whose JSON can hold one (a YouTube or Vimeo
address, or a <video>) are read back, so a big store is not decoded row by row. The scope's change
counter ("video") is created when a live article carries a video, so its feeds answer at once.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 07:30:00
"""
import json

import sqlalchemy as sa
from alembic import op

from feedsvc.ingest.videos import has_video

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

BATCH = 1000


def upgrade():
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('has_video', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_index('ix_articles_video_status_published', ['has_video', 'status', 'published', 'id'],
                              unique=False)
    conn = op.get_bind()
    articles = sa.table('articles', sa.column('id', sa.String), sa.column('article', sa.Text),
                        sa.column('has_video', sa.Boolean), sa.column('status', sa.String),
                        sa.column('published', sa.DateTime), sa.column('modified_at', sa.DateTime))
    maybe = sa.or_(*(articles.c.article.like(f"%{word}%") for word in ("youtu", "vimeo", "<video")))
    last_id = ""
    while True:   # pages by id, so a big store is never held in memory at once
        rows = conn.execute(sa.select(articles.c.id, articles.c.article).where(maybe, articles.c.id > last_id)
                            .order_by(articles.c.id).limit(BATCH)).all()
        if not rows:
            break
        last_id = rows[-1].id
        found = [row.id for row in rows if _has_video(row.article)]
        if found:
            conn.execute(sa.update(articles).where(articles.c.id.in_(found)).values(has_video=True))
    _count_the_scope(conn, articles)


def _has_video(article_json: str) -> bool:
    stored = json.loads(article_json)
    return has_video(stored.get("embeds") or [], stored.get("body_html") or "")


def _count_the_scope(conn, articles) -> None:
    last = conn.execute(sa.select(sa.func.max(articles.c.modified_at))
                        .where(articles.c.has_video.is_(True), articles.c.status == 'published')).scalar()
    if last is None:
        return
    scope_state = sa.table('scope_state', sa.column('scope', sa.String), sa.column('name', sa.String),
                           sa.column('version', sa.Integer), sa.column('modified_at', sa.DateTime))
    if conn.execute(sa.select(scope_state.c.scope).where(scope_state.c.scope == 'video')).first() is None:
        conn.execute(sa.insert(scope_state).values(scope='video', name='', version=1, modified_at=last))


def downgrade():
    op.execute("DELETE FROM scope_state WHERE scope = 'video'")
    # ALTER TABLE ... DROP COLUMN in place (SQLite 3.35+), not batch mode's copy of the table: dropping the
    # old `articles` would cascade (foreign_keys=ON) and empty article_tags and article_authors.
    op.drop_index('ix_articles_video_status_published', table_name='articles')
    op.drop_column('articles', 'has_video')
