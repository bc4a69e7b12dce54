"""What counts as active content in an output, decided on a parsed tree, never by string search.

HTML is parsed with html5lib, which follows the WHATWG algorithm browsers use, so what this module
sees is what a browser (or a feed reader's web view) would build from the same bytes: a `<script>`
hidden in a comment or split across tags only counts if a browser would run it.

`threats(root, ...)` lists (threat, detail) for every element and attribute of a tree that could
run script, load a script-bearing resource, or change the page around it. Threat names are the
vocabulary of tests/hostile/html/manifest.json.
"""
from __future__ import annotations

import json
import re
from typing import Callable, Iterator

import html5lib

# Attributes a browser follows or loads as URLs.
URL_ATTRIBUTES = {"href", "src", "srcset", "action", "formaction", "poster", "cite", "data", "background",
                  "longdesc", "codebase", "manifest", "icon", "lowsrc", "dynsrc", "ping", "xlink:href"}
SCRIPT_SCHEMES = ("javascript:", "vbscript:", "livescript:")
DANGEROUS_ELEMENTS = {"object", "embed", "applet", "param", "base", "form", "input", "button", "select",
                      "isindex", "keygen", "frameset", "frame", "portal"}
FRAMES = {"iframe", "frame", "amp-iframe"}
FOREIGN = {"svg", "math"}
# Script-capable CSS: old IE expressions and behaviours, Mozilla XBL, imports, and URLs with script schemes.
DANGEROUS_CSS = re.compile(r"expression\s*\(|behaviou?r\s*:|-moz-binding|@import|javascript\s*:|vbscript\s*:"
                           r"|url\s*\(\s*['\"]?\s*data\s*:", re.IGNORECASE)
# Browsers drop these before reading a URL's scheme ("java\tscript:", " javascript:").
_IGNORED_IN_URLS = re.compile(r"[\x00-\x20\x7f]+")
_CSS_ESCAPE = re.compile(r"\\([0-9a-fA-F]{1,6})\s?")
_TOP_NAVIGATION = re.compile(r"allow-top-navigation", re.IGNORECASE)
# Permissions a frame may only get from us, never from a record (players need encrypted-media, fullscreen).
_POWERFUL_FEATURES = re.compile(r"camera|microphone|geolocation|payment|usb|serial|bluetooth|midi|display-capture"
                                r"|clipboard|hid\b", re.IGNORECASE)


def parse_fragment(html: str):
    """An HTML fragment as a browser parses it inside <body>: the container element."""
    return html5lib.parseFragment(html, treebuilder="etree", namespaceHTMLElements=False)


def parse_document(html: str | bytes):
    return html5lib.parse(html, treebuilder="etree", namespaceHTMLElements=False)


def local_name(name: str) -> str:
    """'{http://www.w3.org/2000/svg}svg' -> 'svg'; '{http://www.w3.org/1999/xlink}href' -> 'xlink:href'."""
    if name.startswith("{http://www.w3.org/1999/xlink}"):
        return "xlink:" + name.split("}", 1)[1]
    return name.split("}", 1)[1] if name.startswith("{") else name


def elements(root) -> Iterator:
    for element in root.iter():
        if isinstance(element.tag, str):
            yield element


def url_scheme(value: str) -> str:
    return _IGNORED_IN_URLS.sub("", value).lower()


def _url_values(name: str, value: str) -> list[str]:
    if name == "srcset":
        return [candidate.strip().split(" ")[0] for candidate in value.split(",")]
    return [value]


def _css(text: str) -> bool:
    # CSS escapes (\65 for "e") are how "expression" hides from a plain pattern.
    unescaped = _CSS_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)) if int(m.group(1), 16) < 0x110000 else "", text)
    return bool(DANGEROUS_CSS.search(unescaped))


