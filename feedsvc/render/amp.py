"""Safe HTML -> AMP HTML: the article body converted with lxml, and the AMP document around it.

The converter works from an allow-list, so it never passes through a tag or attribute AMP forbids,
even when handed HTML that skipped the sanitiser: known-harmless tags are kept with a few
attributes, media and embeds become AMP components, active content (script, style, forms,
object/embed, frames, document-level tags) is removed with everything inside it, and any other tag
is unwrapped so that its text survives. An iframe becomes a component only when the FRAME_HOSTS
policy (feedsvc/ingest/frames.py) allows its source, sandboxed as that policy says; otherwise a link,
as the sanitiser makes it, so a body stored before that rule gets no frame on AMP either.
"""
from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import jinja2
import lxml.html
from lxml.html import HtmlElement
from markupsafe import Markup

from feedsvc.ingest import images
from feedsvc.ingest.frames import DEFAULT_FRAME_HOSTS, FramePolicy, Player, embed_label, frame_policy
from feedsvc.ingest.players import youtube_id, youtube_start, youtube_watch_url
from feedsvc.ingest.sanitize import frame_link_text
from feedsvc.ingest.urls import uri
from feedsvc.render.jsonld import script_json

AMP_RUNTIME_URL = "https://cdn.ampproject.org/v0.js"
# Served by the app; Debian's fonts-noto-core ships this face as a TrueType file.
FONT_URL = "/static/fonts/NotoSansDevanagari-Regular.ttf"
BOLD_FONT_URL = "/static/fonts/NotoSansDevanagari-Bold.ttf"

# Sizes used when the source gives none: AMP needs both to reserve the box before loading.
FALLBACK_IMAGE_SIZE = (1200, 675)
FALLBACK_FRAME_SIZE = (640, 360)
TWEET_SIZE = (375, 472)
INSTAGRAM_SIZE = (400, 400)
AUDIO_HEIGHT = "50"

