"""Embeds for partner sites: the article card /embed/<slug>, the headline widget /embed/latest, and /oembed.

The embed pages are the only pages other sites may frame (see security_headers). Each is one small
self-contained document: inline CSS allowed by its hash, images from our origins, no script at all.
"""
from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, make_response, redirect, render_template, request, url_for
from markupsafe import Markup

from feedsvc import store
from feedsvc.ingest.records import article_from_json
from feedsvc.ingest.urls import csp_source
from feedsvc.render import oembed, pages, skips
from feedsvc.render.feeds import Scope, feed_url
from feedsvc.render.links import absolute, resolved
from feedsvc.web import db, http, surrogate
from feedsvc.web.documents import HTML_TYPE
from feedsvc.web.errors import json_error

bp = Blueprint("embed", __name__)

LATEST_DEFAULT = 5
LATEST_MAX = 20
SHORT_DATE_PATTERN = "d MMMM, h:mm B"  # the widget's: 23 जुलाई, 3:30 दोपहर
SHORT_DATE_PATTERN_OTHER_YEAR = "d MMMM y, h:mm B"  # 15 अक्टूबर 2024, 9:00 सुबह: a date of another year says so
WIDGET_WIDTH = 360


@dataclass(frozen=True)
class WidgetLayout:
    """The headline widget's fixed heights in CSS px: embed.css draws them, the snippet's iframe adds them up."""
    head: int = 63      # the heading: at most two 22px lines, 9px padding above and below, a 1px rule
    item: int = 78      # a headline's two 21px lines and its date's 19px line, 8px padding each side, a 1px rule
    source: int = 35    # the "more news" link: a 19px line, 6px padding above and 10px below
    frame: int = 5      # the frame's 4px top border and 1px bottom border

    def height(self, items: int) -> int:
        """The frame height that shows `items` headlines whole, with the longest heading."""
        return self.frame + self.head + self.item * items + self.source


WIDGET = WidgetLayout()
MISSING_MAX_AGE = 60  # 404/410 embeds: short, so a republished article shows up soon
UNRENDERABLE_RETRY_SECONDS = 300  # a record that cannot be shown waits for an editor's fix


@lru_cache(maxsize=1)
def embed_css() -> tuple[Markup, str]:
    """The embed stylesheet and its CSP source expression ('sha256-…' of exactly what goes in <style>).

    Rendered as a template so that it takes the site's font faces from the one partial the pages use.
    """
    css = current_app.jinja_env.get_template("embed/embed.css").render(layout=WIDGET)
    digest = base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode("ascii")
    return Markup(css), f"'sha256-{digest}'"


def content_security_policy(image_urls=()) -> str:
    """No script, no plugins, no forms; our stylesheet by hash; images from our site and the images shown.

    Hosts go in as CSP host-sources (IDNA A-labels); one that cannot be one is left out, never
    passed on to break or extend the header.
    """
    hosts = [csp_source(u) for u in [current_app.config["SITE_URL"], *image_urls]]
    sources = dict.fromkeys(["'self'"] + [host for host in hosts if host])
    return "; ".join([
        "default-src 'none'",
        f"style-src {embed_css()[1]}",
        "font-src 'self'",  # the site's Devanagari face, /static/fonts (templates/fonts.css)
        f"img-src {' '.join(sources)}",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors *",
    ])


def hindi_datetime(moment: datetime, pattern: str = pages.DATE_PATTERN) -> str:
    """'23 जुलाई 2025, 3:30 दोपहर IST', in the publication's zone (the article pages' own formatting)."""
    return pages.hindi_datetime(moment, current_app.config["TIMEZONE"], pattern)


def widget_date(moment: datetime, now: datetime) -> str:
    """The widget's short date: without the year when it is this year (in the publication's zone), else with it."""
    zone = ZoneInfo(current_app.config["TIMEZONE"])
    same_year = moment.astimezone(zone).year == now.astimezone(zone).year
    return hindi_datetime(moment, SHORT_DATE_PATTERN if same_year else SHORT_DATE_PATTERN_OTHER_YEAR)


