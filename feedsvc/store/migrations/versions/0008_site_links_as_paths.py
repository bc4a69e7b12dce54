"""Stored articles keep the site's own links as site paths, not under the site URL of their import

Articles written before this hold their default URL, site-path images and author pages, and the
site links of their body under the SITE_URL of the moment they were written; renderers now put site
paths under the SITE_URL of the moment they render (feedsvc/render/links.py). A stored article
without a record `url` tells the site URL it was written under: its URL is <site>/articles/<slug>.
That prefix is taken off every link of the article that starts with it. An article with its own
`url` takes the prefix most articles of the store were written under.

The rewrite happens once, here, rather than at every read: reading would need the old site URL,
which the store does not record, and a check of every link of every article rendered.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08 05:30:00
"""
import html
import json
from collections import Counter

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

_URL_ATTRIBUTES = ("href", "src", "poster", "cite")
_BATCH = 500


def _written_under(article: dict, record: dict) -> str | None:
    """The site URL an article was written under, when its URL is the default one."""
    tail = f"/articles/{article['slug']}"
    url = article.get("url") or ""
    if record.get("url") or not url.endswith(tail) or not url.startswith(("http://", "https://")):
        return None
    return url[:-len(tail)]


def _as_path(link, site: str):
    return link[len(site):] if isinstance(link, str) and link.startswith(site + "/") else link


def as_site_paths(article: dict, site: str) -> dict:
    """`article` (the stored JSON) with every link under `site` as a site path."""
    article = dict(article, url=_as_path(article["url"], site))
    if article.get("image"):
        article["image"] = dict(article["image"], url=_as_path(article["image"].get("url"), site))
    article["authors"] = [[key, name, _as_path(url, site)] for key, name, url in article["authors"]]
    body = article["body_html"]
    for attribute in _URL_ATTRIBUTES:
        body = body.replace(f' {attribute}="{html.escape(site)}/', f' {attribute}="/')
    article["body_html"] = body
    return article


_articles = sa.table("articles", sa.column("id", sa.String), sa.column("article", sa.Text),
                     sa.column("record", sa.Text))


def _each_batch(conn):
    """Every stored article, a batch at a time in id order (a store may hold millions)."""
    last = None
    while True:
        query = sa.select(_articles.c.id, _articles.c.article, _articles.c.record).order_by(_articles.c.id)
        batch = conn.execute(query.limit(_BATCH) if last is None
                             else query.where(_articles.c.id > last).limit(_BATCH)).fetchall()
        if not batch:
            return
        yield batch
        last = batch[-1].id


def upgrade():
    conn = op.get_bind()
    sites = Counter(site for batch in _each_batch(conn) for row in batch
                    if (site := _written_under(json.loads(row.article), json.loads(row.record))))
    if not sites:
        return
    usual = sites.most_common(1)[0][0]
    update = _articles.update().where(_articles.c.id == sa.bindparam("key")).values(article=sa.bindparam("text"))
    for batch in _each_batch(conn):
        changed = []
        for row in batch:
            article = json.loads(row.article)
            site = _written_under(article, json.loads(row.record)) or usual
            text = json.dumps(as_site_paths(article, site), ensure_ascii=False, separators=(",", ":"))
            if text != row.article:
                changed.append({"key": row.id, "text": text})
        if changed:
            conn.execute(update, changed)


def downgrade():
    pass  # irreversible: which site URL to put back is not recorded; older renderers show site paths as paths
