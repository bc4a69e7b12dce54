"""Hostile HTML in records is neutralised in every output, proven by parsing each output as a reader would.

Each case of tests/hostile/html/manifest.json becomes a record (its body from the case's file,
other fields from the case's `record`), and all of them are imported through the import command.
Then every output of every case — the RSS, Atom and JSON feeds (site, section, tag and author),
the canonical page, the AMP page, the embed card and the oEmbed html (JSON and XML) — is parsed
with a real parser, every piece a reader treats as HTML is parsed again with html5lib (as a
browser would), and tests/support/threats.py must find nothing: no script, no on* handler, no
javascript:/data: URL, no srcdoc, no SVG/MathML, no style. The same document must still validate
(validate_document) and still carry the readable Devanagari marker text of the body.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from lxml import etree
from werkzeug.exceptions import MethodNotAllowed, NotFound

from feedsvc.ingest.frames import DEFAULT_FRAME_HOSTS, KNOWN_PLAYERS, OTHER_PLAYER, frame_policy
from feedsvc.ingest.sanitize import sanitize_html
from feedsvc.validate import amp_rules, validate_document, xmlsafe
from tests.support.apps import BACKENDS, SITE_URL, AppFactory, fresh_database
from tests.support.records import VALID_RECORD
from tests.support.threats import amp_script, json_ld_script, parse_document, parse_fragment, text_of, threats

pytestmark = pytest.mark.postgresql_once  # parametrised over inputs, not over SQL: PostgreSQL runs the first

HOSTILE = Path(__file__).resolve().parent / "hostile" / "html"
MANIFEST = json.loads((HOSTILE / "manifest.json").read_text("utf-8"))
CASES = MANIFEST["cases"]
MARKER = MANIFEST["marker"]
FEED_FORMATS = {"rss": "rss.xml", "atom": "atom.xml", "jsonfeed": "feed.json"}
OUTPUTS = ("rss", "atom", "jsonfeed", "canonical", "amp", "embed", "oembed-json", "oembed-xml")
# Outputs that carry the article body (the card and oEmbed show the headline and summary only).
CARRY_BODY = {"rss", "atom", "jsonfeed", "canonical", "amp"}
# Which issue brings each route, for the skip message while it has not landed.
ROUTE_OWNERS = {"canonical": "pages (issue 5)", "amp": "pages (issue 5)", "embed": "partners (issue 6)",
                "oembed-json": "partners (issue 6)", "oembed-xml": "partners (issue 6)"}
ATOM = "{http://www.w3.org/2005/Atom}"
CONTENT_ENCODED = "{http://purl.org/rss/1.0/modules/content/}encoded"


def hostile_record(name: str, case: dict, index: int) -> dict:
    record = copy.deepcopy(VALID_RECORD)
    record.update(id=f"hostile-{name}", slug=f"hostile-{name}", title=f"शत्रुतापूर्ण सामग्री: {name}",
                  published=f"2025-08-01T{10 + index // 60:02d}:{index % 60:02d}:00+05:30",
                  body_html=(HOSTILE / case["file"]).read_text("utf-8"),
                  # A section, tag and author of its own, so each case's feeds hold that case alone.
                  section={"key": f"h-{name}", "name": "शत्रु खंड"}, tags=[{"key": f"h-{name}", "name": "शत्रु"}],
                  authors=[{"key": f"h-{name}", "name": "शत्रु लेखक"}])
    record.update(copy.deepcopy(case.get("record", {})))
    record["updated"] = record["published"]
    return record


@pytest.fixture(scope="module", params=BACKENDS)
def hostile_app(request, tmp_path_factory):
    """Every hostile record imported through `flask import-articles`, on each backend."""
    folder = tmp_path_factory.mktemp(f"hostile-{request.param}")
    records = folder / "records"
    records.mkdir()
    for index, (name, case) in enumerate(CASES.items()):
        (records / f"{name}.json").write_text(json.dumps(hostile_record(name, case, index), ensure_ascii=False),
                                              "utf-8")
    with fresh_database(request.param, folder) as url, AppFactory(url, instance=folder / "instance") as make_app:
        app = make_app(RATELIMIT_ENABLED=False)
        result = app.test_cli_runner().invoke(args=["import-articles", str(records)])
        assert result.exit_code == 0, result.output
        assert f"stored {len(CASES)} " in result.output, result.output
        yield app


def route_exists(app, path: str) -> bool:
    adapter = app.url_map.bind("news.example")
    try:
        adapter.match(path.split("?")[0], method="GET")
    except (NotFound, MethodNotAllowed):
        return False
    return True


def fetch(client, path: str) -> bytes:
    response = client.get(path, headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200, f"{path}: {response.status_code} {response.get_data()[:300]!r}"
    return response.get_data()


def valid(body: bytes, kind: str, path: str) -> None:
    problems = validate_document(body, kind, url=SITE_URL + path)
    assert not problems, f"{path} is not a valid {kind}:\n" + "\n".join(map(str, problems))


# ---- the pieces of each output that a reader treats as HTML ------------------------------------

def rss_html(root, link: str) -> dict[str, object]:
    """Channel title/description and the item's title, description and content:encoded (RSS text is HTML)."""
    channel = root.find("channel")
    pieces = {f"channel {tag}": channel.findtext(tag) or "" for tag in ("title", "description")}
    item = next(i for i in channel.iter("item") if i.findtext("link") == link)
    for tag in ("title", "description", CONTENT_ENCODED):
        pieces[f"item {tag.split('}')[-1]}"] = item.findtext(tag) or ""
    return pieces