KEPT_TAGS = {
    "p", "h2", "h3", "h4", "h5", "h6", "a", "strong", "em", "b", "i", "u", "s", "small", "mark",
    "blockquote", "q", "cite", "ul", "ol", "li", "dl", "dt", "dd", "figure", "figcaption",
    "table", "thead", "tbody", "tfoot", "tr", "th", "td", "caption", "br", "hr", "code", "pre",
    "sup", "sub", "abbr", "time",
}
# The page's headline is its only h1.
RENAMED_TAGS = {"h1": "h2"}
REMOVED_WITH_CONTENT = {
    "script", "style", "template", "noscript", "svg", "math", "object", "applet", "param",
    "frame", "frameset", "noframes", "base", "link", "meta", "title", "head", "input", "button",
    "select", "textarea", "option", "optgroup", "datalist", "output", "canvas", "map",
    "area", "dialog", "portal",
}
# Not in that list: embed, source, track, keygen and wbr. libxml2 does not know these HTML5 void
# elements and nests whatever follows them inside, so they are unwrapped like any unknown tag.
GLOBAL_ATTRIBUTES = {"lang", "dir"}
ATTRIBUTES = {
    "a": {"href", "title", "rel"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "th": {"colspan", "rowspan", "scope"},
    "td": {"colspan", "rowspan"},
    "ol": {"start", "reversed"},
    "abbr": {"title"},
    "time": {"datetime"},
}
LINK_SCHEMES = {"http", "https", "mailto", "tel"}
IMAGE_SCHEMES = {"http", "https"}
MEDIA_SCHEMES = {"https"}
REL_TOKENS = {"noopener", "noreferrer", "nofollow", "ugc", "sponsored", "external", "author",
              "license", "tag", "bookmark", "help", "next", "prev"}

_ANY_SPACE_OR_CONTROL = re.compile(r"[\x00-\x20\x7f]+")
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")
_DIMENSION = re.compile(r"\s*(\d{1,5})(?:px)?\s*")
_LANG = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*")
_MIME = re.compile(r"[a-z]+/[a-z0-9.+-]+(\s*;\s*codecs=\"?[a-zA-Z0-9., +-]*\"?)?")
_TWEET_HOSTS = {"twitter.com", "www.twitter.com", "mobile.twitter.com", "x.com", "www.x.com"}
_TWEET_PATH = re.compile(r"^/[A-Za-z0-9_]{1,50}/status(?:es)?/(\d{1,25})(?:/|$)")
_INSTAGRAM_HOSTS = {"instagram.com", "www.instagram.com"}
_INSTAGRAM_PATH = re.compile(r"^/(?:p|reel|tv)/([A-Za-z0-9_-]{5,40})(?:/|$)")


@dataclass(frozen=True)
class AmpBody:
    """AMP markup for the body and the AMP components in it, whose extension scripts the page needs."""
    html: str
    extensions: frozenset[str] = frozenset()


# --- URLs and sizes -------------------------------------------------------------------------------

def _url(value: str | None, schemes: set[str], *, relative_ok: bool = False) -> str | None:
    """The URL if its scheme is allowed; browsers ignore spaces and controls inside a scheme."""
    value = (value or "").strip()
    if not value:
        return None
    match = _SCHEME.match(_ANY_SPACE_OR_CONTROL.sub("", value))
    if match is None:
        return value if relative_ok else None
    scheme = match.group(1).lower()
    try:
        host = urlsplit(value).netloc
    except ValueError:  # a malformed authority such as "https://[::1"
        return None
    if scheme not in schemes or (scheme in ("http", "https") and not host):
        return None
    return value


def _dimension(value: str | None) -> int | None:
    match = _DIMENSION.fullmatch(value or "")
    number = int(match.group(1)) if match else 0
    return number if 0 < number <= 20000 else None


def _size(element: HtmlElement, fallback: tuple[int, int]) -> tuple[str, str]:
    """Width and height from the tag; when one is missing, the other with the fallback's ratio; the
    fallback when both are."""
    width, height = _dimension(element.get("width")), _dimension(element.get("height"))
    if width is None and height is None:
        width, height = fallback
    elif height is None and width is not None:
        height = max(1, round(width * fallback[1] / fallback[0]))
    elif width is None and height is not None:
        width = max(1, round(height * fallback[0] / fallback[1]))
    return str(width), str(height)


def _path_match(url: str, hosts: set[str], path: re.Pattern) -> str | None:
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
    except ValueError:
        return None
    match = path.match(parts.path) if parts.scheme in ("http", "https") and host in hosts else None
    return match.group(1) if match else None


def tweet_id(url: str) -> str | None:
    """The status id of a Twitter/X post URL; None for anything else."""
    return _path_match(url, _TWEET_HOSTS, _TWEET_PATH)


def instagram_shortcode(url: str) -> str | None:
    """The shortcode of an Instagram post, reel or TV URL; None for anything else."""
    return _path_match(url, _INSTAGRAM_HOSTS, _INSTAGRAM_PATH)


# --- element builders shared by the body, the embeds list and the document ------------------------

def _element(tag: str, **attributes: str) -> HtmlElement:
    return lxml.html.Element(tag, {name.replace("_", "-"): value for name, value in attributes.items()})


def _link(url: str, text: str) -> HtmlElement:
    link = _element("a", href=url)
    link.text = text
    return link


def amp_img(src: str, alt: str, width: int | str, height: int | str, srcset: str = "") -> HtmlElement:
    """amp-img with a <noscript><img> inside: without the runtime an amp-img has no box.
    `srcset` offers smaller renditions of the same shape ("url 400w, ..."); AMP picks by layout width."""
    size = {"width": str(width), "height": str(height)}
    if srcset:
        size["srcset"] = srcset
    image = _element("amp-img", src=src, alt=alt, layout="responsive", **size)
    noscript = _element("noscript")
    noscript.append(_element("img", src=src, alt=alt, **size))
    image.append(noscript)
    return image


def _with_placeholder(component: HtmlElement, placeholder: HtmlElement) -> HtmlElement:
    placeholder.set("placeholder", "")
    component.append(placeholder)
    return component


def _link_placeholder(url: str, text: str) -> HtmlElement:
    paragraph = _element("p")
    paragraph.append(_link(url, text))
    return paragraph


def _youtube(url: str, width: str, height: str, title: str) -> HtmlElement:
    """amp-youtube for the video `url` names, starting where the URL says (`data-param-start`)."""
    component = _element("amp-youtube", data_videoid=youtube_id(url) or "", layout="responsive", width=width, height=height)
    start = youtube_start(url)
    if start:
        component.set("data-param-start", str(start))
    watch = youtube_watch_url(url) or url
    return _with_placeholder(component, _link_placeholder(watch, title or embed_label("youtube", watch)))


def _instagram(shortcode: str) -> HtmlElement:
    width, height = map(str, INSTAGRAM_SIZE)
    return _element("amp-instagram", data_shortcode=shortcode, data_captioned="", layout="responsive",
                    width=width, height=height)


def _twitter(status_id: str) -> HtmlElement:
    width, height = map(str, TWEET_SIZE)
    return _element("amp-twitter", data_tweetid=status_id, layout="responsive", width=width, height=height)


def _frame_component(src: str, player: Player, width: str, height: str, title: str) -> HtmlElement:
    """The AMP component for an allowed frame: a YouTube or Instagram player, else a sandboxed amp-iframe."""
    shortcode = instagram_shortcode(src)
    if youtube_id(src):
        return _youtube(src, width, height, title)
    if shortcode:
        post = f"https://www.instagram.com/p/{shortcode}/"
        return _with_placeholder(_instagram(shortcode), _link_placeholder(post, title or post))
    component = _element("amp-iframe", src=src, sandbox=player.sandbox, referrerpolicy=player.referrer_policy,
                         layout="responsive", width=width, height=height, frameborder="0")
    if title:
        component.set("title", title)
    # A placeholder lets AMP show the frame near the top of the page too.
    return _with_placeholder(component, _link_placeholder(src, title or frame_link_text(src)))


# --- the body converter ---------------------------------------------------------------------------

class _Converter:
    """One conversion: walks the fragment in place and records the AMP components it made."""

    def __init__(self, image_sizes: Mapping[str, tuple[int, int]] | None = None,
                 frames: FramePolicy | None = None, image_srcsets: Mapping[str, str] | None = None):
        self.image_sizes = image_sizes or {}
        self.image_srcsets = image_srcsets or {}
        self.frames = frames or frame_policy()
        self.extensions: set[str] = set()

    def walk(self, parent: HtmlElement) -> None:
        for child in list(parent):
            tag = child.tag.lower() if isinstance(child.tag, str) else None
            if tag is None or tag in REMOVED_WITH_CONTENT:
                _remove(child)  # comments and processing instructions too
            elif tag in self.CONVERSIONS:
                self.CONVERSIONS[tag](self, child)
            elif tag in KEPT_TAGS or tag in RENAMED_TAGS:
                child.tag = RENAMED_TAGS.get(tag, tag)
                _clean_attributes(child)
                self.walk(child)
            else:
                # Children first: once unwrapped they sit in `parent`, past this loop's snapshot.
                self.walk(child)
                child.drop_tag()

    def img(self, element: HtmlElement) -> None:
        src = _url(element.get("src"), IMAGE_SCHEMES)
        if src is None:
            _remove(element)
            return
        if src in self.image_sizes:
            width, height = map(str, self.image_sizes[src])
        else:
            width, height = _size(element, FALLBACK_IMAGE_SIZE)
        _replace(element, amp_img(src, element.get("alt", ""), width, height, self.image_srcsets.get(src, "")))

    def iframe(self, element: HtmlElement) -> None:
        src = _url(element.get("src"), IMAGE_SCHEMES)
        if src is None:
            _remove(element)
            return
        title, player = element.get("title", ""), self.frames.player_for(src)
        if player is None:  # a map over plain http, a page not on the list: a link naming its provider
            _replace(element, _link(uri(src), frame_link_text(src, title)))
            return
        component = _frame_component(src, player, *_size(element, FALLBACK_FRAME_SIZE), title)
        if component.tag == "amp-iframe" and element.get("allowfullscreen") is not None:
            component.set("allowfullscreen", "")
        self.extensions.add(component.tag)
        _replace(element, component)

    def media(self, element: HtmlElement) -> None:
        tag = "amp-" + element.tag.lower()
        if tag == "amp-video":
            width, height = _size(element, FALLBACK_FRAME_SIZE)
            component = _element(tag, controls="", layout="responsive", width=width, height=height)
            poster = _url(element.get("poster"), MEDIA_SCHEMES)
            if poster:
                component.set("poster", poster)
        else:
            component = _element(tag, controls="", width="auto", height=AUDIO_HEIGHT)
        src = _url(element.get("src"), MEDIA_SCHEMES)
        if src:
            component.set("src", src)
        for source in element.iter("source"):
            source_src = _url(source.get("src"), MEDIA_SCHEMES)
            if source_src:
                kept = _element("source", src=source_src)
                if _MIME.fullmatch(source.get("type", "").strip()):
                    kept.set("type", source.get("type").strip())
                component.append(kept)
        if src is None and len(component) == 0:
            _remove(element)
            return
        self.extensions.add(tag)
        _replace(element, component)

    def blockquote(self, element: HtmlElement) -> None:
        classes = set(element.get("class", "").split())
        links = [a.get("href", "") for a in element.iter("a")]
        component = None
        if "twitter-tweet" in classes:
            status = next((found for found in map(tweet_id, reversed(links)) if found), None)
            component = _twitter(status) if status else None
        elif "instagram-media" in classes:
            candidates = [element.get("data-instgrm-permalink", ""), *links]
            shortcode = next((found for found in map(instagram_shortcode, candidates) if found), None)
            component = _instagram(shortcode) if shortcode else None
        _clean_attributes(element)
        self.walk(element)
        if component is not None:
            # The post's own text stays inside as the placeholder, as the AMP docs show.
            _replace(element, component)
            _with_placeholder(component, element)
            self.extensions.add(component.tag)

    CONVERSIONS = {"img": img, "iframe": iframe, "video": media, "audio": media, "blockquote": blockquote}


def _remove(element: HtmlElement) -> None:
    """Remove the element and its content but keep the text that follows it."""
    parent = element.getparent()
    if element.tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)


