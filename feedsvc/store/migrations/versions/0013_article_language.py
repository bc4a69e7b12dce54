"""articles.language (and the tag and author rows'): single-language feeds and the OPML's languages by index

The language was only inside each article's stored JSON: `?lang=` with a tag no article uses read
every article of the scope (14 s of CPU at a million articles for one request). The column is
filled from that JSON by the database itself (SQLite's json_extract, PostgreSQL's ->>), a batch of
ids at a time, each batch committed on its own: on SQLite an UPDATE rewrites the whole row (about
12 KB), and a million of them in one transaction would hold the store's size again in the WAL until
the commit. A run stopped half way is taken up again where it stopped (rows still NULL). The
indexes are built once the columns are full, which costs less than keeping them during the backfill.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 17:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

BATCH = 2000
LONGEST = 35   # schema.articles.c.language; a longer tag (none the record schema allows now) is left NULL

INDEXES = {
    'articles': [('ix_articles_language_status_published', ['language', 'status', 'published', 'id']),
                 ('ix_articles_section_language_status_published',
                  ['section_key', 'language', 'status', 'published', 'id']),
                 ('ix_articles_video_language_status_published',
                  ['has_video', 'language', 'status', 'published', 'id'])],
    'article_tags': [('ix_article_tags_tag_language_status_published',
                      ['tag_key', 'language', 'status', 'published', 'article_id'])],
    'article_authors': [('ix_article_authors_author_language_status_published',
                         ['author_key', 'language', 'status', 'published', 'article_id'])],
}


def upgrade():
    conn = op.get_bind()
    have = {table: {c['name'] for c in sa.inspect(conn).get_columns(table)} for table in INDEXES}
    for table in INDEXES:
        if 'language' not in have[table]:   # already there when an earlier run stopped in the backfill
            with op.batch_alter_table(table, schema=None) as batch_op:
                batch_op.add_column(sa.Column('language', sa.String(length=LONGEST), nullable=True))
    context = op.get_context()
    if getattr(context, "_in_external_transaction", False):
        # Run on a connection its caller holds a transaction on (Alembic may not commit that): all at once.
        _backfill(conn)
    else:
        with context.autocommit_block():
            _backfill(op.get_bind())
    for table, indexes in INDEXES.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, columns in indexes:
                batch_op.create_index(name, columns, unique=False)


def _backfill(conn) -> None:
    articles = sa.table('articles', sa.column('id', sa.String), sa.column('article', sa.Text),
                        sa.column('language', sa.String))
    stored = sa.literal_column("(CAST(articles.article AS JSON) ->> 'language')" if conn.dialect.name == 'postgresql'
                               else "json_extract(articles.article, '$.language')")
    language = sa.case((sa.func.length(stored) <= LONGEST, stored))
    links = [sa.table(name, sa.column('article_id', sa.String), sa.column('language', sa.String))
             for name in ('article_tags', 'article_authors')]
    last_id = ''
    while True:   # pages by id, so neither a transaction nor the memory holds a big store at once
        upto = conn.execute(sa.select(articles.c.id).where(articles.c.id > last_id).order_by(articles.c.id)
                            .offset(BATCH - 1).limit(1)).scalar()
        in_batch = [articles.c.id > last_id] + ([articles.c.id <= upto] if upto is not None else [])
        # Each statement commits on its own (autocommit): a batch is a few thousand rows of WAL.
        conn.execute(sa.update(articles).where(*in_batch, articles.c.language.is_(None)).values(language=language))
        for link in links:
            linked = [link.c.article_id > last_id] + ([link.c.article_id <= upto] if upto is not None else [])
            conn.execute(sa.update(link).where(*linked, link.c.language.is_(None)).values(
                language=sa.select(articles.c.language).where(articles.c.id == link.c.article_id)
                .scalar_subquery()))
        if upto is None:
            break
        last_id = upto


def downgrade():
    # ALTER TABLE ... DROP COLUMN in place (SQLite 3.35+), not batch mode's copy of the table: dropping
    # the old `articles` would cascade (foreign_keys=ON) and empty article_tags and article_authors.
    for table, indexes in INDEXES.items():
        for name, _columns in reversed(indexes):
            op.drop_index(name, table_name=table)
        op.drop_column(table, 'language')
