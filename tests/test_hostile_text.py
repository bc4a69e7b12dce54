"""Hostile text in records gets a clear error or a safe normalisation: never a 500, never an invalid feed.

The cases are data (tests/hostile/text/cases.json): XML-illegal control characters, lone
surrogates, noncharacters and bytes that are not UTF-8 are refused with a 422 (API) or a rejected
line (import) naming the field; 100 KB titles and 10,000 tags are refused by the schema's limits;
bidi overrides are removed; ZWJ/ZWNJ inside Devanagari conjuncts, decomposed nuktas, combining
marks, emoji and `]]>` pass through byte for byte; huge and deeply nested bodies are stored and
every output of them is still served, valid, by every route.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from werkzeug.exceptions import MethodNotAllowed, NotFound

from feedsvc.validate import validate_document, xmlsafe
from tests.support.apps import SITE_URL
from tests.support.records import VALID_RECORD
from tests.support.threats import parse_document

pytestmark = pytest.mark.postgresql_once  # parametrised over inputs, not over SQL: PostgreSQL runs the first

CASES = json.loads((Path(__file__).resolve().parent / "hostile" / "text" / "cases.json").read_text("utf-8"))["cases"]
ATOM = "{http://www.w3.org/2005/Atom}"


def expand(value):
    """The generators of cases.json: repeated text, many tags, deep nesting."""
    if not isinstance(value, dict):
        return value
    if "repeat" in value:
        return value["repeat"] * value["times"]
    if "tags" in value:
        width = value.get("name_length", 10)
        return [{"key": f"tag-{i}", "name": (f"टैग {i} " * width)[:width]} for i in range(value["tags"])]
    if "nested" in value:
        tag = value["nested"]
        return f"<{tag}>" * value["depth"] + value["text"] + f"</{tag}>" * value["depth"]
    return {key: expand(item) for key, item in value.items()}


def case_record(name: str) -> dict:
    index = list(CASES).index(name)
    record = copy.deepcopy(VALID_RECORD)
    record.update(id=f"text-{index}", slug=f"text-{index}", section={"key": f"text-{index}", "name": "पाठ"})
    record.update({field: expand(value) for field, value in CASES[name]["set"].items()})
    return record


def record_bytes(name: str) -> bytes:
    # ensure_ascii: a lone surrogate can only travel as a \ud800 escape, as a CMS would send it.
    raw = json.dumps(case_record(name), ensure_ascii=True).encode("ascii")
    if "raw" in CASES[name]:
        raw = raw.replace(b"RAW", bytes.fromhex(CASES[name]["raw"]))
    return raw


def route_exists(app, path: str) -> bool:
    try:
        app.url_map.bind("news.example").match(path.split("?")[0], method="GET")
    except (NotFound, MethodNotAllowed):
        return False
    return True


def put(client, api_headers, name: str):
    record = case_record(name)
    return client.put(f"/api/articles/{record['id']}", data=record_bytes(name),
                      headers={**api_headers, "Content-Type": "application/json"})


REFUSED = [name for name, case in CASES.items() if case["expect"] == "refused"]
STORED = [name for name, case in CASES.items() if case["expect"] == "stored"]


@pytest.mark.parametrize("name", REFUSED)
def test_refused_text_gets_a_clear_422_naming_the_field(client, api_headers, name):
    case = CASES[name]
    response = put(client, api_headers, name)
    assert response.status_code in (400, 422), response.get_data()[:300]
    body = response.get_json()
    if response.status_code == 422:
        problems = {p["field"]: p["reason"] for p in body["problems"]}
        assert case["field"] in problems, f"{name}: the error names {list(problems)}, not {case['field']}"
        assert case["reason"] in problems[case["field"]], problems[case["field"]]
    else:  # bytes that are not UTF-8 JSON are a malformed request, not an invalid record
        assert case["reason"] in body["error"]
    record_id = case_record(name)["id"]
    assert client.get(f"/api/articles/{record_id}", headers=api_headers).status_code == 404


@pytest.mark.parametrize("name", REFUSED)
def test_refused_text_is_rejected_by_the_import_naming_the_field(app, runner, tmp_path, name):
    case = CASES[name]
    path = tmp_path / f"{name}.json"
    path.write_bytes(record_bytes(name))
    result = runner.invoke(args=["import-articles", str(path)])
    assert result.exit_code == 1, result.output
    assert f"{case['field']}: " in result.output and case["reason"] in result.output, result.output
    assert "stored 0 " in result.output


def shown_titles(kind: str, body: bytes, article_url: str) -> list[str]:
    """The item titles a reader of this output sees for the article."""
    if kind == "jsonfeed":
        return [i["title"] for i in json.loads(body)["items"] if i["url"] == article_url]
    root = xmlsafe.fromstring(body)
    if kind == "rss":
        return [i.findtext("title") for i in root.iter("item") if i.findtext("link") == article_url]
    return [e.findtext(f"{ATOM}title") for e in root.iter(f"{ATOM}entry")
            if any(link.get("href") == article_url for link in e.iter(f"{ATOM}link"))]


@pytest.mark.postgresql_once(per=lambda params: params["name"])  # each text is stored: every one on both stores
@pytest.mark.parametrize("name", STORED)
def test_accepted_text_is_served_valid_by_every_output(app, client, api_headers, name):
    case = CASES[name]
    record = case_record(name)
    response = put(client, api_headers, name)
    assert response.status_code == 201, response.get_data()[:500]
    article_url = f"{SITE_URL}/articles/{record['slug']}"
    feeds = {"rss": "rss.xml", "atom": "atom.xml", "jsonfeed": "feed.json"}
    outputs = [(f"/feeds/section/{record['section']['key']}/{file}", kind) for kind, file in feeds.items()]
    outputs += [(f"/articles/{record['slug']}", "html"), (f"/amp/{record['slug']}", "amp"),
                (f"/embed/{record['slug']}", "html"), (f"/oembed?url={article_url}&format=json", "oembed"),
                (f"/oembed?url={article_url}&format=xml", "oembed-xml")]
    served = 0
    for path, kind in outputs:
        if not route_exists(app, path):
            continue
        response = client.get(path, headers={"Accept-Encoding": "identity"})
        assert response.status_code == 200, f"{path}: {response.status_code} {response.get_data()[:300]!r}"
        body = response.get_data()
        served += 1
        if kind == "oembed":
            assert json.loads(body)["type"] == "rich"
            continue
        if kind == "oembed-xml":
            assert xmlsafe.fromstring(body).findtext("type") == "rich"
            continue
        problems = validate_document(body, kind, url=SITE_URL + path)
        assert not problems, f"{path} ({kind}) is invalid:\n" + "\n".join(map(str, problems[:20]))
        if "title" in case and kind in feeds:
            assert shown_titles(kind, body, article_url) == [case["title"]], path
        elif "title" in case:
            assert case["title"] in "".join(parse_document(body).itertext()), path
    assert served >= 3


def test_bidi_controls_are_removed_but_joiners_kept():
    """The normalisation itself, named: what a headline loses and what it keeps."""
    from feedsvc.ingest.records import parse_record
    record = copy.deepcopy(VALID_RECORD)
    record["title"] = "\u202eक्\u200dष\u202c \u2066क्\u200cष\u2069"
    article = parse_record(record, site_url=SITE_URL)
    assert article.title == "क्\u200dष क्\u200cष"


def test_a_json_nesting_bomb_in_an_import_is_one_rejected_line_not_a_crash(app, runner, tmp_path):
    """json gives up on '[[[[...' with RecursionError; the import reports the line and stores the rest."""
    good = [dict(VALID_RECORD, id=f"around-{i}", slug=f"around-{i}") for i in range(2)]
    path = tmp_path / "batch.jsonl"
    path.write_text(json.dumps(good[0], ensure_ascii=False) + "\n" + "[" * 100_000 + "\n"
                    + json.dumps(good[1], ensure_ascii=False) + "\n", "utf-8")
    result = runner.invoke(args=["import-articles", str(path)])
    assert result.exit_code == 1, result.output
    assert f"{path}:2: (file): is not valid JSON: nested too deeply" in result.output
    assert "stored 2 " in result.output
