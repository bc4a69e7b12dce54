"""XML given to us anywhere is read without entities, DTDs or network: XXE, billion laughs and DTDs are refused.

The service reads outside XML in one place: the `validate` command (file and http(s) targets)
and `validate_document` behind it, through feedsvc.xmlsafe. Imports take JSON only, so an XML
file handed to the import is refused as not JSON. Every document of tests/hostile/xml points its
entities, DTDs, XIncludes, stylesheets and schema locations at a canary HTTP server on loopback:
the canary must never be asked for anything, no local file may leak into any message, documents
with a DOCTYPE are refused by rule, and each answer comes within the manifest's time bound.
"""
from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from feedsvc.validate import guess_kind, validate_document, xmlsafe
from tests.support.servers import serving

CORPUS = Path(__file__).resolve().parent / "hostile" / "xml"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text("utf-8"))
CASES = MANIFEST["cases"]
SECONDS = MANIFEST["seconds"]
WITH_DOCTYPE = [name for name in CASES if b"<!DOCTYPE" in (CORPUS / name).read_bytes().replace(b"\x00", b"")
                and not name.endswith(".html")]
# What a leaked local file would look like in a message.
SECRETS = [line for line in (Path("/etc/passwd").read_text().splitlines()[:1] + [Path("/etc/hostname").read_text().strip()])
           if len(line) >= 4]


class Canary(ThreadingHTTPServer):
    """Records every request; serves the corpus under /doc/ so the command can fetch it as a URL."""
    daemon_threads = True

    def __init__(self, documents: dict[str, bytes]):
        self.hits: list[str] = []
        self.documents = documents
        super().__init__(("127.0.0.1", 0), _CanaryHandler)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def canary_hits(self) -> list[str]:
        return [path for path in self.hits if not path.startswith("/doc/")]


class _CanaryHandler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.server.hits.append(self.path)
        name = self.path.removeprefix("/doc/")
        body = self.server.documents.get(name, b'<!ENTITY leak "canary was read">')
        self.send_response(200)
        self.send_header("Content-Type", "text/html" if name.endswith(".html") else "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args):
        pass


@pytest.fixture(scope="module")
def canary():
    with serving(Canary({})) as server:
        for name in CASES:
            raw = (CORPUS / name).read_bytes()
            if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
                text = raw.decode("utf-16").replace("{ORIGIN}", server.origin)
                server.documents[name] = text.encode("utf-16")
            else:
                server.documents[name] = raw.replace(b"{ORIGIN}", server.origin.encode())
        yield server


@pytest.fixture
def documents(canary, tmp_path):
    """The corpus on disk with {ORIGIN} filled in; the canary's record starts empty."""
    canary.hits.clear()
    for name, body in canary.documents.items():
        (tmp_path / name).write_bytes(body)
    return tmp_path


@pytest.fixture
def bare_runner(make_app):
    return make_app().test_cli_runner()


def assert_nothing_leaked(canary: Canary, text: str) -> None:
    assert canary.canary_hits() == [], f"the parser fetched {canary.canary_hits()}"
    for secret in SECRETS:
        assert secret not in text, "a local file's content reached the output"


@pytest.mark.parametrize("name", list(CASES))
def test_validate_document_refuses_declarations_and_never_fetches(canary, documents, name):
    case = CASES[name]
    started = time.monotonic()
    problems = validate_document((documents / name).read_bytes(), case["kind"])
    assert time.monotonic() - started < SECONDS
    rules = {p.rule for p in problems}
    if case["refused_rule"]:
        assert case["refused_rule"] in rules, f"{name}: {[str(p) for p in problems]}"
    if name == "xxe-utf16.xml":
        assert "utf-8" in rules  # refused before any XML parsing: our documents are UTF-8
    assert_nothing_leaked(canary, "\n".join(map(str, problems)))


@pytest.mark.parametrize("name", WITH_DOCTYPE)
def test_xmlsafe_refuses_every_doctype_whatever_the_encoding(canary, documents, name):
    started = time.monotonic()
    with pytest.raises(xmlsafe.UnsafeXMLError) as refused:
        xmlsafe.parse((documents / name).read_bytes())
    assert time.monotonic() - started < SECONDS
    assert "refused" in str(refused.value)
    assert_nothing_leaked(canary, str(refused.value))


@pytest.mark.parametrize("name", list(CASES))
def test_guessing_the_kind_of_a_hostile_document_is_inert(canary, documents, name):
    started = time.monotonic()
    guess_kind((documents / name).read_bytes())
    assert time.monotonic() - started < SECONDS
    assert_nothing_leaked(canary, "")


@pytest.mark.parametrize("name", list(CASES))
def test_validate_command_on_a_hostile_file(bare_runner, canary, documents, name):
    case = CASES[name]
    started = time.monotonic()
    result = bare_runner.invoke(args=["validate", str(documents / name)])
    assert time.monotonic() - started < SECONDS
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    if case["refused_rule"]:
        assert result.exit_code == 1 and case["refused_rule"] in result.output, result.output
    assert_nothing_leaked(canary, result.output)


@pytest.mark.parametrize("name", list(CASES))
def test_validate_command_on_a_hostile_url(bare_runner, canary, documents, name):
    case = CASES[name]
    result = bare_runner.invoke(args=["validate", "--kind", case["kind"], f"{canary.origin}/doc/{name}"])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    if case["refused_rule"]:
        assert result.exit_code == 1 and case["refused_rule"] in result.output, result.output
    assert_nothing_leaked(canary, result.output)


@pytest.mark.parametrize("name", ["xxe-local-file.xml", "billion-laughs.xml"])
def test_import_refuses_xml_as_not_json(bare_runner, canary, documents, name):
    result = bare_runner.invoke(args=["import-articles", str(documents / name)])
    assert result.exit_code == 1
    assert "is not valid JSON" in result.output, result.output
    assert_nothing_leaked(canary, result.output)


def test_the_leak_check_notices_a_parser_that_does_resolve_entities(documents):
    """The corpus and the leak check would catch a careless parser: lxml resolving entities reads the
    local file. (This libxml2 has no HTTP client, so only file: entities can be shown leaking.)"""
    from lxml import etree
    careless = etree.XMLParser(load_dtd=True, resolve_entities=True, no_network=False)
    title = etree.fromstring((documents / "xxe-local-file.xml").read_bytes(), careless).findtext("channel/title")
    assert any(secret in title for secret in SECRETS)
