"""The article record: JSON Schema validation, normalisation, and errors that name the field."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources

import orjson

from feedsvc.ingest.body_images import checked_body
from feedsvc.ingest.frames import DEFAULT_FRAME_HOSTS
from feedsvc.ingest.images import ImageSettings, checked_image, one_stat_per_file
from feedsvc.ingest.romanise import romanise
from feedsvc.ingest.sanitize import (
    XML_UNSAFE_CHARS,
    clean_text,
    nesting_depth,
    plain_text,
    sanitize_html,
    truncate_words,
)
from feedsvc.ingest.urls import checked_url
from feedsvc.ingest.videos import has_video

SLUG_MAX = 80
KEY_MAX = 64
SUMMARY_MAX = 300
# A section, tag or author key, as the article schema's "key": anything else cannot name a scope.
KEY_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
# The UTC years a date may fall in: every renderer can show these in any zone (RSS's RFC 822, the
# pages' IST, monthly sitemaps, page cursors), where year 1 or 9999 with an offset overflows.
YEARS = range(1970, 2101)
# Real articles nest a dozen levels; libxml2 (AMP conversion, validation) stops at 256 and drops
# the rest of the body silently, and browsers flatten beyond a few hundred.
NESTING_MAX = 100


@dataclass(frozen=True)
class Problem:
    """One field of an incoming record that is wrong, and why: `field` is its path in the record
    ("tags[0].name"), which the API answers to the CMS as {"field", "reason"}.

    Not validate's Problem (a rule broken at a line and column of a document we serve): a record is
    not a document and has no lines, and the ingest layer imports nothing from the layers above it.
    """
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


class RecordError(ValueError):
    """A record that cannot be stored; `problems` lists every field that is wrong and why."""

    def __init__(self, problems: list[Problem], source: str | None = None):
        self.problems = problems
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(where + "; ".join(str(p) for p in problems))

    def __reduce__(self):
        # Exceptions pickle their message as their only argument; import workers send these whole.
        return RecordError, (self.problems, self.source)

    def as_json(self) -> dict:
        return {"error": "invalid record", "source": self.source,
                "problems": [{"field": p.field, "reason": p.reason} for p in self.problems]}


@dataclass(frozen=True)
class Keyed:
    key: str
    name: str


@dataclass(frozen=True)
class Author:
    key: str
    name: str
    url: str | None = None


@dataclass
class Article:
    """A validated record with derived fields filled in and its body made safe."""
    id: str
    slug: str
    url: str
    title: str
    summary: str
    body_html: str
    language: str
    section: Keyed
    tags: list[Keyed]
    authors: list[Author]
    published: datetime
    updated: datetime
    status: str
    image: dict | None = None
    embeds: list[dict] = field(default_factory=list)
    corrections: list[dict] = field(default_factory=list)
    record: dict = field(default_factory=dict)  # the record as given, for the API to hand back
    embargo_until: datetime | None = None
    significantly_updated: datetime | None = None
    syndication: dict = field(default_factory=dict)  # the record's, as given: see syndicated_to
    # What ingest changed or left out without refusing the record (a corrected image size, a refused
    # image file): told to the writer in the API's answer and the import's report, not stored.
    warnings: list[Problem] = field(default_factory=list)
    short_title: str | None = None  # plain text; aggregator profiles use it (feedsvc/render/profiles.py)
    # Ids of the same story in other languages, as the record lists them: feedsvc/render/translations.py
    # links those that are live and list this one back.
    translations: list[str] = field(default_factory=list)
    # The local images of the body as ingest probed them (feedsvc/ingest/body_images.py), by their src in
    # body_html: renderers give them srcset and sizes. Empty for a body stored before they were probed.
    body_images: dict[str, dict] = field(default_factory=dict)
    # has_video as the process that parsed the record worked it out (an import's worker, for its writer,
    # which asks twice a record: 8 µs of its ~250), None where it is not known.
    video_known: bool | None = field(default=None, repr=False, compare=False)

    @property
    def live(self) -> bool:
        return self.status == "published"

    @property
    def visible_from(self) -> datetime:
        """The instant the article may first be shown anywhere: `published`, or a later `embargo_until`."""
        return max(self.published, self.embargo_until) if self.embargo_until else self.published

    @property
    def has_video(self) -> bool:
        """A player or video file of its own: the article is in the video scope (store.SCOPE_KINDS)."""
        return self.video_known if self.video_known is not None else has_video(self.embeds, self.body_html)

    @property
    def in_feeds(self) -> bool:
        return self.syndication.get("feeds", True)

    @property
    def in_news_sitemap(self) -> bool:
        return self.syndication.get("news_sitemap", True)

    def syndicated_to(self, profile: str) -> bool:
        """Whether the feed profile named `profile` (an aggregator's) may carry the article."""
        return self.in_feeds and profile not in self.syndication.get("exclude_profiles", ())


@lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(resources.files("feedsvc").joinpath("schemas/article.json").read_text("utf-8"))


@lru_cache(maxsize=1)
def _validator():
    # jsonschema-rs: the import path validates a million records, and it is ~500x faster than jsonschema.
    # Imported here, not with the module: 6 MiB RSS that a server worker only needs once a write arrives
    # (serving reads stored articles, never validating them; bench row worker-rss-1m).
    import jsonschema_rs

    return jsonschema_rs.validator_for(schema(), validate_formats=True)


def _path(error) -> str:
    out = ""
    for part in error.instance_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(record)"


def _reason(error) -> str:
    kind = type(error.kind).__name__
    if kind == "Required":
        return f"required field '{error.kind.property}' is missing"
    if kind == "AdditionalProperties":
        names = ", ".join(f"'{name}'" for name in error.kind.unexpected)
        return f"unknown field {names}: unknown fields are refused, not dropped"
    if kind in ("Pattern", "Format") and "datetime" in error.schema_path:
        return (f"{error.instance!r} is not a date-time with a UTC offset (e.g. 2025-07-23T15:30:00+05:30); "
                "a time without an offset is refused, not guessed")
    if kind == "MaxLength":
        return f"is {len(error.instance)} characters long; at most {error.kind.limit} are allowed"
    if kind == "MaxItems":
        return f"has {len(error.instance)} items; at most {error.kind.limit} are allowed"
    message = error.message
    return message if len(message) < 300 else message[:300] + "…"


def _text_problems(record: dict) -> list[Problem]:
    """Characters no XML feed can carry, anywhere in the record (an explicit stack: this runs per record)."""
    problems, stack = [], [("", record)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            bad = XML_UNSAFE_CHARS.search(value)
            if bad:
                problems.append(Problem(path or "(record)", f"contains the character U+{ord(bad.group()):04X} at "
                                                            f"position {bad.start()}, which feeds cannot carry (XML 1.0 §2.2)"))
        elif isinstance(value, dict):
            stack.extend((f"{path}.{k}" if path else str(k), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(value))
    return sorted(problems, key=lambda p: p.field)


# What a character of XML_UNSAFE_CHARS leaves in UTF-8 JSON text: DEL; the lead byte of U+0080-U+00BF
# (the C1 controls among them) or of U+F000-U+FFFF (U+FFFE, U+FFFF); or an escape (\u, \b, \f).
# C0 controls cannot stand raw in JSON, nor surrogates in UTF-8: both parsers refuse such text.
_UNSAFE_LEAD_BYTES = (b"\x7f", b"\xc2", b"\xef")
_UNSAFE_ESCAPE = re.compile(rb"\\[ubf]")


def may_carry_unsafe_chars(json_text: bytes) -> bool:
    """False when JSON text cannot decode to strings holding XML_UNSAFE_CHARS: a few memchr-speed
    scans that spare most imported records the walk over every string."""
    return any(lead in json_text for lead in _UNSAFE_LEAD_BYTES) or _UNSAFE_ESCAPE.search(json_text) is not None


def _parse_time(value: str, name: str, problems: list[Problem]) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        problems.append(Problem(name, f"{value!r} is not an ISO 8601 date-time"))
        return None
    if parsed.tzinfo is None:
        problems.append(Problem(name, f"{value!r} has no UTC offset; refusing to guess the time zone"))
        return None
    try:
        utc_year = parsed.astimezone(timezone.utc).year
    except OverflowError:  # 0001-01-01T00:00+05:30 is in year 0 in UTC, which datetime cannot hold
        utc_year = None
    if utc_year not in YEARS:
        problems.append(Problem(name, f"{value!r} is outside the years {YEARS.start} to {YEARS[-1]} (UTC)"))
        return None
    return parsed


def _url_problems(data: dict, site_url: str) -> list[Problem]:
    """Every URL field, as documents will show it (site paths under `site_url`), through the renderers' parsers."""
    links = [("url", data.get("url"))]
    links += [("image.url", (data.get("image") or {}).get("url"))]
    links += [(f"authors[{i}].url", author.get("url")) for i, author in enumerate(data["authors"])]
    links += [(f"embeds[{i}].url", embed["url"]) for i, embed in enumerate(data.get("embeds", []))]
    problems = []
    for name, link in links:
        if link is None:
            continue
        try:
            checked_url(_absolute(link, site_url))
        except ValueError as exc:
            problems.append(Problem(name, f"{link!r} {exc}"))
    return problems


def valid_key(key: str) -> bool:
    return len(key) <= KEY_MAX and bool(KEY_PATTERN.match(key))


def slugify(text: str, limit: int = SLUG_MAX) -> str:
    """Readable Latin slug: romanised (Hindi as Hindi readers spell it), lower case, hyphens, cut at a word boundary."""
    words = re.findall(r"[a-z0-9]+", romanise(text).replace("'", ""))
    slug = ""
    for word in words:
        candidate = f"{slug}-{word}" if slug else word
        if len(candidate) > limit:
            break
        slug = candidate
    return slug or (words[0][:limit] if words else "")


def parse_record(data, *, site_url: str, source: str | None = None, json_text: bytes | None = None,
                 frame_hosts: tuple[str, ...] = DEFAULT_FRAME_HOSTS, images: ImageSettings | None = None) -> Article:
    """Validate one record and derive what it leaves out; raises RecordError listing every problem.

    `json_text`, the UTF-8 JSON the record was decoded from, lets most records skip a costly check.
    With `images`, local images (the lead and those in the body) are probed and their renditions made
    (images.checked_image, body_images.checked_body).
    """
    if not isinstance(data, dict):
        raise RecordError([Problem("(record)", f"expected a JSON object, got {type(data).__name__}")], source)
    problems = _text_problems(data) if json_text is None or may_carry_unsafe_chars(json_text) else []
    if not problems:
        problems = [Problem(_path(e), _reason(e)) for e in _validator().iter_errors(data)]
    if problems:
        raise RecordError(problems, source)

    published = _parse_time(data["published"], "published", problems)
    updated = _parse_time(data["updated"] if "updated" in data else data["published"], "updated", problems)
    if published and updated and updated < published:
        problems.append(Problem("updated", "is earlier than published"))
    corrected = [_parse_time(c["date"], f"corrections[{i}].date", problems)
                 for i, c in enumerate(data.get("corrections", []))]
    if updated and corrected and None not in corrected:
        # A correction is an update, whatever `updated` says.
        updated = max(updated, *(when for when in corrected if when is not None))
    embargo_until = _optional_time(data, "embargo_until", problems)
    significantly_updated = _optional_time(data, "significantly_updated", problems)
    if significantly_updated and published and updated and not published <= significantly_updated <= updated:
        problems.append(Problem("significantly_updated", "is not between published and updated"))
    problems += _url_problems(data, site_url)
    title = clean_text(data["title"])
    if not title:
        problems.append(Problem("title", "is empty once invisible characters are removed"))
    short_title = clean_text(data["short_title"]) if "short_title" in data else None
    if short_title == "":
        problems.append(Problem("short_title", "is empty once invisible characters are removed"))
    names = [("section.name", data["section"]["name"])] + \
        [(f"{field}[{i}].name", item["name"]) for field in ("tags", "authors") for i, item in enumerate(data.get(field, []))]
    problems += [Problem(field, "is empty once invisible characters and markup are removed")
                 for field, name in names if not clean_text(name)]
    problems += translation_problems(data["id"], data.get("translations", []))
    slug = data.get("slug") or slugify(title) or slugify(data["id"])
    if not slug:
        problems.append(Problem("slug", "cannot be derived from the title; give one"))
    if problems or published is None or updated is None:   # a time that did not parse is a problem already
        raise RecordError(problems, source)

    # Links to the site itself are kept as site paths, made absolute when a document is built
    # (feedsvc/render/links.py): a new site URL then moves every link and the store stays as it is.
    url = data.get("url") or f"/articles/{slug}"
    # xml_safe_input: every string was checked above.
    # Relative links in the body are relative to the article itself (RFC 3986 §5).
    body = sanitize_html(data["body_html"], url, xml_safe_input=True, frame_hosts=frame_hosts)
    # Depth never exceeds the number of tags, so most bodies need no count at all.
    if body.count("<") > NESTING_MAX and nesting_depth(body) > NESTING_MAX:
        raise RecordError([Problem("body_html", f"nests elements {nesting_depth(body)} levels deep; at most "
                                                f"{NESTING_MAX} levels are accepted")], source)
    summary = clean_text(data.get("summary") or truncate_words(plain_text(body), SUMMARY_MAX))
    image = dict(data["image"]) if data.get("image") else None
    body_images: dict[str, dict] = {}
    warnings = []
    if images is not None:
        image, body, body_images, warnings = checked_media(image, body, site_url, images)
    authors = [Author(key=a.get("key") or slugify(a["name"], KEY_MAX) or "author", name=clean_text(a["name"]),
                      url=a.get("url"))
               for a in data["authors"]]
    return Article(
        id=data["id"], slug=slug, url=url, title=title, summary=summary, body_html=body,
        language=data.get("language", "hi"),
        section=Keyed(data["section"]["key"], clean_text(data["section"]["name"])),
        tags=_unique([Keyed(t["key"], clean_text(t["name"])) for t in data.get("tags", [])]),
        authors=_unique(authors), published=published, updated=updated,
        status=data.get("status", "published"), image=image, embeds=list(data.get("embeds", [])),
        corrections=list(data.get("corrections", [])), record=data, embargo_until=embargo_until,
        significantly_updated=significantly_updated, syndication=dict(data.get("syndication", {})),
        warnings=warnings,
        short_title=short_title, translations=list(data.get("translations", [])), body_images=body_images,
    )


def checked_media(image: dict | None, safe_body: str, site_url: str,
                  images: ImageSettings) -> tuple[dict | None, str, dict[str, dict], list[Problem]]:
    """(lead image, body, body images, warnings): a record's lead image (as the record gives it) and its
    sanitised body with their local files probed and renditions made (images.checked_image,
    body_images.checked_body), for parse_record and for a backfill of articles stored before."""
    warnings = []
    with one_stat_per_file():   # a file shown as the lead and in the body, or twice in it, is looked at once
        if image:
            # The media checks find the file by the URL documents will show; the store keeps the record's path.
            checked, notes = checked_image(dict(image, url=_absolute(image["url"], site_url)), images)
            image = dict(checked, url=image["url"]) if checked else None
            warnings = [Problem(name, reason) for name, reason in notes]
        body, body_images, notes = checked_body(safe_body, site_url, images)
    return image, body, body_images, warnings + [Problem(name, reason) for name, reason in notes]


def translation_problems(article_id: str, translations: list[str]) -> list[Problem]:
    """What the record contract cannot say about `translations`: an article is not its own translation.
    An id not stored yet is no problem (its record may come later): pages link only what they find."""
    return [Problem(f"translations[{i}]", f"{other!r} is this article's own id; list the ids of the other languages' "
                                          "articles")
            for i, other in enumerate(translations) if other == article_id]


def _optional_time(data: dict, name: str, problems: list[Problem]) -> datetime | None:
    return _parse_time(data[name], name, problems) if name in data else None


def _absolute(link: str, site_url: str) -> str:
    return site_url + link if link.startswith("/") else link


def _unique(items: list) -> list:
    seen, out = set(), []
    for item in items:
        if item.key not in seen:
            seen.add(item.key)
            out.append(item)
    return out


def article_to_json(article: Article) -> str:
    """The stored form of an Article: what feeds and pages render from, without re-parsing the record."""
    return encode_article(article).decode()


def encode_article(article: Article) -> bytes:
    """article_to_json as UTF-8, which is what orjson makes: the import's workers send it on undecoded."""
    # orjson: this runs once per article written and its loads once per article rendered; it writes
    # the same compact UTF-8 JSON as json.dumps(ensure_ascii=False), several times faster.
    return orjson.dumps(_stored_form(article))


def encode_article_and_head(article: Article) -> tuple[bytes, bytes]:
    """encode_article, and the same without the body, summary and images: the head that an import's
    writer decodes (ingest.write.Incoming.__reduce__). One dict for both: making it is most of the cost
    (12 µs a record, the second encoding 2 µs)."""
    stored = _stored_form(article)
    whole = orjson.dumps(stored)
    stored.update(body_html="", summary="", image=None)
    stored.pop("body_images", None)
    return whole, orjson.dumps(stored)


def _stored_form(article: Article) -> dict:
    return {
        "id": article.id, "slug": article.slug, "url": article.url, "title": article.title,
        "summary": article.summary, "body_html": article.body_html, "language": article.language,
        "section": [article.section.key, article.section.name],
        "tags": [[t.key, t.name] for t in article.tags],
        "authors": [[a.key, a.name, a.url] for a in article.authors],
        "published": article.published.isoformat(), "updated": article.updated.isoformat(),
        "status": article.status, "image": article.image, "embeds": article.embeds,
        "corrections": article.corrections,
        "embargo_until": _isoformat(article.embargo_until),
        "significantly_updated": _isoformat(article.significantly_updated),
        "syndication": article.syndication,
        **({"short_title": article.short_title} if article.short_title else {}),
        **({"translations": article.translations} if article.translations else {}),
        **({"body_images": article.body_images} if article.body_images else {}),
    }


def _isoformat(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def record_to_json(record: dict) -> str:
    """The stored form of a record as given: canonical JSON, so an unchanged re-import compares equal as text."""
    return encode_record(record).decode()


def encode_record(record: dict) -> bytes:
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)


def article_from_json(text: str | bytes, record: dict | None = None, video_known: bool | None = None) -> Article:
    d = orjson.loads(text)
    return Article(
        id=d["id"], slug=d["slug"], url=d["url"], title=d["title"], summary=d["summary"],
        body_html=d["body_html"], language=d["language"], section=Keyed(*d["section"]),
        tags=[Keyed(*t) for t in d["tags"]], authors=[Author(*a) for a in d["authors"]],
        published=datetime.fromisoformat(d["published"]), updated=datetime.fromisoformat(d["updated"]),
        status=d["status"], image=d["image"], embeds=d["embeds"], corrections=d["corrections"],
        record=record or {}, embargo_until=_from_isoformat(d.get("embargo_until")),
        significantly_updated=_from_isoformat(d.get("significantly_updated")), syndication=d.get("syndication") or {},
        short_title=d.get("short_title"), translations=d.get("translations") or [],
        body_images=d.get("body_images") or {}, video_known=video_known,
    )


def _from_isoformat(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
