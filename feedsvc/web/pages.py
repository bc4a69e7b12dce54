"""Reader-facing pages: /articles/<slug>, /amp/<slug>, and the listings /, /section/<key>, /tag/<key>, /author/<key>.

Views decide what a URL names here (301 from an old slug, 404 for an unknown slug, a draft or an
unknown key, 410 for an article withdrawn after it was public) and hand the rest to the feeds' `serve`: the ETag comes
from the store's change counters before anything is rendered (an article page: the article's
version and its section's counter, which moves whenever a related article changes; a listing: its
scope's counter), so a 304 costs two small queries and a page is rendered once per change.
feedsvc/render/pages.py builds what the pages show; the templates are in templates/pages/.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from markupsafe import Markup

from feedsvc import store
from feedsvc.ingest.records import Article, article_from_json
from feedsvc.ingest.urls import uri
from feedsvc.render import feeds, pages
from feedsvc.render.feeds import urls
from feedsvc.render.jsonld import script_json
from feedsvc.render.skips import Unrenderable, whole_article
from feedsvc.web import db, faults, surrogate
from feedsvc.web.documents import HTML_TYPE, Document, site

bp = Blueprint("pages", __name__)
# Every URL a page writes is a URI (RFC 3987 §3.1): `{{ article.url|uri }}`.
bp.add_app_template_filter(uri, "uri")

MISSING_MAX_AGE = 60  # 404/410 pages: short, so a republished article shows up soon
CURSOR_MAX = 200
_SECTION_NEWEST = "feedsvc.section_newest"
SECTIONS_KEPT = 256   # sections whose newest articles are held (a few articles each, at one state)


class PageMissing(Exception):
    """No page to show: 404 (unknown, draft), 410 (withdrawn) or 400 (a bad query), with a Hindi message."""

    def __init__(self, status: int, heading: str, message: str):
        super().__init__(heading)
        self.status, self.heading, self.message = status, heading, message


class PageMoved(Exception):
    """The article now lives under another slug."""

    def __init__(self, location: str):
        super().__init__(location)
        self.location = location


NOT_FOUND = (404, "यह पन्ना नहीं मिला", "आप जो ख़बर या पन्ना ढूँढ रहे हैं, वह यहाँ नहीं है। पता जाँच लें या "
                                         "मुखपृष्ठ से ताज़ा ख़बरें पढ़ें।")
UNAVAILABLE = ("यह ख़बर अभी उपलब्ध नहीं है", "इस ख़बर को दिखाने में अभी दिक़्क़त आ रही है। कृपया थोड़ी देर बाद "
                                           "फिर कोशिश करें या मुखपृष्ठ से ताज़ा ख़बरें पढ़ें।")
UNRENDERABLE_RETRY_SECONDS = 300  # a record that cannot be shown waits for an editor, not for a restart
GONE = (410, "यह ख़बर हटा ली गई है", "यह ख़बर प्रकाशक ने वापस ले ली है और अब उपलब्ध नहीं है।")


@bp.errorhandler(PageMissing)
def _missing(exc: PageMissing):
    html = render_template("pages/message.html", heading=exc.heading, message=exc.message, status=exc.status)
    response = current_app.response_class(html, status=exc.status, content_type=HTML_TYPE)
    response.headers["Cache-Control"] = f"public, max-age={MISSING_MAX_AGE}"
    return response


@bp.errorhandler(Unrenderable)
def _unrenderable(exc: Unrenderable):
    # The stored record cannot be shown (already logged and counted); an editor's fix brings it back.
    html = render_template("pages/message.html", heading=UNAVAILABLE[0], message=UNAVAILABLE[1], status=503)
    response = current_app.response_class(html, status=503, content_type=HTML_TYPE)
    response.headers["Retry-After"] = str(UNRENDERABLE_RETRY_SECONDS)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(PageMoved)
def _moved(exc: PageMoved):
    response = redirect(exc.location, 301)
    response.headers["Cache-Control"] = f"public, max-age={current_app.config['CACHE_MAX_AGE']}"
    return response


def live_article(slug: str, endpoint: str, found=None):
    """The stored row of the live article a slug names; raises PageMissing or PageMoved otherwise.
    `found`: (row or None, redirected) of that slug, when the caller read it already."""
    row, redirected = found or store.article_by_slug(db.connection(), slug)  # never a draft: as if unknown
    if row is None:
        raise PageMissing(*NOT_FOUND)
    # The canonical page lists related articles of its section: it changes with the section too.
    surrogate.name_article(row.id, *([f"section:{row.section_key}"] if endpoint == ".article" else []))
    if row.status == "withdrawn":
        raise PageMissing(*GONE)
    if redirected:
        raise PageMoved(url_for(endpoint, slug=row.slug))
    return row


class LiveArticleDocument(Document):
    """A page of one live article, by its slug; `page` names it in the cache, `endpoint` in redirects.

    `found` and `sections` are what a caller that renders many pages read for all of them at once
    (the full static mirror: `export_pages`): the (row or None, redirected) of the slug, and the
    state of every section of those rows (a section missing from it has none)."""
    page = ""
    endpoint = ""

    def __init__(self, slug: str, found=None, sections: dict[str, store.ScopeState] | None = None):
        self.slug = slug
        self.cache_key = ("page", self.page, slug)
        self.found, self.sections = found, sections

    def find(self):
        self.row = live_article(self.slug, self.endpoint, self.found)
        return self.row

    def section_state(self, section_key: str) -> store.ScopeState | None:
        scope = f"section:{section_key}"
        if self.sections is not None:
            return self.sections.get(scope)
        return store.scope_state_of(db.connection(), scope)

    def translations_state(self) -> tuple[tuple, datetime | None]:
        """(stamp, newest change) of the articles the record lists as translations: the page links
        those live that list it back (render/translations.py), so it changes whenever one of them does."""
        self.translation_ids = translation_ids(self.row.article)
        states = store.article_states(db.connection(), self.translation_ids)
        for article_id, _version, _modified in states:
            surrogate.name_article(article_id)
        return tuple((article_id, version) for article_id, version, _ in states), max(
            (modified for *_, modified in states), default=None)

    def translations(self) -> list[Article]:
        return store.live_articles(db.connection(), self.translation_ids)


def translation_ids(stored_article: str) -> list[str]:
    """The `translations` of a stored article (records.encode_article); most have none, and are not parsed."""
    # Only the key itself is '"translations":' in the stored JSON: a quote inside a string value is escaped.
    if '"translations":' not in stored_article:
        return []
    return article_from_json(stored_article).translations


class ArticlePage(LiveArticleDocument):
    """The canonical page: changes with the article and with its section (its related articles)."""
    page, endpoint = "article", ".article"

    def load_state(self):
        row = self.find()
        self.section = section = self.section_state(row.section_key)
        translated, translation_changed = self.translations_state()
        changed = max(filter(None, (row.modified_at, section.modified_at if section else None, translation_changed)))
        return ((f"{row.version}.{section.version if section else 0}", translated), changed), changed

    def build(self) -> bytes:
        with whole_article("article_page", self.row.id, self.row.version):
            the_article = article_from_json(self.row.article)
            related = pages.related_among(section_newest(self.row.section_key, self.section), the_article)
            page = pages.article_page(the_article, site(), related, self.translations())
            return render_template("pages/article.html", page=page, article=page.article,
                                   lang=page.article.language, feed_scopes=page.feed_scopes,
                                   json_ld=Markup(script_json(page.json_ld))).encode("utf-8")


def section_newest(section_key: str, state: store.ScopeState | None) -> list[Article]:
    """The section's newest articles, read once per state of its counter: every canonical page of the
    section lists them, and the counter moves whenever one of them changes (which changes the pages'
    ETags too). In a full export, which renders every page of every section, this read was a fifth of
    a canonical page's time (docs/mirror-compression.md)."""
    if state is None:
        return pages.section_newest(db.connection(), section_key)
    held: OrderedDict = current_app.extensions.setdefault(_SECTION_NEWEST, OrderedDict())
    stamp = (state.version, state.modified_at)
    found = held.get(state.scope)
    if found is not None and found[0] == stamp:
        return found[1]
    newest = pages.section_newest(db.connection(), section_key)
    held[state.scope] = (stamp, newest)   # only a section's latest state is kept
    held.move_to_end(state.scope)
    while len(held) > SECTIONS_KEPT:
        held.popitem(last=False)
    return newest


