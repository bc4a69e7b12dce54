"""House rules for our AMP pages, checked in Python beside the official validator.

The validator accepts some things our converter must still never emit (a bare <img>, style=
attributes), and a few of our own promises (only the extension scripts a page uses, JSON-LD
safe inside <script>) are not its business. Each violation is a validate `Problem` named after its
rule; `check_house_rules` is a checker that validate/dispatch.py registers for every AMP document.
"""
from __future__ import annotations

import json
import re

import lxml.html
from lxml import etree

from feedsvc.validate.problems import Problem

MAX_CUSTOM_CSS_BYTES = 75_000
AMP_CDN = "https://cdn.ampproject.org/"
# AMP components that are part of the runtime and need no extension script.
BUILT_IN_COMPONENTS = {"amp-img", "amp-pixel", "amp-layout"}
_IMPORTANT = re.compile(r"!\s*important", re.IGNORECASE)
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):")
_SPACE_OR_CONTROL = re.compile(r"[\x00-\x20\x7f]+")
# Attributes a browser follows as URLs (alt or title text may well begin "JavaScript: ...").
URL_ATTRIBUTES = {"href", "src", "srcset", "action", "formaction", "poster", "cite", "data", "background",
                  "longdesc", "xlink:href", "manifest", "codebase", "icon"}


def _violation(rule: str, message: str, element=None) -> Problem:
    return Problem(rule, message, element.sourceline if element is not None else None)


def _bare_images(doc):
    for image in doc.iter("img"):
        if not any(ancestor.tag == "noscript" for ancestor in image.iterancestors()):
            yield _violation("no-bare-img", f"<{image.tag}> is outside <noscript>", image)


def _attributes(doc):
    for element in doc.iter():
        if not isinstance(element.tag, str):
            continue
        for name, value in element.attrib.items():
            if name.lower() == "style":
                yield _violation("no-style-attribute", f"<{element.tag}> has style=", element)
            elif name.lower().startswith("on"):
                yield _violation("no-event-handler", f"<{element.tag}> has {name}=", element)
            if name.lower() not in URL_ATTRIBUTES and not name.lower().endswith(("src", "href")):
                continue
            scheme = _SCHEME.match(_SPACE_OR_CONTROL.sub("", value).lower())
            if scheme and scheme.group(1) in ("javascript", "vbscript"):
                yield _violation("no-javascript-url", f"<{element.tag}> has {name}={value[:60]!r}", element)


def _custom_style(doc):
    styles = doc.xpath("//style[@amp-custom]")
    if len(styles) != 1:
        yield _violation("one-amp-custom", f"{len(styles)} <style amp-custom> elements, want exactly 1")
    for style in styles:
        css = style.text or ""
        size = len(css.encode("utf-8"))
        if size >= MAX_CUSTOM_CSS_BYTES:
            yield _violation("amp-custom-size", f"{size} bytes, limit {MAX_CUSTOM_CSS_BYTES}", style)
        if _IMPORTANT.search(css):
            yield _violation("no-important", "<style amp-custom> contains !important", style)


def _charset_first(doc):
    head = doc.find("head")
    first = next((child for child in head if isinstance(child.tag, str)), None) if head is not None else None
    if first is None or first.tag != "meta" or (first.get("charset") or "").lower() != "utf-8":
        yield _violation("charset-first", 'the first element in <head> is not <meta charset="utf-8">', first)


def _extensions(doc):
    declared = {script.get("custom-element") for script in doc.xpath("//head/script[@custom-element]")}
    used = {element.tag for element in doc.iter()
            if isinstance(element.tag, str) and element.tag.startswith("amp-")} - BUILT_IN_COMPONENTS
    for name in sorted(declared - used):
        yield _violation("only-used-extensions", f"extension script {name} is loaded but <{name}> is not used")
    for name in sorted(used - declared):
        yield _violation("only-used-extensions", f"<{name}> is used but its extension script is missing")


def _scripts(doc):
    for script in doc.iter("script"):
        kind = script.get("type", "")
        if kind == "application/ld+json" and not script.get("src"):
            text = script.text or ""
            if "</" in text or "<!--" in text:
                yield _violation("json-ld-escaped", f"<{script.tag}> contains '</' or '<!--'", script)
            try:
                json.loads(text)
            except ValueError as exc:
                yield _violation("json-ld-escaped", f"<{script.tag}> is not JSON: {exc}", script)
        elif not (script.get("src", "").startswith(AMP_CDN) and kind == "" and script.get("async") is not None):
            yield _violation("no-own-scripts", f"<{script.tag}> is neither AMP's (async, from {AMP_CDN}) nor "
                                               "inline JSON-LD", script)


RULES = (_bare_images, _attributes, _custom_style, _charset_first, _extensions, _scripts)


def check_house_rules(document: str | bytes, url: str | None = None) -> list[Problem]:
    """Every house-rule violation in one AMP document; [] when it keeps them all. A validate Checker."""
    if isinstance(document, bytes):
        document = document.decode("utf-8", "replace")  # bad bytes are the built-in checks' to report
    try:
        doc = lxml.html.document_fromstring(document)
    except etree.ParserError:
        return []  # no document at all: the built-in checks report that (html-parse)
    return [violation for rule in RULES for violation in rule(doc)]
