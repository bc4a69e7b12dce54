"""CMS markup -> the plain HTML the sanitiser's allow-list keeps, before the sanitiser runs.

WordPress, Ghost, Drupal and Arc write images, players and embeds in shapes that an allow-list alone
turns into nothing or into broken markup: a lazy-loaded <img> whose real address is in `data-src`
(its `src` a placeholder, the image again in <noscript>), <picture> whose candidates are in
<source srcset>, <video> with <source> children and a spacer poster, an embed block holding only
the bare URL of a post, the Facebook SDK's empty <div class="fb-post">. Each becomes a plain <img>,
a <video controls>/<audio controls> with its sources, a player frame or a link naming the provider.

The fragment is parsed as a browser parses it (html5lib), so void elements such as <source> never
swallow what follows. Bodies with none of these shapes skip the parse.
"""
from __future__ import annotations

import functools
import re
from urllib.parse import parse_qs, urlsplit

from lxml import etree

from feedsvc.ingest.frames import provider_name
from feedsvc.ingest.players import youtube_player_url

# Shapes this module rewrites; a body without any of them is left to the sanitiser as it is.
# Not `srcset` alone: an <img> with a real `src` keeps it, and the parse costs ~4 ms per 1000 words.
_NEEDS_REWRITE = re.compile(r"<(?:picture|source|noscript|video|audio)\b|data-(?:lazy-)?src|data-original"
                            r"|fb-(?:post|video)|wp-block-embed|/media/oembed|src=(?:\"\"|''|\"?data:)",
                            re.IGNORECASE)
# The regex above tries every alternative at every character (a case-insensitive pattern gets no
# literal prefix scan): ~0.1 ms on a 2,000-character body, a quarter of an import's parsing. Every
# match holds one of these in lower case, found at memchr speed in `body.lower()` first. The only
# letters re.IGNORECASE matches that lower() does not map to ASCII (ſ for s, ı and İ for i; the
# Kelvin sign lowers to k) send a body to the regex itself.
_REWRITE_HINTS = ("<picture", "<source", "<noscript", "<video", "<audio", "data-src", "data-lazy-src",
                  "data-original", "fb-post", "fb-video", "wp-block-embed", "/media/oembed", 'src=""', "src=''",
                  "src=data:", 'src="data:')
_CASELESS_NON_ASCII = ("\u017f", "\u0131", "\u0130")
LAZY_SOURCES = ("data-src", "data-lazy-src", "data-original", "data-lazy")
LAZY_SRCSETS = ("data-srcset", "data-lazy-srcset", "srcset")
# Feed readers and browsers show these; AVIF and JPEG XL are left for the <img> fallback.
READABLE_IMAGE_TYPES = {"", "image/jpeg", "image/png", "image/gif", "image/webp"}
# The widest candidate a reader needs: the AMP and feed lead image is 1200 px wide; 2x of 800.
WIDEST_USEFUL = 1600
# Ghost's video card uses a transparent spacer as poster and paints the thumbnail in `style`.
_SPACER_HOSTS = ("img.spacergif.org",)
_STYLE_URL = re.compile(r"url\(\s*['\"]?([^'\")]+)['\"]?\s*\)")
_CANDIDATE = re.compile(r"\s*(\S+?)(?:\s+(\d+(?:\.\d+)?)([wx]))?\s*(?:,|$)")
_BARE_URL = re.compile(r"^\s*(https?://\S+)\s*$")
FACEBOOK_LINK = "Facebook पर पोस्ट देखें"

@functools.cache
def _html5lib():
    """html5lib and its parser, loaded at the first body that needs a rewrite: ~12 MiB RSS that server
    workers, which only read stored bodies, would otherwise hold (bench row worker-rss-1m)."""
    import html5lib
    return html5lib, html5lib.HTMLParser(tree=html5lib.getTreeBuilder("lxml"), namespaceHTMLElements=False)


def rewrite_cms_markup(body: str) -> str:
    """`body` with its CMS shapes made plain (see the module's doc); unchanged when it has none."""
    if not needs_rewrite(body):
        return body
    html5lib, parser = _html5lib()
    root = etree.Element("div")
    try:
        nodes = parser.parseFragment(body)
    except ValueError:
        # lxml refuses what XML cannot hold (control characters, names html5lib cannot coerce).
        # Ingest refuses such bodies before they get here; the sanitiser must still never fail, and
        # nh3 (after this) neutralises the body as it is.
        return body
    for node in nodes:
        if isinstance(node, str):
            _append_text(root, node)
        else:
            root.append(node)
    for rewrite in (_embed_blocks, _oembed_proxies, _facebook_posts, _lazy_images, _noscript_fallbacks,
                    _pictures, _players, _stray_sources):
        rewrite(root)
    serialized = html5lib.serialize(root, tree="lxml", quote_attr_values="always", omit_optional_tags=False)
    return serialized[len("<div>"):-len("</div>")]


