"""Record HTML -> safe HTML: an allow-list fitted to feed readers, with every URL made absolute or,
for the site's own pages and files, a site path that renderers make absolute (feedsvc/render/links.py)."""
from __future__ import annotations

import functools
import html
import re
import threading
from typing import TYPE_CHECKING

from feedsvc.ingest.cms import rewrite_cms_markup
from feedsvc.ingest.frames import DEFAULT_FRAME_HOSTS, FramePolicy, frame_policy, provider_name
from feedsvc.ingest.players import youtube_id
from feedsvc.ingest.urls import uri

if TYPE_CHECKING:
    import nh3

ALLOWED_TAGS = {
    "p", "h2", "h3", "h4", "h5", "h6", "a", "strong", "em", "b", "i", "u", "s", "small", "mark",
    "blockquote", "q", "cite", "ul", "ol", "li", "dl", "dt", "dd", "figure", "figcaption", "img",
    "table", "thead", "tbody", "tfoot", "tr", "th", "td", "caption", "br", "hr", "code", "pre",
    "sup", "sub", "abbr", "time", "iframe", "video", "audio", "source",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height", "title"},
    "iframe": {"src", "width", "height", "title", "allowfullscreen"},
    "video": {"src", "controls", "poster", "width", "height"},
    "audio": {"src", "controls"},
    "source": {"src", "type"},
    "th": {"colspan", "rowspan", "scope"},
    "td": {"colspan", "rowspan"},
    "abbr": {"title"},
    "time": {"datetime"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "ol": {"start"},
}
# Social posts are marked by the class their provider's embed code uses; nothing else keeps a class.
ALLOWED_CLASSES = {"blockquote": {"twitter-tweet", "instagram-media"}}
# Elements removed together with everything inside them.
REMOVED_WITH_CONTENT = {"script", "style", "template", "noscript", "svg", "math", "object", "embed",
                        "form", "select", "textarea", "button", "head", "title"}
URL_SCHEMES = {"http", "https", "mailto"}
EMBEDDED_SOURCE_ATTRS = {("video", "src"), ("video", "poster"), ("audio", "src"), ("source", "src")}
URL_ATTRIBUTES = {"href", "src", "cite", "poster"}
# Relative links of an article served on this site resolve against this stand-in origin, which is
# then removed: the store keeps site paths, never the site URL of import time. ".invalid" is
# reserved (RFC 2606), so no real link starts with it; https is what protocol-relative links get.
_STAND_IN_ORIGIN = "https://feedsvc-site.invalid"
# CMSs write sizes as "800px" too; HTML wants the bare number.
_PIXELS = re.compile(r"\s*(\d{1,5})(?:px)?\s*")


def _keep_attribute(tag: str, attr: str, value: str) -> str | None:
    # Embedded media must come over https: mixed content is blocked by readers anyway; a relative
    # reference is the site's own file (/media/...), served as the site is. A frame's http source is
    # kept for decide_frames, which makes such a frame a link.
    if (tag, attr) in EMBEDDED_SOURCE_ATTRS and not (value.lower().startswith("https://") or _own_file(value)):
        return None
    if tag == "iframe" and attr == "src" and not value.lower().startswith(("https://", "http://")):
        return None
    if attr in ("width", "height"):
        size = _PIXELS.fullmatch(value)
        return size.group(1) if size and int(size.group(1)) > 0 else None
    if attr in ("colspan", "rowspan", "start") and not value.strip().isdigit():
        return None
    # nh3 checks the scheme of href and src but not of cite, which readers may show as a link.
    if attr == "cite" and not value.strip().lower().startswith(("http://", "https://")):
        return None
    if attr not in URL_ATTRIBUTES:
        return value
    kept = uri(value)
    _resolved.needs = max(_resolved.needs, _base_needed(kept))
    return kept


def _own_file(value: str) -> bool:
    """A relative reference with no scheme and no host of its own (RFC 3986 §4.2): a file of this site."""
    value = value.strip()
    return bool(value) and not value.startswith("//") and ":" not in value.split("/", 1)[0]


# How much of the base URL a kept URL's resolution reads. ammonia joins a URL attribute to the base
# (WHATWG URL parsing) only when it fails to parse alone as "relative URL without a base", and only
# after the attribute filter, so _keep_attribute sees every value that is joined: one with a scheme
# is kept as it is; a path-absolute one ("/x", not "//x" nor "/\\x", which name a host, nor one
# holding the tabs and newlines the parser removes) takes the base's origin only; any other (a
# path, "?q", "#f", "//host", " /x") the whole base.
_NO_BASE, _BASE_ORIGIN, _WHOLE_BASE = 0, 1, 2
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
# The worst _base_needed of the URLs kept by the cleaning under way in this thread (the filter is a
# callback: nh3 calls it on the cleaning thread).
_resolved = threading.local()


def _base_needed(url: str) -> int:
    if _SCHEME.match(url):
        return _NO_BASE
    if url[:1] == "/" and url[1:2] not in ("/", "\\") and not any(c in url for c in "\t\n\r"):
        return _BASE_ORIGIN
    return _WHOLE_BASE


@functools.lru_cache(maxsize=8)
def _cleaner(base_url: str) -> nh3.Cleaner:
    import nh3  # here: 1.5 MiB RSS that a worker serving stored (already clean) articles never needs

    return nh3.Cleaner(
        tags=ALLOWED_TAGS,
        clean_content_tags=REMOVED_WITH_CONTENT,
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=_keep_attribute,
        url_schemes=URL_SCHEMES,
        allowed_classes=ALLOWED_CLASSES,
        link_rel="noopener",
        strip_comments=True,
        url_relative=("rewrite_with_base", base_url),
    )


# Characters no feed can carry: XML 1.0 allows tab, LF and CR among the C0 controls, and nothing in
# the surrogate block or U+FFFE/F. DEL and the C1 controls are legal XML but discouraged (XML 1.0
# §2.2), and readers such as feedparser turn them into Windows-1252 letters (U+0080 becomes €).
# Records carrying them are refused (records.py); nh3 decodes references, so "&#2;" in a body
# comes out raw and is removed here.
XML_UNSAFE_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def sanitize_html(body: str, base_url: str, *, xml_safe_input: bool = False,
                  frame_hosts: tuple[str, ...] = DEFAULT_FRAME_HOSTS) -> str:
    """Safe HTML for every output; relative URLs are resolved against `base_url`, the article's own
    URL (RFC 3986 §5), and every URL is a URI (RFC 3987 §3.1). CMS shapes are made plain first (cms.py).
    A `base_url` that is a site path ("/articles/x") leaves the links it resolves as site paths.

    `xml_safe_input`: the caller knows `body` holds no XML_UNSAFE_CHARS, so only a numeric
    character reference can bring one in, and the scan for them is skipped when there is none.
    `frame_hosts`: the FRAME_HOSTS setting; a frame elsewhere becomes a link (frames.py).
    """
    on_site = base_url.startswith("/")
    cleaned = _clean(rewrite_cms_markup(body), _STAND_IN_ORIGIN + base_url if on_site else base_url, on_site)
    if on_site and _STAND_IN_ORIGIN in cleaned:
        cleaned = cleaned.replace(f'="{_STAND_IN_ORIGIN}/', '="/')
    if "<iframe" in cleaned:
        cleaned = decide_frames(cleaned, frame_policy(frame_hosts))
    if "<img" in cleaned:
        cleaned = without_empty_figures(_IMG_TAG.sub(_shown_image, cleaned))
    elif "<figure" in cleaned:
        cleaned = without_empty_figures(cleaned)
    if xml_safe_input and "&#" not in body:
        return cleaned
    return XML_UNSAFE_CHARS.sub("", cleaned)


def _clean(body: str, base: str, on_site: bool) -> str:
    """nh3 with relative URLs resolved against `base`. Every article has a base of its own and a
    Cleaner costs as much to build as a body to clean, so the body is cleaned first against the
    stand-in origin, and again against its own base only when a kept URL needs more of it than that
    (every base of an on-site article has the stand-in origin)."""
    _resolved.needs = _NO_BASE
    cleaned = _cleaner(_STAND_IN_ORIGIN + "/").clean(body)
    if _resolved.needs == _NO_BASE or (_resolved.needs == _BASE_ORIGIN and on_site):
        return cleaned
    return _cleaner(base).clean(body)


# An iframe as nh3 writes it: every attribute value double-quoted with '"' and '&' escaped, and the
# content raw text that cannot hold "</iframe" (the parser ended the element there). Matching that
# fixed serialisation touches the frames only and leaves the rest of the body byte for byte.
_IFRAME = re.compile(r'<iframe((?:[^>"]|"[^"]*")*)>.*?</iframe>', re.DOTALL)
_ATTRIBUTE = re.compile(r'([^\s="]+)="([^"]*)"')
_KEPT_FRAME_ATTRIBUTES = ("src", "width", "height", "title", "allowfullscreen")


def decide_frames(safe_html: str, policy: FramePolicy) -> str:
    """Each iframe of nh3 output: an allowed player, sandboxed; a link to any other source; else nothing."""
    return _IFRAME.sub(lambda match: _frame_or_link(match.group(1), policy), safe_html)


def _frame_or_link(attribute_text: str, policy: FramePolicy) -> str:
    attributes = {name: html.unescape(value) for name, value in _ATTRIBUTE.findall(attribute_text)}
    src = attributes.get("src", "")
    if not src:  # no https source survived the cleaner (javascript:, data:, srcdoc only): nothing to show
        return ""
    player = policy.player_for(src)
    if player is None:
        text = html.escape(frame_link_text(src, attributes.get("title", "")), quote=False)
        return f'<a href="{_quoted(src)}" rel="noopener">{text}</a>'
    kept = {name: attributes[name] for name in _KEPT_FRAME_ATTRIBUTES if name in attributes}
    kept.update(sandbox=player.sandbox, referrerpolicy=player.referrer_policy, loading="lazy")
    if player.allow:
        kept["allow"] = player.allow
    return "<iframe" + "".join(f' {name}="{_quoted(value)}"' for name, value in kept.items()) + "></iframe>"


def frame_link_text(src: str, title: str = "") -> str:
    """The text of the link a frame becomes: its provider by name, and its title when it has one."""
    name = provider_name(src)
    return f"{name} पर देखें: {title.strip()}" if title.strip() else f"{name} पर देखें"


def _quoted(value: str) -> str:
    return html.escape(value, quote=False).replace('"', "&quot;")


# An <img> start tag as nh3 writes it: every attribute value double-quoted with '"' escaped inside, so
# '>' ends the tag only outside quotes and ' src="' can only be the src attribute.
_IMG_TAG = re.compile(r'<img\b(?:[^>"]|"[^"]*")*>')
_FIGURE_END = "</figure>"
_CAPTION = re.compile(r"<figcaption\b.*?</figcaption>", re.DOTALL)
_SHOWN = re.compile(r"<(?:img|video|audio|iframe)\b")


def _shown_image(match: re.Match) -> str:
    """An <img> whose source the cleaner refused (javascript:, a data: URL) shows nothing: it goes."""
    return match.group() if ' src="' in match.group() else ""


def without_empty_figures(safe_html: str) -> str:
    """`safe_html` without the figures that show nothing but a caption: those whose image was refused
    (an unsafe source here, an unreadable or oversized file in body_images.py).

    The caption goes with its figure rather than staying as a paragraph: it is written about a
    picture ("फ़ोटो: पीटीआई", "बाढ़ में डूबा गाँव") and read as body text it means nothing, while
    readers built on figures (Apple News' caption component, AMP, feed readers' styles) show a caption
    box around no image. Nothing is lost: the record as given is kept in the store. A figure holding
    anything else (text, another image, a video, a quote) stays as it is.
    """
    if "<figure" not in safe_html:
        return safe_html
    previous = None
    while safe_html != previous:   # a figure emptied of an inner figure is judged on the next round
        previous, safe_html = safe_html, _without_empty_innermost_figures(safe_html)
    return safe_html


def _without_empty_innermost_figures(safe_html: str) -> str:
    """One round of without_empty_figures: the figures holding no other figure. Found with str.find,
    not a regular expression that looks ahead at every character (four times slower on a body)."""
    kept, done, after_close = [], 0, 0
    end = safe_html.find(_FIGURE_END)
    while end != -1:
        start = safe_html.rfind("<figure", 0, end)
        # nh3 closes every figure it keeps and escapes "<" in text and attribute values alike, so these
        # are tags, and the last opening before a closing tag is its own, unless another figure closed
        # in between: then this one holds it and waits for the next round.
        if start >= after_close:
            content = _CAPTION.sub("", safe_html[safe_html.index(">", start) + 1:end])
            if not _SHOWN.search(content) and not plain_text(content):
                kept.append(safe_html[done:start])
                done = end + len(_FIGURE_END)
        after_close = end + len(_FIGURE_END)
        end = safe_html.find(_FIGURE_END, after_close)
    return "".join(kept) + safe_html[done:] if kept else safe_html


_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
# A whole tag, quoted attribute values included (nh3 escapes "<" in text, but not in attributes).
_OPEN_OR_CLOSE = re.compile(r'<(/?)([a-zA-Z][a-zA-Z0-9]*)(?:[^>"]|"[^"]*")*>')
_VOID = {"img", "br", "hr", "source", "wbr"}


def nesting_depth(safe_html: str) -> int:
    """How deeply elements nest in `sanitize_html` output (which closes every element it keeps)."""
    depth = deepest = 0
    for closing, tag in _OPEN_OR_CLOSE.findall(safe_html):
        if tag.lower() in _VOID:
            continue
        depth = depth - 1 if closing else depth + 1
        deepest = max(deepest, depth)
    return deepest


# Bidi embedding/override controls can reorder a headline visually; ZWJ/ZWNJ stay (Devanagari needs them).
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
# Plain-text fields reach readers that treat feed text as HTML (RSS titles and descriptions), so
# tags and character references in them are not passed on (the same patterns the validator flags).
_MARKUP_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9:-]*(\s[^<>]*)?/?>")
_CHARREF = re.compile(r"&(?:#[0-9]+|#[xX][0-9A-Fa-f]+|[A-Za-z][A-Za-z0-9]*);")


