"""Body images as the canonical page shows them: each one ingest probed (feedsvc/ingest/body_images.py)
as a <picture> like the lead's, its renditions in the modern formats first, every format offered by
width (srcset and sizes) so a phone loads the small one."""
from __future__ import annotations

import html
import re
from collections.abc import Mapping

from feedsvc.ingest import images
from feedsvc.ingest.body_images import ATTRIBUTE, IMG_TAG

# Images fill the width of main in base.html (46rem, less on a narrower screen).
MAIN_WIDTH_SIZES = "(max-width: 46rem) 100vw, 46rem"


def body_srcset(image: Mapping, fmt: str) -> str:
    """The srcset of a body image's renditions in one format, largest first ("" when it has none)."""
    return images.srcset(image, fmt, tuple(image.get("renditions", {})))


def body_pictures(safe_html: str, body_images: Mapping[str, Mapping]) -> str:
    """`safe_html` with each <img> that `body_images` (src -> stored image) gives renditions wrapped in a
    <picture>; width, height, alt and src stay as ingest left them. Other images are left as they are."""
    if not body_images or "<img" not in safe_html:
        return safe_html

    def picture(match: re.Match) -> str:
        tag = match.group()
        image = body_images.get(html.unescape(dict(ATTRIBUTE.findall(tag)).get("src", "")))
        if not image or not image.get("renditions"):
            return tag
        sizes = f' sizes="{MAIN_WIDTH_SIZES}"'
        sources = "".join(f'<source type="{images.FORMATS[fmt][1]}" srcset="{html.escape(body_srcset(image, fmt))}"'
                          f"{sizes}>" for fmt in images.rendition_formats(image) if fmt != "jpeg")
        jpeg = body_srcset(image, "jpeg")
        offered = f' srcset="{html.escape(jpeg)}"{sizes}' if jpeg else ""
        return f'<picture>{sources}{tag[:-1]}{offered} loading="lazy"></picture>'
    return IMG_TAG.sub(picture, safe_html)