def atom_html(root, link: str) -> dict[str, object]:
    """Every Atom text construct of type html (as escaped markup) or xhtml (as its div)."""
    entry = next(e for e in root.iter(f"{ATOM}entry")
                 if any(each.get("href") == link for each in e.iter(f"{ATOM}link")))
    pieces = {}
    for holder, label in ((root, "feed"), (entry, "entry")):
        for element in holder:
            kind = element.get("type")
            name = f"{label} {etree.QName(element).localname}"
            if kind == "html":
                pieces[name] = element.text or ""
            elif kind == "xhtml":
                pieces[name] = etree.tostring(element[0], encoding="unicode")
    return pieces


def jsonfeed_html(feed: dict, link: str) -> dict[str, object]:
    item = next(i for i in feed["items"] if i.get("url") == link)
    return {"item content_html": item.get("content_html", "")}


def feed_pieces(client, fmt: str, path: str, link: str, *, validate: bool) -> tuple[dict[str, str], bytes]:
    body = fetch(client, path)
    if validate:
        valid(body, fmt, path)
    if fmt == "jsonfeed":
        return jsonfeed_html(json.loads(body), link), body
    root = xmlsafe.fromstring(body)
    return (rss_html if fmt == "rss" else atom_html)(root, link), body


def scope_paths(record: dict) -> list[str]:
    """The case's own section, tag and author feeds (validated), then the site feed (threats only:
    it holds every case, and each case's validity is judged on its own feeds)."""
    return [f"/section/{record['section']['key']}", f"/tag/{record['tags'][0]['key']}",
            f"/author/{record['authors'][0]['key']}", ""]


# ---- the test -----------------------------------------------------------------------------------

def assert_no_threats(label: str, root, **options) -> None:
    found = threats(root, **options)
    assert not found, f"{label} still carries active content:\n" + "\n".join(f"  {t}: {d}" for t, d in found)


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("name", list(CASES))
def test_hostile_html_is_neutralised_in_every_output(hostile_app, name, output):
    client = hostile_app.test_client()
    record = hostile_record(name, CASES[name], list(CASES).index(name))
    link = f"{SITE_URL}/articles/{record['slug']}"
    page_path = {"canonical": f"/articles/{record['slug']}", "amp": f"/amp/{record['slug']}",
                 "embed": f"/embed/{record['slug']}", "oembed-json": f"/oembed?url={link}&format=json",
                 "oembed-xml": f"/oembed?url={link}&format=xml"}.get(output)
    if page_path and not route_exists(hostile_app, page_path):
        pytest.skip(f"no route for {page_path.split('?')[0]} yet: it comes with {ROUTE_OWNERS[output]}")

    body_text = ""
    if output in FEED_FORMATS:
        for scope in scope_paths(record):
            path = f"/feeds{scope}/{FEED_FORMATS[output]}?limit=200"
            pieces, _ = feed_pieces(client, output, path, link, validate=bool(scope))
            for where, html in pieces.items():
                fragment = parse_fragment(html)
                assert_no_threats(f"{path} {where}", fragment)
                body_text += text_of(fragment)
    elif output in ("canonical", "amp", "embed"):
        body = fetch(client, page_path)
        valid(body, {"canonical": "html", "amp": "amp", "embed": "html"}[output], page_path)
        allowed = {"canonical": json_ld_script, "amp": lambda s: json_ld_script(s) or amp_script(s),
                   "embed": lambda s: False}[output]
        document = parse_document(body)
        assert_no_threats(page_path, document, allowed_script=allowed, fragment=False)
        assert_frames_are_allowed_players(document)
        if output == "amp":
            assert amp_rules.check_house_rules(body.decode("utf-8")) == []
        body_text = text_of(document)
    else:
        body = fetch(client, page_path)
        data = json.loads(body) if output == "oembed-json" else \
            {child.tag: child.text for child in xmlsafe.fromstring(body)}
        assert data["type"] == "rich"
        fragment = parse_fragment(data["html"])
        assert_no_threats(f"{page_path} html", fragment, own_origin=SITE_URL)
        frames = [e for e in fragment.iter() if e.tag == "iframe"]
        assert [f.get("src") for f in frames] == [f"{SITE_URL}/embed/{record['slug']}"]
    if output in CARRY_BODY:
        assert MARKER in body_text, f"{output}: the body's text did not survive sanitising"