def clean_text(text: str) -> str:
    """Plain text as readers should see it: tags removed, character references decoded (until none
    is left: '&lt;b&gt;' and '<<b>b>' hide tags), bidi controls removed."""
    previous = None if "<" in text or "&" in text else text
    while text != previous:  # each round only shortens the text (unknown references stay as they are)
        previous, text = text, _MARKUP_TAG.sub("", _CHARREF.sub(lambda ref: html.unescape(ref.group()), text))
    return _BIDI_CONTROLS.sub("", text).strip()


def plain_text(safe_html: str) -> str:
    """The text of safe HTML, for summaries and search snippets."""
    return _SPACE.sub(" ", html.unescape(_TAG.sub(" ", safe_html))).strip()


def truncate_words(text: str, limit: int, ellipsis: str = "…") -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0] or text[:limit]
    return cut.rstrip(" ,;:।-") + ellipsis


_LINKED_URL = re.compile(r'\s(?:href|src)="([^"]*)"')


def shown_in(url: str, safe_html: str) -> bool:
    """Whether `safe_html` already links to or frames what `url` names (the same YouTube video in any
    of its URL forms, or the same URL), so that an embed is shown once."""
    video = youtube_id(url)
    target = uri(url)
    for linked in map(html.unescape, _LINKED_URL.findall(safe_html)):
        if linked == target or (video is not None and youtube_id(linked) == video):
            return True
    return False
