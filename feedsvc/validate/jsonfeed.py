"""JSON Feed 1.1: strict JSON, characters XML could carry, the JSON Schema, then the rules in code."""
from __future__ import annotations

import json

from feedsvc.validate.grammars import validator
from feedsvc.validate.html_content import html_content_problems
from feedsvc.validate.problems import Problem
from feedsvc.validate.rules import (
    HREF_SCHEMES,
    decode,
    duplicates,
    html_url_problems,
    illegal_characters,
    implausible_date_problem,
    non_ascii_url_problem,
    normalised_url,
    rfc3339_date_problem,
    title_problem,
    url_problem,
)


def _unique_keys(pairs):
    keys = [k for k, _ in pairs]
    duplicated = sorted({k for k in keys if keys.count(k) > 1})
    if duplicated:
        raise ValueError(f"duplicate keys {', '.join(duplicated)}")
    return dict(pairs)


def _json_strings(value, path: str = "$"):
    """(path, string) for every key and string value in a decoded JSON document."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield f"{path} key {key!r}", key
            yield from _json_strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _json_strings(item, f"{path}[{index}]")


def _check_jsonfeed(body: bytes, url: str | None) -> list[Problem]:
    text, problems = decode(body)
    if text is None:
        return problems
    try:
        feed = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as err:
        return [Problem("json-syntax", err.msg, err.lineno, err.colno)]
    except ValueError as err:
        return [Problem("json-syntax", str(err))]
    for path, string in _json_strings(feed):
        problems += illegal_characters(string, path)
    for error in sorted(validator("jsonfeed-1.1.json").iter_errors(feed), key=lambda e: list(e.absolute_path)):
        where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        problems.append(Problem("schema:jsonfeed-1.1.json", f"{where}: {_schema_message(error)}"))
    if not isinstance(feed, dict):
        return problems
    items = [i for i in feed.get("items", []) if isinstance(i, dict)] if isinstance(feed.get("items"), list) else []
    problems += _json_feed_rules(feed, items, url)
    return problems


def _schema_message(error) -> str:
    """jsonschema's message, without the dump of a whole item when an anyOf of `required`s fails."""
    alternatives = error.validator_value if error.validator == "anyOf" else None
    if alternatives and all(set(a) == {"required"} for a in alternatives):
        names = ", ".join(name for a in alternatives for name in a["required"])
        return f"needs at least one of {names}"
    return error.message if len(error.message) <= 300 else error.message[:300] + "..."


def _json_feed_rules(feed: dict, items: list[dict], url: str | None) -> list[Problem]:
    problems = []

    def check_url(path: str, value, schemes=("http", "https")):
        if isinstance(value, str):
            if reason := url_problem(value, schemes):
                problems.append(Problem("absolute-url", f"{path}: {reason}"))
            elif reason := non_ascii_url_problem(value):
                problems.append(Problem("iri-not-uri", f"{path}: {reason}"))

    def check_authors(path: str, holder: dict):
        listed = holder.get("authors")
        authors = listed if isinstance(listed, list) else []
        for index, author in enumerate(authors + [holder.get("author")]):
            if isinstance(author, dict):
                where = f"{path}.authors[{index}]" if index < len(authors) else f"{path}.author"
                check_url(f"{where}.url", author.get("url"), HREF_SCHEMES)
                check_url(f"{where}.avatar", author.get("avatar"))

    for key in ("home_page_url", "feed_url", "next_url", "icon", "favicon"):
        check_url(f"$.{key}", feed.get(key))
    check_authors("$", feed)
    for index, hub in enumerate(feed.get("hubs") or []):
        if isinstance(hub, dict):
            check_url(f"$.hubs[{index}].url", hub.get("url"))
    titles = [("$.title", feed.get("title"))]
    for index, item in enumerate(items):
        path = f"$.items[{index}]"
        for key in ("url", "external_url", "image", "banner_image"):
            check_url(f"{path}.{key}", item.get(key))
        check_authors(path, item)
        for number, attachment in enumerate(item.get("attachments") or []):
            if isinstance(attachment, dict):
                check_url(f"{path}.attachments[{number}].url", attachment.get("url"))
        for key in ("date_published", "date_modified"):
            if isinstance(item.get(key), str):
                if reason := rfc3339_date_problem(item[key]):
                    problems.append(Problem("rfc3339-date", f"{path}.{key}: {reason}"))
                elif reason := implausible_date_problem(item[key]):
                    problems.append(Problem("implausible-date", f"{path}.{key}: {reason}", severity="warning"))
        if isinstance(item.get("content_html"), str):
            problems += html_url_problems(item["content_html"], None, f"{path}.content_html")
            problems += html_content_problems(item["content_html"], None, f"{path}.content_html")
        titles.append((f"{path}.title", item.get("title")))
    for path, title in titles:
        reason = title_problem(title) if isinstance(title, str) else None
        if reason:
            problems.append(Problem("title-markup", f"{path}: {reason}"))
    problems += duplicates([(str(i.get("id")), None) for i in items if "id" in i], "unique-id", "item id")
    if url is not None:
        feed_url = feed.get("feed_url")
        if not isinstance(feed_url, str):
            problems.append(Problem("self-link", f"no feed_url; it should be {url}"))
        elif normalised_url(feed_url) != normalised_url(url):
            problems.append(Problem("self-link", f"feed_url is {feed_url}, but the feed is served at {url}"))
    return problems


CHECKERS = {"jsonfeed": _check_jsonfeed}