def needs_rewrite(body: str) -> bool:
    """Whether `body` has a shape this module rewrites (what _NEEDS_REWRITE finds)."""
    lowered = body.lower()
    if not any(hint in lowered for hint in _REWRITE_HINTS) and not any(c in body for c in _CASELESS_NON_ASCII):
        return False
    return _NEEDS_REWRITE.search(body) is not None


def _append_text(root: etree._Element, text: str) -> None:
    if len(root):
        root[-1].tail = (root[-1].tail or "") + text
    else:
        root.text = (root.text or "") + text


# ---- images ----------------------------------------------------------------------------------

def _is_real_source(src: str | None) -> bool:
    """A URL that shows the image: not missing, not an inline data: placeholder, not about:blank."""
    value = (src or "").strip().lower()
    return bool(value) and not value.startswith(("data:", "about:", "javascript:"))


def candidates(srcset: str) -> list[tuple[str, float, str]]:
    """(url, number, descriptor) of each srcset candidate; a bare URL counts as 1x (HTML §4.8.4.3.10)."""
    found = []
    for url, number, unit in _CANDIDATE.findall(srcset or ""):
        if url and _is_real_source(url):
            found.append((url.rstrip(","), float(number) if number else 1.0, unit or "x"))
    return found


def best_candidate(sets: list[str]) -> str | None:
    """The candidate a reader is best served by, from srcsets in document order: the widest up to
    WIDEST_USEFUL pixels (the narrowest when all are wider); with density descriptors only, the first
    set's 1x (else its lowest density)."""
    all_candidates = [c for srcset in sets for c in candidates(srcset)]
    widths = [c for c in all_candidates if c[2] == "w"]
    if widths:
        useful = [c for c in widths if c[1] <= WIDEST_USEFUL]
        return (max(useful, key=lambda c: c[1]) if useful else min(widths, key=lambda c: c[1]))[0]
    for srcset in sets:
        densities = candidates(srcset)
        if densities:
            return min(densities, key=lambda c: abs(c[1] - 1))[0]
    return None


def _lazy_images(root: etree._Element) -> None:
    """The real address of a lazy image or frame into `src`; an image with none at all goes."""
    for img in list(root.iter("img", "iframe")):
        if not _is_real_source(img.get("src")):
            lazy = next((img.get(name) for name in LAZY_SOURCES if _is_real_source(img.get(name))), None)
            if lazy is None and img.tag == "img":
                lazy = best_candidate([img.get(name, "") for name in LAZY_SRCSETS])
            if lazy:
                img.set("src", lazy.strip())
            elif img.tag == "img" and img.getparent().tag != "picture":
                _remove(img)
            elif "src" in img.attrib:
                del img.attrib["src"]


def _noscript_fallbacks(root: etree._Element) -> None:
    """A lazy loader's <noscript><img></noscript> replaces the image it backs when that one has no
    source; else it repeats it and goes. A <noscript> with anything else goes as the sanitiser drops it."""
    for noscript in list(root.iter("noscript")):
        fallback = next(noscript.iter("img"), None)
        lazy = noscript.getprevious()
        if fallback is not None and lazy is not None and lazy.tag == "img" and not _is_real_source(lazy.get("src")):
            _replace(lazy, fallback)
            _remove(noscript)
        elif fallback is not None and not (lazy is not None and lazy.tag == "img"):
            _replace(noscript, fallback)  # a script-only loader left no <img> of its own


def _pictures(root: etree._Element) -> None:
    """<picture> -> the <img> inside it, showing the best candidate of its sources and its own srcset,
    at the size the chosen <source> gives (HTML allows width/height on a picture's sources)."""
    for picture in list(root.iter("picture")):
        img = next(picture.iter("img"), None)
        if img is None:
            img = etree.Element("img")
        sources = [s for s in picture.iter("source") if (s.get("type") or "").strip().lower() in READABLE_IMAGE_TYPES]
        chosen = best_candidate([_srcset_with_width(s) for s in sources] + [img.get("srcset") or ""])
        if chosen and (sources or not _is_real_source(img.get("src"))):
            img.set("src", chosen)
            _size_for(img, chosen, sources)
        _replace(picture, img)


