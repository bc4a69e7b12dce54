"""`flask validate`: files, URLs, or --all (every feed, OPML, sitemap and page the app serves)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import click
import lxml.html
from flask.cli import with_appcontext

from feedsvc import profiles
from feedsvc.ops import access_log, desk_checks
from feedsvc.render import profiles as shaping
from feedsvc.render.feeds import urls
from feedsvc.render.feeds.formats import FORMATS
from feedsvc.render.pages import article_path
from feedsvc.validate import amp_validator, xmlsafe
from feedsvc.validate.dispatch import guess_kind, validate_document
from feedsvc.validate.problems import KINDS, NS, SITEMAP_MAX_BYTES, Problem
from feedsvc.validate.profile_rules import profile_problems
from feedsvc.web import db, profile_feeds, ratelimit

MAX_FETCH_BYTES = SITEMAP_MAX_BYTES + 1024 * 1024
FETCH_TIMEOUT = 30


@dataclass
class Outcome:
    target: str
    kind: str | None
    problems: list[Problem]

    def as_json(self) -> dict:
        return {"target": self.target, "kind": self.kind, "ok": not self.problems,
                "problems": [p.as_json() for p in self.problems]}


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urlsplit(newurl).scheme not in ("http", "https"):
            raise OSError(f"redirected to {newurl}; only http and https URLs are fetched")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_opener = urllib.request.build_opener(_HttpOnlyRedirects)


def _fetch_url(url: str) -> tuple[bytes, str | None]:
    """The body (at most MAX_FETCH_BYTES) and media type of an http(s) URL; redirects stay on http(s)."""
    request = urllib.request.Request(url, headers={"Accept-Encoding": "identity", "User-Agent": "feedsvc-validate"})
    with _opener.open(request, timeout=FETCH_TIMEOUT) as response:  # nosec B310: only http(s) reaches here
        return _capped(response.read(MAX_FETCH_BYTES + 1)), response.headers.get("Content-Type")


def _read_file(path: str) -> bytes:
    """A local file, read no further than the cap (it may be a device or a file still growing)."""
    with open(path, "rb") as handle:
        return _capped(handle.read(MAX_FETCH_BYTES + 1))


def _capped(body: bytes) -> bytes:
    if len(body) > MAX_FETCH_BYTES:
        raise OSError(f"larger than {MAX_FETCH_BYTES:,} bytes; not validated")
    return body


def _validated(body: bytes, kind: str, url: str | None) -> list[Problem]:
    try:
        return validate_document(body, kind, url=url)
    except RecursionError:  # JSON nested thousands deep: the parsers recurse once per level
        return [Problem("too-deep", "nested too deeply to validate; no feed or page nests like this")]


def with_official_amp_validator(checked: list[tuple[Outcome, bytes]]) -> None:
    """Add the official AMP validator's errors and warnings to each AMP page's outcome, in one batch
    (a node process costs about a second); without node or its npm package (`make node_modules`),
    AMP pages are held to the checks of validate/pages.py and amp_rules.py only."""
    pages = [(outcome, body) for outcome, body in checked if outcome.kind == "amp" and body]
    if not pages:
        return
    try:
        results = amp_validator.validate_amp_many([body.decode("utf-8", "replace") for _, body in pages])
    except amp_validator.AmpValidatorUnavailable:
        return
    except (amp_validator.AmpValidatorFailed, OSError, subprocess.SubprocessError) as exc:
        results = [[Problem("amp-validator", str(exc))]] * len(pages)
    for (outcome, _), problems in zip(pages, results, strict=True):
        outcome.problems.extend(problems)


def check_target(target: str, kind: str | None = None, url: str | None = None, profile=None) -> Outcome:
    """Validate a file or an http(s) URL; the URL is also the self link the document must carry.
    With a `profile` (feedsvc.profiles.Profile), its rules are checked as well."""
    try:
        if re.match(r"https?://", target):
            body, content_type = _fetch_url(target)
            url = url or target
        else:
            body, content_type = _read_file(target), None
    except OSError as err:
        return Outcome(target, kind, [Problem("fetch", str(err))])
    kind = kind or guess_kind(body, content_type)
    if kind is None:
        return Outcome(target, None, [Problem("kind", "cannot tell what kind of document this is; use --kind")])
    problems = _validated(body, kind, url)
    if profile is not None:
        problems += profile_problems(profile, body, kind)
    outcome = Outcome(target, kind, problems)
    with_official_amp_validator([(outcome, body)])
    return outcome


def check_served(client, url: str, kind: str | None = None) -> tuple[Outcome, bytes]:
    """Fetch an absolute URL of this app through its test client and validate it."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    response = client.get(path, headers={"Accept-Encoding": "identity"})
    body = response.get_data()
    if response.status_code != 200:
        return Outcome(path, kind, [Problem("http-status", f"{response.status_code} for {path}")]), b""
    kind = kind or guess_kind(body, response.content_type)
    if kind is None:
        return Outcome(path, None, [Problem("kind", f"unknown document kind ({response.content_type})")]), body
    return Outcome(path, kind, validate_document(body, kind, url=url)), body