def _page(template: str, status: int = 200, image_urls=(), **context):
    css, _ = embed_css()
    site_url = current_app.config["SITE_URL"]
    html = render_template(template, css=css, site_name=current_app.config["SITE_NAME"],
                           home_url=site_url + "/", **context)
    if status == 200:
        response = _conditional(html.encode("utf-8"), HTML_TYPE)
    else:
        response = make_response(html, status)
        response.headers["Cache-Control"] = f"public, max-age={MISSING_MAX_AGE}"
    response.headers["Content-Security-Policy"] = content_security_policy(image_urls)
    response.headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
    return response


def _conditional(body: bytes, content_type: str):
    """200 or 304 through http.conditional_response, like every document; the ETag a hash of the body.

    Why the body is built before the 304 is decided (unlike feeds and pages): an embed also shows
    what no change counter tracks (oEmbed's maxwidth/maxheight, the embed stylesheet, settings shown
    in the card), so only a hash of its bytes cannot miss a change. Embeds are small and cheap to build.
    """
    validator = hashlib.blake2b(body, digest_size=12).hexdigest()
    return http.conditional_response(validator=validator, last_modified=None, content_type=content_type,
                                     load_bodies=lambda: {"identity": body},
                                     caching=http.Caching(current_app.config["CACHE_MAX_AGE"]))


def _message(text: str, status: int):
    return _page("embed/message.html", status, message=text)


@bp.get("/embed/<slug>")
def card(slug: str):
    row, redirected = store.article_by_slug(db.connection(), slug)
    if row is None:
        return _message("यह ख़बर नहीं मिली।", 404)
    surrogate.name_article(row.id)
    if redirected:
        return redirect(url_for(".card", slug=row.slug), 301)
    if row.status != store.LIVE:
        return _message("यह ख़बर हटा ली गई है।", 410)
    try:
        with skips.whole_article("embed_card", row.id, row.version):
            article = resolved(article_from_json(row.article), current_app.config["SITE_URL"])
            images = [article.image["url"]] if article.image else []
            return _page("embed/card.html", image_urls=images, article=article,
                         published_text=hindi_datetime(article.published))
    except skips.Unrenderable:
        response = _message("यह ख़बर अभी दिखाई नहीं जा सकती; कृपया थोड़ी देर बाद फिर देखें।", 503)
        response.headers["Retry-After"] = str(UNRENDERABLE_RETRY_SECONDS)
        response.headers["Cache-Control"] = "no-store"
        return response


def _latest_limit() -> int | None:
    raw = request.args.get("limit", "")
    if raw == "":
        return LATEST_DEFAULT
    if not raw.isdigit() or not 1 <= int(raw) <= LATEST_MAX:
        return None
    return int(raw)


def latest_heading(section_name: str | None) -> str:
    site_name = current_app.config["SITE_NAME"]
    return f"{site_name}: {section_name} की ताज़ा ख़बरें" if section_name else f"{site_name}: ताज़ा ख़बरें"


@bp.get("/embed/latest")
def latest():
    limit = _latest_limit()
    if limit is None:
        return _message(f"limit 1 से {LATEST_MAX} के बीच की संख्या होनी चाहिए।", 400)
    section = request.args.get("section", "").strip()
    scope = f"section:{section}" if section else "site"
    conn = db.connection()
    state = store.scope_state_of(conn, scope) if section else None
    if section and state is None:
        return _message("यह खंड नहीं मिला।", 404)
    now = datetime.now(timezone.utc)
    items = skips.each_rendered("embed_latest", store.newest(conn, scope, limit), lambda a: {
        "article": resolved(a, current_app.config["SITE_URL"]), "published_text": widget_date(a.published, now)})
    return _page("embed/latest.html", heading=latest_heading(state.name if state else None), items=items)


@bp.app_template_global("widget_snippet")
def widget_snippet(section_key: str | None = None, section_name: str | None = None,
                   limit: int = LATEST_DEFAULT) -> str:
    """The copy-paste HTML for partners: the sandboxed widget iframe plus a blockquote-and-link fallback.

    A plain string, so a template shows it as text: `<pre><code>{{ widget_snippet() }}</code></pre>`.
    """
    site_url = current_app.config["SITE_URL"]
    query: dict[str, str | int] = {"section": section_key} if section_key else {}
    if limit != LATEST_DEFAULT:
        query["limit"] = limit
    src = f"{site_url}/embed/latest" + (f"?{urlencode(query)}" if query else "")
    scope = Scope("section", section_key) if section_key else Scope("site")
    return render_template("embed/snippet.html", src=src, width=WIDGET_WIDTH, height=WIDGET.height(limit),
                           heading=latest_heading(section_name), home_url=site_url + "/",
                           feed_url=feed_url(scope, "rss", site_url)).strip() + "\n"