def _replace(old: HtmlElement, new: HtmlElement) -> None:
    new.tail, old.tail = old.tail, None
    old.getparent().replace(old, new)


def _clean_attributes(element: HtmlElement) -> None:
    allowed = GLOBAL_ATTRIBUTES | ATTRIBUTES.get(element.tag, set())
    for name, value in list(element.attrib.items()):
        kept = _attribute_value(name, value) if name in allowed else None
        if kept is None:
            del element.attrib[name]
        else:
            element.set(name, kept)


def _attribute_value(name: str, value: str) -> str | None:
    if name in ("href", "cite"):
        return _url(value, LINK_SCHEMES, relative_ok=True)
    if name in ("colspan", "rowspan", "start"):
        return value.strip() if value.strip().isdigit() else None
    if name == "rel":
        tokens = [token for token in value.lower().split() if token in REL_TOKENS]
        return " ".join(tokens) or None
    if name == "dir":
        return value.strip().lower() if value.strip().lower() in ("ltr", "rtl", "auto") else None
    if name == "lang":
        return value.strip() if _LANG.fullmatch(value.strip()) else None
    if name == "scope":
        return value.strip().lower() if value.strip().lower() in ("row", "col", "rowgroup", "colgroup") else None
    if name == "reversed":
        return ""
    return value


