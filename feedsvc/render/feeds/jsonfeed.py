"""JSON Feed 1.1 writer (orjson, Devanagari unescaped): https://jsonfeed.org/version/1.1"""
from __future__ import annotations

import orjson

from feedsvc.render.feeds.model import Entry, Feed, Format, Person, Video

VERSION = "https://jsonfeed.org/version/1.1"


def _person(person: Person) -> dict:
    return {"name": person.name, **({"url": person.url} if person.url else {})}


def _attachment(video: Video) -> dict:
    attachment = {"url": video.file, "mime_type": video.type, "title": video.title}
    return attachment | ({"duration_in_seconds": video.duration} if video.duration else {})


def _item(entry: Entry) -> dict:
    item: dict[str, object] = {"id": entry.id, "url": entry.url, "title": entry.title}
    if entry.content_html is not None:
        item["content_html"] = entry.content_html
    else:
        item["content_text"] = entry.summary
    item["summary"] = entry.summary
    if entry.image:
        item["image"] = entry.image.url
        if entry.image.banner:
            item["banner_image"] = entry.image.banner.url
    # JSON Feed 1.1 attachments are files ("related resources", with a MIME type): a video of the
    # site's own is one; a player page is not a file and stays in the content as a link.
    files = [_attachment(video) for video in entry.videos if video.file and video.type]
    if files:
        item["attachments"] = files
    item["date_published"] = entry.published.isoformat()
    item["date_modified"] = entry.updated.isoformat()
    item["authors"] = [_person(a) for a in entry.authors]
    item["tags"] = [c.label for c in entry.categories]
    # JSON Feed 1.1 defines `language` for the feed only; readers that look for one per item
    # (as the feed's) find it here, and the rest ignore an unknown item field (spec: "extensions").
    item["language"] = entry.language
    return item


def document(feed: Feed) -> dict:
    doc = {
        "version": VERSION,
        "title": feed.title,
        "home_page_url": feed.home_url,
        "feed_url": feed.self_url,
        "description": feed.description,
        "language": feed.language,
        "icon": feed.site.icon,
        "favicon": feed.site.icon,
        "authors": [{"name": feed.site.name, "url": f"{feed.site.url}/"}],
    }
    if feed.site.hubs:
        doc["hubs"] = [{"type": "WebSub", "url": hub} for hub in feed.site.hubs]
    if feed.next_url:
        doc["next_url"] = feed.next_url
    doc["items"] = [_item(entry) for entry in feed.entries]
    return doc


def write(feed: Feed) -> bytes:
    return orjson.dumps(document(feed))  # compact UTF-8, as json.dumps(ensure_ascii=False) but faster


FORMAT = Format("json", "feed.json", "application/feed+json; charset=utf-8", "JSON Feed", write)
