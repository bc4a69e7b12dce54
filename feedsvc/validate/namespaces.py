"""Namespaces a feed declares: each must be one readers and the W3C Feed Validation Service know.

The service keeps a table of the extension namespaces it understands and warns "Use of unknown
namespace" for any other declaration, used or not (UnknownNamespace). KNOWN holds the ones a
news feed has reason to use, by their standard prefix. RFC 6721's tombstones namespace is not in
the service's table; it is accepted here only in a document that carries a tombstone, which is
the one place it is worth that warning.
"""
from __future__ import annotations

from feedsvc.render.feeds.ext import MI_NS, SNF_NS, WEBFEEDS_NS
from feedsvc.validate.problems import TOMBSTONES, Problem

KNOWN = {
    "http://www.w3.org/2005/Atom": "atom",
    "http://www.w3.org/1999/xhtml": "xhtml",
    "http://www.w3.org/XML/1998/namespace": "xml",
    "http://purl.org/rss/1.0/modules/content/": "content",
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://purl.org/dc/terms/": "dcterms",
    "http://search.yahoo.com/mrss/": "media",
    "http://purl.org/syndication/history/1.0": "fh",
    "http://purl.org/syndication/thread/1.0": "thr",
    "http://purl.org/rss/1.0/modules/slash/": "slash",
    "http://purl.org/rss/1.0/modules/syndication/": "sy",
    "http://wellformedweb.org/CommentAPI/": "wfw",
    "http://www.georss.org/georss": "georss",
    "http://www.itunes.com/dtds/podcast-1.0.dtd": "itunes",
    "http://a9.com/-/spec/opensearch/1.1/": "opensearch",
    "http://www.w3.org/2007/app": "app",
    "http://www.w3.org/1999/02/22-rdf-syntax-ns#": "rdf",
}
# Known only where an element of theirs is present (see the module's docstring). The aggregator
# namespaces are in the service's table neither, but their consumers want them (only in the feeds
# of the profile that names them: feedsvc/profiles).
KNOWN_WHEN_USED = {TOMBSTONES: "at", WEBFEEDS_NS: "webfeeds", SNF_NS: "snf", MI_NS: "mi"}


def namespace_problems(root) -> list[Problem]:
    """unknown-namespace warnings for each namespace declaration in the tree under `root`."""
    problems = []
    used = {_namespace(e.tag) for e in root.iter() if isinstance(e.tag, str)}
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        parent = element.getparent()
        inherited = parent.nsmap if parent is not None else {}
        for prefix, uri in element.nsmap.items():
            if inherited.get(prefix) == uri:
                continue
            reason = _unknown(uri, used)
            if reason:
                declared = f"xmlns:{prefix}" if prefix else "xmlns"
                problems.append(Problem("unknown-namespace", f'{declared}="{uri}": {reason}', element.sourceline,
                                        severity="warning"))
    return problems


def _unknown(uri: str, used: set[str]) -> str | None:
    if uri in KNOWN:
        return None
    if uri in KNOWN_WHEN_USED:
        return None if uri in used else "declared, but no element of it is in the document"
    return "a namespace feed readers and the W3C Feed Validation Service do not know"


def _namespace(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""