def json_ld_script(script) -> bool:
    """A JSON-LD block: inert data, as long as it is valid JSON (so nothing broke out of it)."""
    if (script.get("type") or "").strip().lower() != "application/ld+json" or script.get("src"):
        return False
    try:
        json.loads(script.text or "")
    except ValueError:
        return False
    return True


def amp_script(script) -> bool:
    """The AMP runtime or one of its extensions, loaded from the AMP CDN with no inline code."""
    return (script.get("src") or "").startswith("https://cdn.ampproject.org/") and not (script.text or "").strip()


def threats(root, *, allowed_script: Callable = lambda script: False, fragment: bool = True,
            own_origin: str | None = None) -> list[tuple[str, str]]:
    """Every (threat, detail) in a parsed tree.

    `allowed_script(element)` says which of our own script elements a document may carry (JSON-LD,
    the AMP runtime). With `fragment=True` (content taken from a record: feed item HTML, oEmbed
    html) style elements and attributes and foreign content (SVG, MathML) count as threats too;
    whole documents carry their own stylesheet. Frames must load over https, except our own
    pages (`own_origin`, e.g. the embed card an oEmbed iframe shows).
    """
    found = []
    for element in elements(root):
        tag = local_name(element.tag).lower()
        where = f"<{tag}>"
        if tag == "script" and not allowed_script(element):
            found.append(("script", f"{where} {(element.get('src') or (element.text or ''))[:60]!r}"))
        if tag in DANGEROUS_ELEMENTS:
            found.append(("dangerous-element", where))
        if tag == "meta" and (element.get("http-equiv") or "").lower() == "refresh":
            found.append(("dangerous-element", "<meta http-equiv=refresh>"))
        if tag == "link" and fragment:
            found.append(("dangerous-element", f"<link rel={element.get('rel')!r}> in content"))
        if tag == "style":
            if fragment:
                found.append(("style-element", "<style> in content"))
            if _css(element.text or ""):
                found.append(("css", f"<style> {(element.text or '')[:60]!r}"))
        if fragment and tag in FOREIGN:
            found.append(("foreign-content", where))
        if tag in FRAMES:
            src = element.get("src")
            ours = bool(own_origin and (src or "").startswith(own_origin + "/"))
            secure = ours or url_scheme(src or "").startswith("https:")
            if src is not None and not secure:
                found.append(("insecure-frame", f"{where} src={src[:60]!r}"))
            if _POWERFUL_FEATURES.search(element.get("allow") or "") or \
                    _TOP_NAVIGATION.search(element.get("sandbox") or ""):
                found.append(("frame-permissions", f"{where} allow={element.get('allow')!r} "
                                                   f"sandbox={element.get('sandbox')!r}"))
        if fragment and element.get("style") is not None:
            found.append(("style-attribute", f"{where} style={element.get('style')[:60]!r}"))
        found.extend(_attribute_threats(element, tag, where))
    return found


def _attribute_threats(element, tag: str, where: str) -> list[tuple[str, str]]:
    found = []
    for raw_name, value in element.attrib.items():
        name = local_name(raw_name).lower()
        if name.startswith("on"):
            found.append(("event-handler", f"{where} {name}={value[:40]!r}"))
        elif name == "srcdoc":
            found.append(("srcdoc", f"{where} srcdoc={value[:40]!r}"))
        elif name == "style" and _css(value):
            found.append(("css", f"{where} style={value[:60]!r}"))
        if name in URL_ATTRIBUTES or (tag in ("animate", "set") and name in ("values", "to", "from")):
            for url in _url_values(name, value):
                scheme = url_scheme(url)
                if scheme.startswith(SCRIPT_SCHEMES):
                    found.append(("script-url", f"{where} {name}={value[:60]!r}"))
                elif scheme.startswith("data:"):
                    found.append(("data-url", f"{where} {name}={value[:60]!r}"))
        if tag == "meta" and name == "content" and "javascript:" in url_scheme(value):
            found.append(("script-url", f"{where} content={value[:60]!r}"))
    return found


def text_of(root) -> str:
    return "".join(root.itertext())
