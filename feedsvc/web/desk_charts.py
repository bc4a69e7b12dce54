"""The desk's plots: time series drawn on the server as SVG (pygal), shown inline, no script needed."""
from __future__ import annotations

import functools
from datetime import date

from lxml import etree
from markupsafe import Markup


@functools.cache
def _style():
    """pygal and the plots' style, loaded at the first plot: pygal is 14 MiB RSS that every server
    worker would hold for a desk page few of them draw (bench row worker-rss-1m)."""
    import pygal.style

    # Devanagari first, as base.html sets the page's text; the colours are the site's accent and greys.
    return pygal.style.Style(font_family='"Noto Sans Devanagari", "Noto Sans", system-ui, sans-serif',
                             background="white", plot_background="white",
                             colors=("#b3261e", "#1b5e9f", "#2e7d32", "#6a1b9a", "#ef6c00", "#5b5d66"),
                             label_font_size=11, major_label_font_size=11, legend_font_size=12, title_font_size=14)


def time_series(title: str, days: list[date], series: dict[str, list[float]]) -> Markup:
    """One line per series over `days`, as an <svg> element to put in a page.

    pygal's tooltips need its script from a CDN: `js=()` leaves it out, and the inline script with
    its settings (for that script only) is dropped from the tree, so the plot is plain SVG, drawn
    the same with JavaScript off, and the pages' CSP (no script) has nothing to refuse.
    """
    import pygal

    chart = pygal.Line(title=title, style=_style(), js=(), disable_xml_declaration=True, width=720, height=300,
                       x_label_rotation=30, show_minor_x_labels=False, x_labels_major_every=max(1, len(days) // 6),
                       truncate_legend=-1, legend_at_bottom=True, show_dots=True, dots_size=2.5, explicit_size=False,
                       print_values=False)
    chart.x_labels = [day.strftime("%d %b") for day in days]
    for name, values in series.items():
        chart.add(name, values)
    tree = chart.render_tree()
    for script in tree.iter("{*}script", "script"):
        script.getparent().remove(script)
    return Markup(etree.tostring(tree, encoding="unicode"))
