"""Parse XML we did not write (feeds, sitemaps, uploads) without XXE, entity bombs or network access.

Every module that reads XML handed to the service uses `parse` or `fromstring` from here, never
`lxml.etree.fromstring` directly. The parser never resolves entities, loads a DTD or touches the
network, keeps libxml2's size and depth limits (no huge_tree), and any document that carries a
DOCTYPE at all is refused: none of the formats we read needs one, and refusing it is simpler to
reason about than trusting each parser flag to neutralise what the DTD declares.
"""
from __future__ import annotations

import re

from lxml import etree

# A DOCTYPE or ENTITY declaration in the prolog (before the root element's start tag; a CDATA
# section in the body may quote "<!DOCTYPE html>" legitimately). Checked on the raw bytes first so a
# billion-laughs document is refused before libxml2 reads its declarations; the tree's docinfo is
# checked after parsing as well, for encodings (UTF-16, EBCDIC) this byte pattern cannot see.
_DECLARATION = re.compile(rb"<!\s*(DOCTYPE|ENTITY)\b", re.IGNORECASE)
_ROOT_START = re.compile(rb"<[A-Za-z_:\x80-\xff]")


class UnsafeXMLError(ValueError):
    """The document carries a DOCTYPE/ENTITY declaration; `line` and `column` say where (1-based)."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        self.line = line
        self.column = column
        where = f" (line {line}, column {column})" if line else ""
        super().__init__(message + where)


def hardened_parser(**overrides) -> etree.XMLParser:
    """A new lxml parser that cannot be made to read files, the network or expand entities."""
    options = dict(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                   huge_tree=False, remove_pis=False, recover=False)
    options.update(overrides)
    if options.get("resolve_entities") or options.get("load_dtd") or options.get("huge_tree"):
        raise ValueError("hardened_parser: entity resolution, DTD loading and huge_tree stay off")
    if not options.get("no_network", True):
        raise ValueError("hardened_parser: network access stays off")
    return etree.XMLParser(**options)


def _refuse_declarations(body: bytes) -> None:
    root = _ROOT_START.search(body)
    found = _DECLARATION.search(body, 0, root.start() if root else len(body))
    if found:
        line = body.count(b"\n", 0, found.start()) + 1
        column = found.start() - (body.rfind(b"\n", 0, found.start()) + 1) + 1
        raise UnsafeXMLError(
            f"{found.group(1).decode().upper()} declarations are refused: documents with a DTD or "
            "entity declarations are not accepted (XXE and entity-expansion protection)", line, column)


def parse(body: bytes | str, *, base_url: str | None = None, parser: etree.XMLParser | None = None
          ) -> etree._ElementTree:
    """Parse `body` (bytes; str is encoded as UTF-8) or raise UnsafeXMLError / lxml.etree.XMLSyntaxError."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    _refuse_declarations(body)
    tree = etree.ElementTree(etree.fromstring(body, parser or hardened_parser(), base_url=base_url))
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise UnsafeXMLError("DOCTYPE declarations are refused: documents with a DTD are not accepted")
    return tree


def fromstring(body: bytes | str, *, base_url: str | None = None) -> etree._Element:
    """The root element of `body`, parsed as `parse` does."""
    return parse(body, base_url=base_url).getroot()
