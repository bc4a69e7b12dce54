"""HTML carried inside feeds (content:encoded, description, Atom html/xhtml, JSON content_html): allow-list and parse.

Feed readers show such HTML inside their own pages, so they strip what could act on those pages,
and the W3C Feed Validation Service warns of it ("content:encoded should not contain ... tag",
SecurityRisk / SecurityRiskAttr) and rejects HTML that an HTML5 parser reports errors in (NotHtml,
"Invalid HTML"). Two rules follow that model here, with our own list of what a story may hold:
  html-allowlist: an element or attribute outside ALLOWED_ELEMENTS / ALLOWED_ATTRIBUTES (warning);
  html-invalid:   a parse error of the HTML5 parsing algorithm (html5lib, the parser the W3C service
                  uses), e.g. the stray end tag of a void element: "</source>".
"""
from __future__ import annotations

from functools import lru_cache

from lxml import etree

from feedsvc.validate.problems import Problem

# What a news story's body may show: text-level and grouping content, figures and media, tables,
# and the few interactive elements that act only on themselves (details/summary).
ALLOWED_ELEMENTS = frozenset("""
    a abbr address article aside b bdi bdo blockquote br caption cite code col colgroup data dd del
    details dfn div dl dt em figcaption figure footer h1 h2 h3 h4 h5 h6 header hr i img ins kbd li
    main mark nav ol p picture pre q rp rt ruby s samp section small source span strong sub summary
    sup table tbody td tfoot th thead time tr track u ul var video audio wbr
""".split())
# Attributes that describe content; no event handler (on*), no style, no form or frame behaviour.
ALLOWED_ATTRIBUTES = frozenset("""
    abbr align alt autoplay cite class colspan controls crossorigin datetime decoding default dir
    download headers height href hreflang id kind label lang loading loop media muted name open
    playsinline poster preload referrerpolicy rel reversed rowspan scope sizes span src srclang
    srcset start target title translate type value width xml:lang
""".split())
XHTML = "http://www.w3.org/1999/xhtml"
XML = "http://www.w3.org/XML/1998/namespace"


def html_content_problems(html: str, line: int | None, where: str) -> list[Problem]:
    """html-invalid and html-allowlist problems of an HTML fragment that starts on `line`."""
    if not html.strip():
        return []
    found = _fragment_findings(html)
    return [Problem(rule, f"{where}: {message}", (line + offset) if line else None, severity=severity)
            for rule, message, offset, severity in found]


def xhtml_content_problems(div, where: str) -> list[Problem]:
    """html-allowlist problems of an Atom type="xhtml" content's div (already well-formed XML)."""
    problems = []
    for element in div.iterdescendants():
        if not isinstance(element.tag, str):
            continue
        name = etree.QName(element)
        for rule, message in _element_findings(name.localname, element.attrib.keys(), name.namespace == XHTML):
            problems.append(Problem(rule, f"{where}: {message}", element.sourceline, severity="warning"))
    return problems


@lru_cache(maxsize=1024)  # one story's body appears in many feeds and all three formats
def _fragment_findings(html: str) -> tuple[tuple[str, str, int, str], ...]:
    import html5lib  # here, not with the module: ~12 MiB RSS a server worker need not hold (worker-rss-1m)

    parser = html5lib.HTMLParser(tree=html5lib.getTreeBuilder("etree"), namespaceHTMLElements=False)
    fragment = parser.parseFragment(html)
    findings = []
    for (row, column), code, data in parser.errors:
        message = html5lib.constants.E.get(code, code) % (data or {})
        findings.append(("html-invalid", f"line {row} column {column} of the HTML: {message}", row - 1, "error"))
    for element in fragment.iter():
        if not isinstance(element.tag, str) or element.tag == "DOCUMENT_FRAGMENT":
            continue
        findings += [(rule, message, 0, "warning")
                     for rule, message in _element_findings(element.tag, element.attrib.keys(), True)]
    return tuple(findings)


def _element_findings(tag: str, attributes, in_html: bool) -> list[tuple[str, str]]:
    if not in_html:
        return [("html-allowlist", f"<{tag}> is not an HTML element; readers drop it")]
    if tag.lower() not in ALLOWED_ELEMENTS:
        return [("html-allowlist", f"<{tag}> is outside what readers show (its content may be dropped or run)")]
    findings = []
    for attribute in attributes:
        name = etree.QName(attribute)
        shown = f"xml:{name.localname}" if name.namespace == XML else attribute
        if shown.lower() not in ALLOWED_ATTRIBUTES and not shown.lower().startswith("data-"):
            findings.append(("html-allowlist", f"<{tag} {shown}> is an attribute readers strip or refuse"))
    return findings