@pytest.mark.parametrize("name", list(CASES))
def test_each_hostile_case_really_carries_the_threats_it_names(name):
    """The corpus stays honest: the checker finds in each input what the manifest says is there."""
    case = CASES[name]
    sources = [(HOSTILE / case["file"]).read_text("utf-8")]
    sources += [value for value in _strings(case.get("record", {}))]
    found = {threat for source in sources for threat, _ in threats(parse_fragment(source))}
    assert set(case["threats"]) <= found, f"{name}: the input does not carry {set(case['threats']) - found}"
    assert MARKER in (HOSTILE / case["file"]).read_text("utf-8")


def assert_frames_are_allowed_players(document) -> None:
    """Every frame of a page (body frames, amp-iframe) is an allow-listed player, sandboxed by us."""
    policy = frame_policy()
    for frame in (e for e in document.iter() if e.tag in ("iframe", "amp-iframe")):
        player = policy.player_for(frame.get("src", ""))
        assert player is not None, f"a frame of {frame.get('src')!r} is not an allowed player"
        assert frame.get("sandbox") == player.sandbox and frame.get("referrerpolicy") == player.referrer_policy


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_hostile_records_do_not_break_the_shared_documents(hostile_app):
    """The site feeds hold every hostile record; the OPML, the directory and the sitemaps name their
    sections, tags and authors: all still valid."""
    client = hostile_app.test_client()
    shared = [(f"/feeds/{name}?limit=200", fmt) for fmt, name in FEED_FORMATS.items()]
    shared += [("/feeds.opml", "opml"), ("/feeds", "html"), ("/sitemaps/news.xml", "newssitemap")]
    for path, kind in shared:
        if not route_exists(hostile_app, path):
            continue
        body = fetch(client, path)
        valid(body, kind, path)
        if kind == "html":
            assert_no_threats(path, parse_document(body), allowed_script=json_ld_script, fragment=False)


# ---- frames: the sanitiser's rules --------------------------------------------------------------

BASE = "https://news.example.in"


def sanitized_fragment(body: str, **options):
    return parse_fragment(sanitize_html(body, BASE, **options))


def frames_and_links(fragment) -> tuple[list[dict], list[tuple[str, str]]]:
    frames = [dict(e.attrib) for e in fragment.iter("iframe")]
    links = [(e.get("href"), e.text) for e in fragment.iter("a")]
    return frames, links


def test_an_allow_listed_player_is_kept_sandboxed_lazy_and_with_a_referrer_policy():
    src = "https://www.youtube.com/embed/dQw4w9WgXcQ?start=10&rel=0"
    frames, links = frames_and_links(sanitized_fragment(
        f'<p>देखिए</p><iframe src="{src.replace("&", "&amp;")}" width="560" height="315" title="भाषण" allowfullscreen '
        'sandbox="allow-scripts allow-top-navigation" allow="camera; microphone" referrerpolicy="unsafe-url" '
        'loading="eager" onload="alert(1)" srcdoc="<b>x</b>"></iframe>'))
    player = KNOWN_PLAYERS["www.youtube.com/embed"]
    assert frames == [{"src": src, "width": "560", "height": "315", "title": "भाषण", "allowfullscreen": "",
                       "sandbox": player.sandbox, "referrerpolicy": "strict-origin-when-cross-origin",
                       "loading": "lazy", "allow": player.allow}]
    assert links == []


