"""OPML 2.0 subscription list of every feed, grouped by site, sections, tags and authors."""
from __future__ import annotations

from datetime import timezone
from email.utils import format_datetime

from lxml import etree

from feedsvc.render.feeds.formats import FORMATS
from feedsvc.render.feeds.model import SCOPE_WORDS, SITE_GROUP, Scope, Site
from feedsvc.render.feeds.scope import NEVER, description_of, feed_url, home_url, title_of

GROUP_TITLES = {kind: f"{hindi} ({english})" for kind, (hindi, english)
                in [("site", SITE_GROUP), *((kind, words.group) for kind, words in SCOPE_WORDS.items())]}
# The folder of the site's single-language feeds (scope.LANGUAGE_PARAMETER), listed when it has several.
LANGUAGES_GROUP = "भाषा के अनुसार (By language)"
# OPML's `version` attribute names the feed format: "RSS2" for RSS 2.0; Atom and JSON Feed have no value.
OPML_VERSION = {"rss": "RSS2"}


def write(site: Site, groups: dict[str, list[Scope]], *, fmt: str = "rss", states=(), languages=(), url_of=None,
          title: str | None = None) -> bytes:
    """One outline per feed in format `fmt` (readers subscribe to each listed URL, so one format);
    with more than one of `languages` (those of live articles), the site's feed in each of them.
    `url_of(scope, fmt, language)` gives a feed's URL (default: its public URL), `title` the list's."""
    url_of = url_of or (lambda scope, fmt, language=None: feed_url(scope, fmt, site.url, language, remember=False))
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = title or f"{site.name} — फ़ीड ({FORMATS[fmt].label} feeds)"
    changed = max((s.modified_at for s in states), default=NEVER).replace(tzinfo=timezone.utc, microsecond=0)
    etree.SubElement(head, "dateModified").text = format_datetime(changed, usegmt=True)
    etree.SubElement(head, "ownerName").text = site.name
    # No <docs>: OPML 2.0 defines it, but the W3C Feed Validation Service rejects it ("Undefined
    # head element"), and readers never use it.
    body = etree.SubElement(root, "body")
    for kind, scopes in [("site", [Scope("site", "", site.name)]), *groups.items()]:
        if not scopes:
            continue
        # A folder: `text` alone (OPML 2.0 requires no `type` of it; any other attribute without a
        # type draws the W3C validator's MissingOutlineType warning).
        group = etree.SubElement(body, "outline", text=GROUP_TITLES[kind])
        for scope in scopes:
            _feed_outline(group, site, scope, fmt, url_of)
    if len(languages) > 1:
        group = etree.SubElement(body, "outline", text=LANGUAGES_GROUP)
        for language in languages:
            _feed_outline(group, site, Scope("site", "", site.name), fmt, url_of, language)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _feed_outline(group, site: Site, scope: Scope, fmt: str, url_of, language: str | None = None) -> None:
    title = title_of(scope, site, language)
    outline = etree.SubElement(group, "outline", type="rss", text=title, title=title,
                               xmlUrl=url_of(scope, fmt, language), htmlUrl=home_url(scope, site, remember=False),
                               description=description_of(scope, site), language=language or site.language)
    if fmt in OPML_VERSION:
        outline.set("version", OPML_VERSION[fmt])
