"""Local images inside an article body (<img src="/media/...">): probed and made into renditions as the
lead image is (feedsvc/ingest/images.py), a declared size that disagrees corrected in the body, an
unusable file removed from it; what renderers need of each kept beside the body.

The same rules as the lead image: a file missing from MEDIA_DIR is kept as declared (the CMS may
upload it later), a corrupt, truncated or decompression-bomb file is refused and its <img> removed
(a <figure> left with only its caption goes too: sanitize.without_empty_figures) while the record
is stored, and a remote image keeps what the record says.
"""
from __future__ import annotations

import html
import re
from urllib.parse import unquote

from feedsvc.ingest.images import ImageRefused, ImageSettings, local_media, processed, rendition_key
from feedsvc.ingest.sanitize import without_empty_figures

FIELD = "body_html"
# An <img> start tag as nh3 writes it (sanitize.py): every attribute double-quoted, '"' escaped inside
# values, so ">" can only end the tag outside quotes. Matching that fixed serialisation touches the
# images only and leaves the rest of the body byte for byte, as decide_frames does for frames.
IMG_TAG = re.compile(r'<img\b(?:[^>"]|"[^"]*")*>')
ATTRIBUTE = re.compile(r'([^\s="]+)="([^"]*)"')
_SIDES = (("width", "wide"), ("height", "high"))


def checked_body(safe_html: str, site_url: str, settings: ImageSettings) -> tuple[str, dict, list[tuple[str, str]]]:
    """(body, images, notes): the sanitised body with each local <img>'s width and height as its file
    has them (unusable files removed), {src as the body writes it: stored image} for the renderers (the
    shape of a stored lead image: url, width, height, type, length and, when made, key and renditions),
    and (field, reason) notes for the writer. A body without local images costs one substring search."""
    if "<img" not in safe_html:
        return safe_html, {}, []
    found: dict[str, dict] = {}
    notes: list[tuple[str, str]] = []
    refused: list[str] = []

    def checked(match: re.Match) -> str:
        tag = match.group()
        attributes = dict(ATTRIBUTE.findall(tag))
        src = html.unescape(attributes.get("src", ""))
        # The body keeps URIs (non-ASCII file names percent-encoded); the file has the name itself.
        local = local_media(unquote(site_url + src if src.startswith("/") else src), settings)
        if local is None:
            return tag
        path, relative = local
        try:
            facts, made = processed(path, None, settings, body=True)
        except OSError:  # the CMS may upload it later: nothing to probe, nothing to refuse
            notes.append((FIELD, f"<img> {relative} is not in MEDIA_DIR; kept as the body declares it"))
            return tag
        except ImageRefused as exc:
            notes.append((FIELD, f"<img> {relative} {exc}; refused, and removed from the body (with its "
                                 f"figure and caption when it was the figure's only picture)"))
            refused.append(relative)
            return ""
        stored = {"url": src, "width": facts["width"], "height": facts["height"], "type": facts["type"],
                  "length": facts["length"]}
        if made:
            stored.update(key=rendition_key(facts["sha256"], None), renditions=made)
        found[src] = stored
        wrong = [(side, word) for side, word in _SIDES if attributes.get(side, str(facts[side])) != str(facts[side])]
        notes.extend((FIELD, f"<img> {relative}: declared {side} {attributes[side]} but the file is {facts[side]} px "
                             f"{word}; corrected") for side, word in wrong)
        if wrong or "width" not in attributes or "height" not in attributes:
            return _sized(tag, facts["width"], facts["height"])
        return tag

    body = IMG_TAG.sub(checked, safe_html)
    return without_empty_figures(body) if refused else body, found, notes


def _sized(tag: str, width: int, height: int) -> str:
    """The <img> tag with its width and height attributes set, every other attribute as it was."""
    kept = [(name, value) for name, value in ATTRIBUTE.findall(tag) if name not in ("width", "height")]
    kept += [("width", str(width)), ("height", str(height))]
    return "<img" + "".join(f' {name}="{value}"' for name, value in kept) + ">"