@pytest.mark.parametrize("entry", DEFAULT_FRAME_HOSTS)
def test_every_known_player_gets_scripts_but_never_top_navigation(entry):
    player = KNOWN_PLAYERS[entry]
    flags = player.sandbox.split()
    assert "allow-scripts" in flags and not [flag for flag in flags if "top-navigation" in flag]
    assert player.referrer_policy in ("strict-origin-when-cross-origin", "no-referrer")
    (frame,), _ = frames_and_links(sanitized_fragment(f'<iframe src="https://{entry}/x"></iframe>'))
    assert frame["sandbox"] == player.sandbox and frame["referrerpolicy"] == player.referrer_policy


@pytest.mark.parametrize("src, provider", [
    ("https://evil.example/login", "evil.example"),
    ("https://www.youtube.com.evil.example/embed/x", "www.youtube.com.evil.example"),  # look-alike host
    ("https://evil.example/www.youtube.com/embed/x", "evil.example"),
    ("https://www.youtube.com@evil.example/embed/x", "evil.example"),  # user info
    ("https://www.youtube.com:8443/embed/x", "YouTube"),  # another port
    ("https://www.youtube.com/embedded/x", "YouTube"),  # beside the prefix, not below it
    ("https://www.youtube.com/embed/../redirect?q=https://evil.example", "YouTube"),
    ("https://www.youtube.com/embed/%2e%2e/redirect", "YouTube"),
    ("https://youtu.be/dQw4w9WgXcQ", "YouTube"),  # a page, not a player
    ("http://www.youtube.com/embed/dQw4w9WgXcQ", "YouTube"),  # not https: no frame, but never nothing
    ("http://maps.google.com/maps?q=Delhi&output=embed", "Google Maps"),
    ("https://www.xn--11b7cb3a6a.xn--h2brj9c/map", "www.सरकार.भारत"),  # an IDN host is named as people read it
])
def test_a_frame_of_any_other_address_becomes_a_link_named_by_its_provider(src, provider):
    frames, links = frames_and_links(sanitized_fragment(f'<p>पहले<iframe src="{src}"></iframe>बाद में</p>'))
    assert frames == [] and links == [(src, f"{provider} पर देखें")]


def test_a_link_made_from_a_frame_is_named_by_its_title_and_keeps_the_text_around_it():
    fragment = sanitized_fragment('<p>पहले <iframe src="https://charts.example.com/7" title="चुनाव &quot;नतीजे&quot;">'
                                  'fallback</iframe> बाद में</p>')
    assert frames_and_links(fragment) == ([], [("https://charts.example.com/7",
                                                'charts.example.com पर देखें: चुनाव "नतीजे"')])
    assert text_of(fragment) == 'पहले charts.example.com पर देखें: चुनाव "नतीजे" बाद में'


@pytest.mark.parametrize("frame", [
    '<iframe src="javascript:alert(1)"></iframe>',
    '<iframe src=" JaVaScRiPt:alert(1)"></iframe>',
    '<iframe src="data:text/html,%3Cscript%3Ealert(1)%3C/script%3E"></iframe>',
    '<iframe srcdoc="&lt;script&gt;alert(1)&lt;/script&gt;" title="शीर्षक"></iframe>',
    '<iframe></iframe>',
])
def test_a_frame_without_an_https_source_is_dropped_leaving_no_link(frame):
    fragment = sanitized_fragment(f"<p>पहले{frame}बाद में</p>")
    assert frames_and_links(fragment) == ([], [])
    assert text_of(fragment) == "पहलेबाद में"


def test_the_configured_list_decides_and_an_added_host_gets_the_generic_sandbox():
    body = ('<iframe src="https://charts.example.com/embed/7"></iframe>'
            '<iframe src="https://www.youtube.com/embed/dQw4w9WgXcQ"></iframe>')
    frames, links = frames_and_links(sanitized_fragment(body, frame_hosts=("charts.example.com/embed",)))
    assert [(f["src"], f["sandbox"]) for f in frames] == [("https://charts.example.com/embed/7", OTHER_PLAYER.sandbox)]
    assert links == [("https://www.youtube.com/embed/dQw4w9WgXcQ", "YouTube पर देखें")]


def test_sanitising_twice_changes_nothing():
    body = ('<p>एक</p><iframe src="https://player.vimeo.com/video/76979871" title="वीडियो"></iframe>'
            '<iframe src="https://evil.example/x?a=1&amp;b=2"></iframe>')
    once = sanitize_html(body, BASE)
    assert sanitize_html(once, BASE) == once