def served_documents(app) -> list[Outcome]:
    """Every document the app serves: `feed_documents` and `page_documents`."""
    return feed_documents(app) + page_documents(app)


@contextmanager
def _unthrottled(app):
    """Rate limits are for readers on the network; a validation run asks for every feed at once."""
    with ratelimit.suspended(app):
        client = app.test_client()
        client.environ_base["feedsvc.internal"] = True   # the app reading itself: not traffic for metrics or the desk
        yield client


def feed_documents(app) -> list[Outcome]:
    """/feeds.opml, every feed it lists, the /feeds directory page and the sitemaps."""
    site = app.config["SITE_URL"].rstrip("/")
    with _unthrottled(app) as client:
        opml, body = check_served(client, site + urls.OPML, "opml")
        outcomes = [opml]
        for feed_url in _feed_urls(body):
            outcomes.append(check_served(client, feed_url)[0])
        outcomes.append(check_served(client, f"{site}/feeds", "html")[0])
        return outcomes + _sitemap_outcomes(client, site)


def _feed_urls(opml: bytes) -> list[str]:
    """The xmlUrl of every outline; the OPML lists the RSS feeds, and by the feed URL contract
    (.../rss.xml, .../atom.xml, .../feed.json side by side) the Atom and JSON feeds are beside them."""
    try:
        outlines = list(xmlsafe.fromstring(opml).iter("outline")) if opml else []
    except (ValueError, SyntaxError):  # UnsafeXMLError, XMLSyntaxError: already reported for the OPML
        outlines = []
    urls = []
    for outline in outlines:
        xml_url = outline.get("xmlUrl")
        if not xml_url:
            continue
        urls.append(xml_url)
        if urlsplit(xml_url).path.endswith("/rss.xml"):
            urls += [xml_url.replace("/rss.xml", f"/{name}", 1) for name in ("atom.xml", "feed.json")]
    return list(dict.fromkeys(urls))


def _sitemap_outcomes(client, site: str) -> list[Outcome]:
    """The news sitemap and the sitemap index with each sitemap it lists, when they are served."""
    outcomes = []
    if client.head("/sitemaps/news.xml").status_code == 200:
        outcomes.append(check_served(client, f"{site}/sitemaps/news.xml", "newssitemap")[0])
    if client.head("/sitemap.xml").status_code == 200:
        index, body = check_served(client, f"{site}/sitemap.xml")
        outcomes.append(index)
        if body and index.kind == "sitemapindex":
            for loc in xmlsafe.fromstring(body).iterfind("sm:sitemap/sm:loc", NS):
                outcomes.append(check_served(client, (loc.text or "").strip(), "sitemap")[0])
    return outcomes


def profile_documents(app, profiles) -> list[Outcome]:
    """Every feed of each profile (its OPML's, in each format it serves), held to the standards and its rules."""
    site = app.config["SITE_URL"].rstrip("/")
    outcomes = []
    with _unthrottled(app) as client:
        for profile in profiles:
            listing, body = check_served(client, shaping.profile_opml_url(profile.name, site), "opml")
            outcomes.append(listing)
            first = FORMATS[profile.formats[0]].filename
            # The profile's OPML lists its feeds in its first format; _feed_urls adds the public
            # feeds' other formats beside each RSS one, which a profile may not serve.
            for url in (u for u in _feed_urls(body) if urlsplit(u).path.endswith(f"/{first}")):
                for fmt in profile.formats:
                    outcome, feed = check_served(client, url.replace(f"/{first}", f"/{FORMATS[fmt].filename}", 1))
                    if feed:
                        outcome.problems.extend(profile_problems(profile, feed, outcome.kind))
                    outcomes.append(outcome)
    return outcomes


