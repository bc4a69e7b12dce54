"""The grammars in feedsvc/schemas/, loaded once per thread, and their errors as `Problem`s."""
from __future__ import annotations

import json
import threading
from pathlib import Path

from jsonschema import Draft202012Validator
from lxml import etree, isoschematron

from feedsvc.validate import xmlsafe
from feedsvc.validate.problems import NEWS, SITEMAP, Problem

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"

_local = threading.local()  # lxml validators keep their error log on the object: one per thread


def validator(name: str):
    cache = _local.__dict__.setdefault("validators", {})
    if name not in cache:
        cache[name] = _load_validator(name)
    return cache[name]


def _load_validator(name: str):
    if name == "sitemap-with-news":
        # Lax wildcards in sitemap.xsd validate news:news strictly once its schema is loaded too.
        wrapper = (f'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">'
                   f'<xs:import namespace="{SITEMAP}" schemaLocation="sitemap.xsd"/>'
                   f'<xs:import namespace="{NEWS}" schemaLocation="sitemap-news.xsd"/></xs:schema>')
        return etree.XMLSchema(etree.fromstring(wrapper.encode(), xmlsafe.hardened_parser(),
                                                base_url=str(SCHEMA_DIR / "wrapper.xsd")))
    path = SCHEMA_DIR / name
    if name.endswith(".json"):
        return Draft202012Validator(json.loads(path.read_text("utf-8")))
    doc = etree.parse(str(path), xmlsafe.hardened_parser())
    if name.endswith(".xsd"):
        return etree.XMLSchema(doc)
    if name == "atom.rng":
        return etree.RelaxNG(doc), isoschematron.Schematron(doc, store_report=True)
    return etree.RelaxNG(doc)


def grammar_problems(tree: etree._ElementTree, name: str) -> list[Problem]:
    rule = f"schema:{name.replace('sitemap-with-news', 'sitemap.xsd+sitemap-news.xsd')}"
    grammar = validator(name)
    schematron = None
    if isinstance(grammar, tuple):
        grammar, schematron = grammar
    problems = []
    if not grammar.validate(tree):
        problems = [Problem(rule, entry.message, entry.line or None, entry.column or None)
                    for entry in grammar.error_log]
    if schematron is not None and not schematron.validate(tree):
        problems.extend(_schematron_problems(tree, schematron.validation_report, rule))
    return problems


def _schematron_problems(tree, report, rule: str) -> list[Problem]:
    problems = []
    for failed in report.iterfind(".//{http://purl.oclc.org/dsdl/svrl}failed-assert"):
        text = " ".join("".join(failed.itertext()).split())
        try:
            hits = tree.xpath(failed.get("location"))
        except etree.XPathError:
            hits = []
        line = hits[0].sourceline if hits and isinstance(hits[0], etree._Element) else None
        problems.append(Problem(rule, text, line))
    return problems