class AmpPage(LiveArticleDocument):
    """The AMP page: changes with the article only."""
    page, endpoint = "amp", ".amp_article"

    def load_state(self):
        row = self.find()
        translated, translation_changed = self.translations_state()
        changed = max(filter(None, (row.modified_at, translation_changed)))
        return ((row.version, translated), changed), changed

    def build(self) -> bytes:
        with whole_article("amp_page", self.row.id, self.row.version):
            return pages.amp_page(article_from_json(self.row.article), site(), current_app.config["FRAME_HOSTS"],
                                  self.translations()).encode("utf-8")


# ---- the full static mirror ---------------------------------------------------------------------

# The page documents by the start of their URL (the routes below).
PAGE_DOCUMENTS: dict[str, type[LiveArticleDocument]] = {"/articles/": ArticlePage, "/amp/": AmpPage}


@dataclass(frozen=True)
class Exported:
    """What the app answers a GET of a page with: its status and, for a 200, body and Last-Modified."""
    status: int
    body: bytes = b""
    last_modified: datetime | None = None


def export_pages(pages: list[tuple[str, str]]) -> list[Exported | None]:
    """What the app would answer for each (URL, article id) of pages, without a request per page.

    The full static mirror renders every page of a million articles (feedsvc/publish/mirror_full.py):
    there a request through the test client and Flask's handling around the view were a third of a
    page's time, and finding its article and section one by one a fifth (docs/mirror-compression.md).
    So the articles and their sections' states are read in two queries, and each page is the same
    Document the view serves, given what was read. Run inside an app context. None for a URL that is
    not a page of its article's current slug (the caller asks the app: it may answer a redirect)."""
    conn = db.connection()
    try:
        rows = store.public_article_rows(conn, {article_id for _, article_id in pages})
        sections = store.scope_states_of(conn, {f"section:{row.section_key}" for row in rows.values()})
    except faults.UNAVAILABLE:
        return [Exported(503)] * len(pages)   # the app's 503: the mirror keeps its last copies
    return [_export_page(url, rows.get(article_id), sections) for url, article_id in pages]


