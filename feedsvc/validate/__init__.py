"""Every document feedsvc serves, held to its standard: schemas, the rules they cannot express, and `flask validate`.

`validate_document(body, kind, url=...)` returns a list of `Problem`s (empty when the document is
valid). Each kind is checked in three layers:
  1. bytes and characters: UTF-8, XML 1.0 legal characters only (also inside JSON strings), and
     for XML a hardened parse that refuses DOCTYPEs (xmlsafe.py);
  2. the grammar shipped in feedsvc/schemas/ (RELAX NG, XML Schema, JSON Schema)   -> grammars.py;
  3. rules a grammar cannot express: RFC 822 / RFC 3339 dates and their plausibility, absolute
     http(s) URLs (also inside content HTML), unique ids, the self link equal to the URL served,
     no markup in titles, the sitemap limits                                      -> rules.py,
     and the W3C Feed Validation Service's rule classes that apply to our formats: URIs, not IRIs,
     where a URI is expected (rules.py), one atom:updated per entry, content HTML within an
     allow-list and free of parse errors (html_content.py), known namespaces only (namespaces.py),
     OPML head elements and outline types (xmldocs.py); applied per format in xmldocs.py (RSS,
     Atom, OPML, sitemaps), jsonfeed.py, pages.py (HTML, AMP).
Other checks are added for a kind with `register_checker` (dispatch.py), as our AMP house rules
(amp_rules.py) are; the official AMP validator, a node process, runs over the AMP pages the
`validate` command checks, in one batch (amp_validator.py, command.py). The tests, the `validate` command (command.py)
and the VALIDATE_ON_RENDER debug mode (on_render.py, `init_app`) all call `validate_document`.
"""
from feedsvc.validate.command import check_target, feed_documents, page_documents, served_documents, validate_command
from feedsvc.validate.dispatch import Checker, guess_kind, register_checker, validate_document
from feedsvc.validate.on_render import init_app
from feedsvc.validate.problems import KINDS, Problem
from feedsvc.validate.rules import (
    html_url_problems,
    implausible_date_problem,
    iri_problem,
    non_ascii_url_problem,
    rfc822_date_problem,
    rfc3339_date_problem,
    self_link_problems,
    title_problem,
    url_problem,
    w3c_datetime_problem,
)

__all__ = ["Checker", "KINDS", "Problem", "check_target", "feed_documents", "guess_kind", "html_url_problems",
           "implausible_date_problem", "init_app", "iri_problem", "non_ascii_url_problem", "page_documents",
           "register_checker", "rfc3339_date_problem", "rfc822_date_problem", "self_link_problems",
           "served_documents", "title_problem", "url_problem", "validate_command", "validate_document",
           "w3c_datetime_problem"]