def page_documents(app) -> list[Outcome]:
    """Each live article's canonical page (from the store), and its AMP page when the page links one
    (with the official AMP validator's verdict when it is installed)."""
    from feedsvc import store
    outcomes = []
    with db.engine(app).connect() as conn:
        articles, after = [], None
        while True:
            page = store.newest(conn, "site", 500, after)
            articles += page
            if len(page) < 500:
                break
            after = store.Cursor(store.utc(page[-1].published).replace(tzinfo=None), page[-1].id)
    site = app.config["SITE_URL"].rstrip("/")
    amp_pages = []
    with _unthrottled(app) as client:
        for article in articles:
            # Its page here, wherever its canonical `url` is (a record may name another address).
            outcome, body = check_served(client, site + article_path(article.slug))
            outcomes.append(outcome)
            if body and outcome.kind in ("html", "amp"):
                amp = lxml.html.fromstring(body).find(".//link[@rel='amphtml']")
                if amp is not None and amp.get("href"):
                    amp_pages.append(check_served(client, amp.get("href"), "amp"))
                    outcomes.append(amp_pages[-1][0])
    with_official_amp_validator(amp_pages)
    return outcomes


def _print_outcome(outcome: Outcome) -> None:
    if not outcome.problems:
        click.echo(f"ok  {outcome.target}")
        return
    for problem in outcome.problems:
        where = f"{problem.line}:{problem.column or 0}" if problem.line else "-"
        click.echo(f"{outcome.target}:{where}: {problem.rule}: {problem.message}")


@click.command("validate")
@click.argument("targets", nargs=-1)
@click.option("--all", "check_all", is_flag=True,
              help="Every feed listed in /feeds.opml, the OPML, the sitemaps and every live article's pages.")
@click.option("--kind", type=click.Choice(KINDS), help="The kind of every TARGET (default: guessed).")
@click.option("--url", "served_url", help="The URL a single file TARGET is served at (checks its self link).")
@click.option("--profile", "profile_name", default=None,
              help="Also hold each TARGET (with --all: every feed of every profile) to this aggregator "
                   "profile's rules; 'all' with --all checks every profile.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@with_appcontext
def validate_command(targets, check_all, kind, served_url, profile_name, output_format):
    """Validate TARGET files or http(s) URLs (or --all) against their feed/page standards.

    Prints 'ok  TARGET' or one line per problem (TARGET:LINE:COLUMN: RULE: MESSAGE) and exits
    with status 1 if any document has a problem.
    """
    from flask import current_app
    if not targets and not check_all:
        raise click.UsageError("give one or more files or URLs, or --all")
    if served_url and len(targets) != 1:
        raise click.UsageError("--url applies to a single TARGET")
    # The app's (built-in and PROFILES_DIR's), or the built-in ones in an app without the profile feeds.
    known = profile_feeds.profiles_of(current_app) or profiles.built_in()
    if profile_name not in (None, "all") and profile_name not in known:
        raise click.BadParameter(f"no profile named {profile_name!r}; the profiles are {', '.join(sorted(known))}",
                                 param_hint="--profile")
    if profile_name == "all" and targets:
        raise click.UsageError("--profile all applies to --all only; name one profile for TARGETs")
    profile = known.get(profile_name)
    outcomes = [check_target(t, kind, served_url, profile) for t in targets]
    if check_all:
        app = current_app._get_current_object()
        with access_log.silenced():
            served = served_documents(app) + profile_documents(app, [profile] if profile else known.values())
        with db.engine(app).begin() as conn:
            desk_checks.record_validations(conn, served)   # each feed's last result, for the desk
        outcomes += served
    if output_format == "json":
        click.echo(json.dumps([o.as_json() for o in outcomes], ensure_ascii=False, indent=2))
    else:
        for outcome in outcomes:
            _print_outcome(outcome)
    if any(o.problems for o in outcomes):
        sys.exit(1)