_SOURCE_END_TAG = re.compile(r"</source>")


def _serialize(element: HtmlElement) -> str:
    # libxml2 knows HTML 4's void elements only and closes <source>; HTML5 forbids that end tag.
    # Text can never hold a raw "</source>" (it is escaped), so this touches markup only.
    return _SOURCE_END_TAG.sub("", lxml.html.tostring(element, encoding="unicode"))


def _inner_html(root: HtmlElement) -> str:
    return html.escape(root.text or "", quote=False) + "".join(_serialize(child) for child in root)


def convert_body(safe_html: str, image_sizes: Mapping[str, tuple[int, int]] | None = None,
                 frame_hosts: tuple[str, ...] = DEFAULT_FRAME_HOSTS,
                 image_srcsets: Mapping[str, str] | None = None) -> AmpBody:
    """AMP markup for an article body; `image_sizes` maps image URLs to known (width, height),
    `frame_hosts` is the FRAME_HOSTS setting, `image_srcsets` maps image URLs to the srcset of their
    renditions (amp-img takes srcset as img does: https://amp.dev/documentation/components/amp-img)."""
    if not safe_html.strip():
        return AmpBody("")
    root = lxml.html.fragment_fromstring(safe_html, create_parent="div")
    converter = _Converter(image_sizes, frame_policy(frame_hosts), image_srcsets)
    converter.walk(root)
    return AmpBody(_inner_html(root), frozenset(converter.extensions))


