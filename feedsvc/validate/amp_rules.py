"""House rules for our AMP pages, checked in Python beside the official validator.

The validator accepts some things our converter must still never emit (a bare <img>, style=
attributes), and a few of our own promises (only the extension scripts a page uses, JSON-LD
safe inside <script>) are not its business. Each violation names its rule.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

import lxml.html

MAX_CUSTOM_CSS_BYTES = 75_000
# AMP components that are part of the runtime and need no extension script.
BUILT_IN_COMPONENTS = {"amp-img", "amp-pixel", "amp-layout"}
_IMPORTANT = re.compile(r"!\s*important", re.IGNORECASE)
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):")
_SPACE_OR_CONTROL = re.compile(r"[\x00-\x20\x7f]+")
# Attributes a browser follows as URLs (alt or title text may well begin "JavaScript: ...").
URL_ATTRIBUTES = {"href", "src", "srcset", "action", "formaction", "poster", "cite", "data", "background",
                  "longdesc", "xlink:href", "manifest", "codebase", "icon"}


@dataclass(frozen=True)
class RuleViolation:
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.detail}"


def _where(element) -> str:
    return f"<{element.tag}> on line {element.sourceline}"


def _bare_images(doc):
    for image in doc.iter("img"):
        if not any(ancestor.tag == "noscript" for ancestor in image.iterancestors()):
            yield RuleViolation("no-bare-img", f"{_where(image)} is outside <noscript>")


def _attributes(doc):
    for element in doc.iter():
        if not isinstance(element.tag, str):
            continue
        for name, value in element.attrib.items():
            if name.lower() == "style":
                yield RuleViolation("no-style-attribute", f"{_where(element)} has style=")
            elif name.lower().startswith("on"):
                yield RuleViolation("no-event-handler", f"{_where(element)} has {name}=")
            if name.lower() not in URL_ATTRIBUTES and not name.lower().endswith(("src", "href")):
                continue
            scheme = _SCHEME.match(_SPACE_OR_CONTROL.sub("", value).lower())
            if scheme and scheme.group(1) in ("javascript", "vbscript"):
                yield RuleViolation("no-javascript-url", f"{_where(element)} has {name}={value[:60]!r}")


def _custom_style(doc):
    styles = doc.xpath("//style[@amp-custom]")
    if len(styles) != 1:
        yield RuleViolation("one-amp-custom", f"{len(styles)} <style amp-custom> elements, want exactly 1")
    for style in styles:
        css = style.text or ""
        size = len(css.encode("utf-8"))
        if size >= MAX_CUSTOM_CSS_BYTES:
            yield RuleViolation("amp-custom-size", f"{size} bytes, limit {MAX_CUSTOM_CSS_BYTES}")
        if _IMPORTANT.search(css):
            yield RuleViolation("no-important", "<style amp-custom> contains !important")


def _charset_first(doc):
    head = doc.find("head")
    first = next((child for child in head if isinstance(child.tag, str)), None) if head is not None else None
    if first is None or first.tag != "meta" or (first.get("charset") or "").lower() != "utf-8":
        yield RuleViolation("charset-first", 'the first element in <head> is not <meta charset="utf-8">')


def _extensions(doc):
    declared = {script.get("custom-element") for script in doc.xpath("//head/script[@custom-element]")}
    used = {element.tag for element in doc.iter()
            if isinstance(element.tag, str) and element.tag.startswith("amp-")} - BUILT_IN_COMPONENTS
    for name in sorted(declared - used):
        yield RuleViolation("only-used-extensions", f"extension script {name} is loaded but <{name}> is not used")
    for name in sorted(used - declared):
        yield RuleViolation("only-used-extensions", f"<{name}> is used but its extension script is missing")


def _scripts(doc):
    for script in doc.iter("script"):
        kind = script.get("type", "")
        if kind == "application/ld+json":
            text = script.text or ""
            if "</" in text or "<!--" in text:
                yield RuleViolation("json-ld-escaped", f"{_where(script)} contains '</' or '<!--'")
            try:
                json.loads(text)
            except ValueError as exc:
                yield RuleViolation("json-ld-escaped", f"{_where(script)} is not JSON: {exc}")
        elif not (script.get("src", "").startswith("https://cdn.ampproject.org/") and kind == ""):
            yield RuleViolation("no-own-scripts", f"{_where(script)} is neither AMP's nor JSON-LD")


RULES = (_bare_images, _attributes, _custom_style, _charset_first, _extensions, _scripts)


def check_house_rules(document: str) -> list[RuleViolation]:
    """Every house-rule violation in one AMP document; [] when it keeps them all."""
    doc = lxml.html.document_fromstring(document)
    return [violation for rule in RULES for violation in rule(doc)]