def _size_for(img: etree._Element, chosen: str, sources: list[etree._Element]) -> None:
    """The <img>'s width and height for the chosen candidate: those its <source> states, else the
    fallback's scaled to the candidate's `w` (same picture, so the same ratio)."""
    origin = next((s for s in sources if chosen in _srcset_with_width(s)), None)
    if origin is not None and origin.get("width") and origin.get("height"):
        img.set("width", origin.get("width"))
        img.set("height", origin.get("height"))
        return
    width = next((c[1] for s in sources for c in candidates(_srcset_with_width(s)) if c[0] == chosen and c[2] == "w"),
                 None)
    old_width, old_height = img.get("width", ""), img.get("height", "")
    if width and old_width.isdigit() and old_height.isdigit() and int(old_width) > 0:
        img.set("width", str(int(width)))
        img.set("height", str(round(int(old_height) * width / int(old_width))))


def _srcset_with_width(source: etree._Element) -> str:
    """A source's srcset; a single 1x candidate on a source that states its width counts as that many w."""
    srcset = source.get("srcset") or source.get("data-srcset") or ""
    found = candidates(srcset)
    width = source.get("width", "")
    if len(found) == 1 and found[0][1:] == (1.0, "x") and width.isdigit():
        return f"{found[0][0]} {width}w"
    return srcset


# ---- players and embeds -----------------------------------------------------------------------

def _players(root: etree._Element) -> None:
    """<video>/<audio>: a lazy src resolved, the spacer poster replaced by the painted one, controls on."""
    for player in root.iter("video", "audio"):
        for element in (player, *player.iter("source")):
            lazy = next((element.get(name) for name in LAZY_SOURCES if _is_real_source(element.get(name))), None)
            if lazy and not _is_real_source(element.get("src")):
                element.set("src", lazy)
        poster = player.get("poster") or player.get("data-poster") or ""
        painted = _STYLE_URL.search(player.get("style", ""))
        if painted and (not poster or any(host in poster for host in _SPACER_HOSTS)):
            poster = painted.group(1)
        if poster:
            player.set("poster", poster)
        player.set("controls", "")


def _stray_sources(root: etree._Element) -> None:
    for source in list(root.iter("source")):
        if source.getparent().tag not in ("video", "audio"):
            _remove(source)


def _embed_blocks(root: etree._Element) -> None:
    """A WordPress embed block stored as its bare URL (oEmbed runs only when WordPress shows it): a
    YouTube URL becomes its player frame, anything else a link naming the provider."""
    for block in list(root.iter("figure")):
        if "wp-block-embed" not in block.get("class", "").split() or next(block.iter("iframe", "a"), None) is not None:
            continue
        wrapper = next((div for div in block.iter("div") if _BARE_URL.match(div.text or "")), None)
        found = _BARE_URL.match(wrapper.text or "") if wrapper is not None else None
        if wrapper is not None and found:
            url = found.group(1)
            wrapper.text = None
            wrapper.append(_player_or_link(url))


def _oembed_proxies(root: etree._Element) -> None:
    """Drupal's remote-video media frame its own /media/oembed?url=…: the frame of what it proxies."""
    for frame in list(root.iter("iframe")):
        parts = urlsplit(frame.get("src", ""))
        proxied = parse_qs(parts.query).get("url", [""])[0] if parts.path.endswith("/media/oembed") else ""
        if proxied.startswith(("https://", "http://")):
            replacement = _player_or_link(proxied, frame.get("title", ""))
            for size in ("width", "height"):
                if replacement.tag == "iframe" and frame.get(size):
                    replacement.set(size, frame.get(size))
            _replace(frame, replacement)


def _player_or_link(url: str, title: str = "") -> etree._Element:
    player = youtube_player_url(url)
    if player:
        frame = etree.Element("iframe", src=player)
        if title:
            frame.set("title", title)
        return frame
    return _link(url, f"{provider_name(url)} पर देखें" + (f": {title}" if title else ""))


def _facebook_posts(root: etree._Element) -> None:
    """The Facebook SDK's placeholder is empty until its script runs: it gets the link it stands for."""
    for div in list(root.iter("div")):
        classes = set(div.get("class", "").split())
        href = div.get("data-href", "")
        if classes & {"fb-post", "fb-video"} and href.startswith("https://"):
            paragraph = etree.SubElement(div, "p")
            paragraph.append(_link(href, FACEBOOK_LINK))


# ---- tree edits -------------------------------------------------------------------------------

def _link(url: str, text: str) -> etree._Element:
    link = etree.Element("a", href=url)
    link.text = text
    return link


def _replace(old: etree._Element, new: etree._Element) -> None:
    new.tail = old.tail
    old.getparent().replace(old, new)


def _remove(element: etree._Element) -> None:
    """Remove the element and what it holds, keeping the text after it."""
    parent, previous = element.getparent(), element.getprevious()
    if element.tail:
        if previous is not None:
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)
