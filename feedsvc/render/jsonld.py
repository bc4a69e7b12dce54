"""schema.org NewsArticle JSON-LD for article pages (AMP and canonical), safe inside <script>."""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

# Headlines and names are untrusted: inside <script>, "</script>" would end the element and "<!--"
# changes how the HTML parser looks for that end, so no "<" (nor ">" and "&") is written raw.
_SCRIPT_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def script_json(data: Mapping | Sequence) -> str:
    """JSON text for a <script type="application/ld+json"> body; Devanagari stays unescaped."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).translate(_SCRIPT_ESCAPES)


def news_article(*, headline: str, url: str, published: str, modified: str = "",
                 authors: Sequence[Mapping[str, str]], publisher_name: str, publisher_logo: str,
                 images: Sequence[str] = (), description: str = "", language: str = "hi",
                 corrections: Sequence[Mapping[str, str]] = ()) -> dict:
    """A NewsArticle object; dates are RFC 3339 strings, authors are {"name", "url"?} mappings,
    corrections the record's {"date", "text"} (schema.org `correction`, as CorrectionComment)."""
    article = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "mainEntityOfPage": {"@type": "WebPage", "@id": url},
        "headline": headline,
        "inLanguage": language,
        "datePublished": published,
        "dateModified": modified or published,
        "author": [{"@type": "Person", **{key: author[key] for key in ("name", "url") if author.get(key)}}
                   for author in authors],
        "publisher": {"@type": "Organization", "name": publisher_name,
                      "logo": {"@type": "ImageObject", "url": publisher_logo}},
    }
    if images:
        article["image"] = list(images)
    if description:
        article["description"] = description
    if corrections:
        article["correction"] = [{"@type": "CorrectionComment", "datePublished": c["date"], "text": c["text"]}
                                 for c in corrections]
    return article
