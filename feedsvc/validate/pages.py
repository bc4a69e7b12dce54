"""HTML5 and AMP pages: parse errors, the head every page needs, and the AMP page requirements."""
from __future__ import annotations

from lxml import etree

from feedsvc.validate.problems import Problem
from feedsvc.validate.rules import decode, illegal_characters
from feedsvc.validate.xmldocs import title_checks, url_checks

FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+json", "application/json")
# libxml2 parses HTML by HTML 4 rules and closes <b> at a <p> inside it, then reports the </b> as
# unexpected; HTML5's adoption agency algorithm handles misnested formatting elements without a
# parse error (html5lib agrees), and record bodies from CMS editors are full of them.
_FORMATTING = ("a", "b", "big", "code", "em", "font", "i", "nobr", "s", "small", "strike", "strong", "tt", "u")
_HTML5_NOT_AN_ERROR = {f"Unexpected end tag : {tag}" for tag in _FORMATTING}

def _parse_html(body: bytes) -> tuple[etree._ElementTree | None, list[Problem]]:
    text, problems = decode(body)
    if text is None:
        return None, problems
    problems = illegal_characters(text)
    parser = etree.HTMLParser(no_network=True, recover=True, encoding="utf-8")
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as err:
        return None, problems + [Problem("html-parse", err.msg, err.lineno, err.offset)]
    if root is None:
        return None, problems + [Problem("html-parse", "no HTML document")]
    problems += [Problem("html-parse", entry.message, entry.line or None, entry.column or None)
                 for entry in parser.error_log
                 if entry.level >= etree.ErrorLevels.ERROR and entry.message.strip() not in _HTML5_NOT_AN_ERROR]
    return root.getroottree(), problems


def _check_html(body: bytes, url: str | None) -> list[Problem]:
    tree, problems = _parse_html(body)
    if tree is None:
        return problems
    root = tree.getroot()
    if (tree.docinfo.doctype or "").lower() != "<!doctype html>":
        problems.append(Problem("html-doctype", f"the document starts with {tree.docinfo.doctype or 'no doctype'!r};"
                                                " HTML5 needs <!DOCTYPE html>", 1))
    if not root.get("lang"):
        problems.append(Problem("html-lang", "<html> has no lang attribute", root.sourceline))
    charsets = [m.get("charset", "").lower() for m in root.iterfind("head/meta[@charset]")]
    if charsets != ["utf-8"]:
        problems.append(Problem("html-charset", f"expected one <meta charset=\"utf-8\"> in <head>, found {charsets}"))
    titles = root.findall("head/title")
    if len(titles) != 1 or not (titles[0].text or "").strip():
        problems.append(Problem("html-title", f"expected one non-empty <title> in <head>, found {len(titles)}"))
    problems += title_checks(titles)
    problems += url_checks(root.iterfind("head/link[@rel='canonical']"), "href")
    problems += url_checks((link for link in root.iterfind("head/link[@rel='alternate']")
                             if link.get("type") in FEED_TYPES), "href")
    return problems


_AMP_RUNTIME = "https://cdn.ampproject.org/v0.js"
# <img> is the house rule no-bare-img's (amp_rules.py), as are the first <meta charset>, event
# handler attributes and which scripts may appear: each fault is reported by one rule.
_AMP_DISALLOWED = ("iframe", "video", "audio", "object", "embed", "frame", "frameset", "applet")


def _check_amp(body: bytes, url: str | None) -> list[Problem]:
    """The AMP page requirements (amp.dev 'Create your AMP HTML page'); our house rules are registered
    beside them in dispatch.py, and the official validator can be added with register_checker("amp", ...)."""
    problems = _check_html(body, url)
    tree, _ = _parse_html(body)
    if tree is None:
        return problems
    root = tree.getroot()
    if not any(name in ("\u26a1", "amp") for name in root.attrib):
        problems.append(Problem("amp", "<html> needs the \u26a1 (or amp) attribute", root.sourceline))
    if root.find("head/link[@rel='canonical']") is None:
        problems.append(Problem("amp", "AMP pages need <link rel=\"canonical\"> to the regular page"))
    if root.find("head/meta[@name='viewport']") is None:
        problems.append(Problem("amp", "AMP pages need <meta name=\"viewport\">"))
    if not any(s.get("src") == _AMP_RUNTIME and s.get("async") is not None for s in root.iterfind("head/script")):
        problems.append(Problem("amp", f"AMP pages need <script async src=\"{_AMP_RUNTIME}\"> in <head>"))
    if root.find("head/style[@amp-boilerplate]") is None:
        problems.append(Problem("amp", "AMP pages need the <style amp-boilerplate> in <head>"))
    for element in root.iter(*_AMP_DISALLOWED):
        if next(element.iterancestors("noscript"), None) is None:
            problems.append(Problem("amp", f"<{element.tag}> is not allowed in AMP (use its amp-* component)",
                                    element.sourceline))
    return problems


CHECKERS = {"html": _check_html, "amp": _check_amp}