def embed_to_amp(provider: str, url: str, title: str = "") -> AmpBody:
    """AMP markup for one entry of a record's `embeds`: a player or post, or else a plain link."""
    link_url = _url(url, {"http", "https"})
    component = None
    if link_url is None:
        pass
    elif provider == "youtube" and youtube_id(link_url):
        component = _youtube(link_url, str(FALLBACK_FRAME_SIZE[0]), str(FALLBACK_FRAME_SIZE[1]), title)
    elif provider == "twitter" and (status := tweet_id(link_url)):
        component = _with_placeholder(_twitter(status), _quote_link(link_url, title))
    elif provider == "instagram" and (shortcode := instagram_shortcode(link_url)):
        component = _with_placeholder(_instagram(shortcode), _quote_link(link_url, title))
    if component is not None:
        return AmpBody(_serialize(component), frozenset({component.tag}))
    if link_url:
        label = embed_label(provider, link_url)
        return AmpBody(_serialize(_link_placeholder(uri(link_url), f"{label}: {title}" if title else label)))
    if title:
        paragraph = _element("p")
        paragraph.text = title
        return AmpBody(_serialize(paragraph))
    return AmpBody("")


def _quote_link(url: str, title: str) -> HtmlElement:
    quote = _element("blockquote")
    quote.append(_link_placeholder(url, title or url))
    return quote


# --- the document ---------------------------------------------------------------------------------

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent.parent / "templates"),
    autoescape=True, trim_blocks=True, lstrip_blocks=True)


def extension_script_url(component: str) -> str:
    return f"https://cdn.ampproject.org/v0/{component}-0.1.js"


def amp_document(*, headline: str, canonical_url: str, body: AmpBody, json_ld: Mapping,
                 lang: str = "hi", lead_image: Mapping | None = None, byline: str = "",
                 published_iso: str = "", published_text: str = "",
                 embeds: Sequence[AmpBody] = (), site_name: str = "", site_url: str = "",
                 alternates: Sequence[tuple[str, str]] = (), corrections: Sequence[tuple] = ()) -> str:
    """A complete AMP page for one article.

    `lead_image` has the stored image's shape (url, width, height, caption, credit, renditions);
    `embeds` are the record's embeds already passed through `embed_to_amp`; `site_name` and
    `site_url`, when given, make the masthead link above the headline; `alternates` are the
    (hreflang, URL) of the page's language versions (AMP allows <link rel=alternate hreflang>);
    `corrections` are the dated notes (pages.correction_notes) shown after the body, as on the
    canonical page.
    """
    extensions = set(body.extensions).union(*(embed.extensions for embed in embeds))
    image_html = ""
    if lead_image and _url(lead_image.get("url"), IMAGE_SCHEMES):
        # The lead rendition and its smaller sizes when ingest made them (a JPEG: amp-img takes no <source>).
        lead = images.rendition(lead_image, "lead") or lead_image
        width, height = lead.get("width"), lead.get("height")
        if not (width and height):
            width, height = FALLBACK_IMAGE_SIZE
        image_html = _serialize(amp_img(lead["url"], lead_image.get("caption", ""), width, height,
                                        images.srcset(lead_image, "jpeg")))
    return _TEMPLATES.get_template("amp/article.html").render(
        lang=lang, headline=headline, canonical_url=canonical_url, byline=byline, alternates=alternates,
        site_name=site_name, site_url=site_url,
        published_iso=published_iso, published_text=published_text,
        runtime_url=AMP_RUNTIME_URL, font_url=FONT_URL, bold_font_url=BOLD_FONT_URL,
        extension_scripts=[(name, extension_script_url(name)) for name in sorted(extensions)],
        lead_image_html=Markup(image_html),
        caption=(lead_image or {}).get("caption", ""), credit=(lead_image or {}).get("credit", ""),
        body_html=Markup(body.html), embeds_html=[Markup(embed.html) for embed in embeds],
        json_ld=Markup(script_json(json_ld)), corrections=corrections)