@bp.app_template_global("oembed_discovery")
def oembed_discovery(article_url: str, title: str | None = None) -> Markup:
    """In a page template's <head>: {{ oembed_discovery(article.url) }}."""
    return oembed.discovery_links(article_url, current_app.config["SITE_URL"], title)


# ---- /oembed ------------------------------------------------------------------------------------

@lru_cache(maxsize=8)
def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image  # here: Pillow is imported where an image is read (feedsvc/ingest/images.py says why)

    with Image.open(path) as image:  # reads the header only
        return image.size


def site_logo() -> dict | None:
    """The site's logo as an oEmbed thumbnail candidate {url, width, height}; None when we cannot know its size.

    Its size is read from the file when SITE_LOGO is one of our static files; a logo kept elsewhere
    has no size we know, and the spec gives a thumbnail only with its size.
    """
    logo, site_url = current_app.config["SITE_LOGO"], current_app.config["SITE_URL"]
    static_prefix = f"{current_app.static_url_path}/"
    if not (logo.startswith(static_prefix) and current_app.static_folder):
        return None
    path = Path(current_app.static_folder, logo[len(static_prefix):])
    try:
        width, height = _image_size(path)
    except OSError as exc:
        current_app.logger.warning("SITE_LOGO %s: cannot read its size (%s); oEmbed gives no logo thumbnail",
                                   logo, exc)
        return None
    return {"url": absolute(logo, site_url), "width": width, "height": height}


def _oembed_error(exc: oembed.OEmbedError):
    return json_error(exc.status, exc.message, headers={"Cache-Control": f"public, max-age={MISSING_MAX_AGE}",
                                                        "Access-Control-Allow-Origin": "*"})


def _article_row_for(url: str):
    slug = oembed.slug_from_url(url, current_app.config["SITE_URL"])
    if slug is None:
        raise oembed.OEmbedError(404, "not an article URL of this site: expected "
                                      f"{current_app.config['SITE_URL']}/articles/<slug> or /amp/<slug>")
    row, _redirected = store.article_by_slug(db.connection(), slug)
    if row is not None:
        surrogate.name_article(row.id)
    if row is None or row.status != store.LIVE:
        raise oembed.OEmbedError(404, f"no live article at {url}")
    return row


def _oembed_body(row, fmt: str, maxwidth: int | None, maxheight: int | None) -> bytes:
    """The oEmbed answer for a stored article; one that cannot be rendered has no embed to offer (404)."""
    site_url = current_app.config["SITE_URL"]
    try:
        with skips.whole_article("oembed", row.id, row.version):
            article = article_from_json(row.article)
            data = oembed.response_for(article, embed_url=f"{site_url}/embed/{article.slug}",
                                       site_name=current_app.config["SITE_NAME"], site_url=site_url,
                                       cache_age=current_app.config["OEMBED_CACHE_AGE"],
                                       maxwidth=maxwidth, maxheight=maxheight, logo=site_logo())
            return oembed.to_xml(data) if fmt == "xml" else oembed.to_json(data).encode("utf-8")
    except skips.Unrenderable:
        raise oembed.OEmbedError(404, f"the article at /articles/{row.slug} cannot be embedded at present") from None


@bp.get(oembed.ENDPOINT)
def oembed_endpoint():
    try:
        fmt = request.args.get("format", "json")
        if fmt not in oembed.FORMATS:
            raise oembed.OEmbedError(501, f"format {fmt!r} is not supported; use json or xml")
        url = request.args.get("url", "")
        if not url:
            raise oembed.OEmbedError(400, "the url parameter is required")
        maxwidth = oembed.parse_dimension(request.args.get("maxwidth"), "maxwidth")
        maxheight = oembed.parse_dimension(request.args.get("maxheight"), "maxheight")
        row = _article_row_for(url)
        body = _oembed_body(row, fmt, maxwidth, maxheight)
    except oembed.OEmbedError as exc:
        return _oembed_error(exc)
    response = _conditional(body, oembed.CONTENT_TYPES[fmt])
    # Public data; lets a consumer's page script ask for it too.
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response