def _export_page(url: str, row, sections: dict[str, store.ScopeState]) -> Exported | None:
    prefix, _, slug = url.rpartition("/")
    document_class = PAGE_DOCUMENTS.get(prefix + "/")
    if document_class is None or (row is not None and row.slug != slug):
        return None
    document = document_class(slug, (row, False), sections)
    try:
        _stamp, last_modified = document.load_state()
        return Exported(200, document.build(), last_modified)
    except PageMissing as missing:
        return Exported(missing.status)
    except Unrenderable:
        return Exported(503)
    except faults.UNAVAILABLE:
        return Exported(503)


@bp.get("/articles/<slug>")
def article(slug: str):
    return ArticlePage(slug).response()


@bp.get("/amp/<slug>")
def amp_article(slug: str):
    return AmpPage(slug).response()


# ---- listings -----------------------------------------------------------------------------------

def _after() -> store.Cursor | None:
    raw = request.args.get("after")
    if raw is None:
        return None
    try:
        if len(raw) > CURSOR_MAX:
            raise ValueError(raw)
        return store.Cursor.parse(raw)
    except ValueError:
        raise PageMissing(400, "पन्ने का पता ग़लत है", "‘पुरानी ख़बरें’ वाले लिंक से आगे के पन्ने खोलें।") from None


class Listing(Document):
    """One page of the newest articles of the site or of a section, tag or author."""

    def __init__(self, kind: str, key: str, after: store.Cursor | None):
        self.kind, self.key, self.after = kind, key, after
        self.cache_key = ("page", "listing", kind, key, after.token() if after else None)

    def load_state(self):
        try:
            self.scope, state = feeds.resolve(db.connection(), self.kind, self.key)
        except feeds.ScopeMoved:
            raise   # a renamed key: errors.py answers 301, as for its feeds
        except feeds.FeedNotFound:
            raise PageMissing(*NOT_FOUND) from None
        return (state.version, state.modified_at), state.modified_at if state.version else None

    def build(self) -> bytes:
        found = store.newest(db.connection(), self.scope.id, pages.LISTING_LIMIT + 1, self.after)
        page = pages.listing_page(self.scope, found, site())
        return render_template("pages/listing.html", page=page, feed_scopes=page.feed_scopes,
                               first_page=self.after is None).encode("utf-8")


def listing(kind: str, key: str):
    return Listing(kind, key, _after()).response()


urls.add_routes(bp, urls.LISTING_ROUTES, listing)
