"""Repeated measurements, their spread, and the table the benchmark prints."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

REPEATS = 5


@dataclass
class Sample:
    """Repeated measurements of one quantity; `higher_is_better` for rates (req/s), not for times."""
    values: list[float]
    unit: str
    higher_is_better: bool = False

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def spread(self) -> float:
        """(max - min) / median: how much this row moved between repeats."""
        return (max(self.values) - min(self.values)) / self.median if self.median else 0.0

    def text(self) -> str:
        return f"{fmt(self.median)} {self.unit}"

    def range_text(self) -> str:
        return f"{fmt(min(self.values))}–{fmt(max(self.values))}"


def fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def timed(function: Callable[[], object], repeats: int = REPEATS, unit: str = "ms") -> Sample:
    """Wall time of `function` (one warm-up call first), `repeats` times."""
    function()
    values = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        values.append((time.perf_counter() - started) * (1000 if unit == "ms" else 1))
    return Sample(values, unit)


def round_ratios(sample: Sample, baseline: Sample) -> list[float]:
    """sample.values[i] / baseline.values[i]: each repeat's own ratio (both measured side by side)."""
    if len(sample.values) != len(baseline.values):
        raise ValueError(f"paired samples of {len(sample.values)} and {len(baseline.values)} values")
    return [value / base if base else float("inf") for value, base in zip(sample.values, baseline.values, strict=True)]


def paired_ratio(sample: Sample, baseline: Sample) -> float:
    """The median of the repeats' own ratios."""
    return statistics.median(round_ratios(sample, baseline))


def ratio_quartiles(sample: Sample, baseline: Sample) -> tuple[float, float]:
    """The first and third quartiles of the repeats' own ratios: how far one repeat's ratio moves."""
    ratios = round_ratios(sample, baseline)
    if len(ratios) < 2:
        return ratios[0], ratios[0]
    quartiles = statistics.quantiles(ratios, n=4)
    return quartiles[0], quartiles[2]


def interleaved(labels: Sequence[str], measure: Callable[[str], float], repeats: int) -> dict[str, list[float]]:
    """`repeats` rounds over `labels`, each round measuring every label once, forwards in even rounds and
    backwards in odd ones; the values by label, in round order (the i-th of each from round i).

    Put a row next to its baseline in `labels`: they are then measured one right after the other
    and each goes first in every other round, so a slow drift of the shared machine's load favours
    neither, and their ratios can be taken per round (Table.compare(paired=True))."""
    values: dict[str, list[float]] = {label: [] for label in labels}
    for round_ in range(repeats):
        for label in (labels if round_ % 2 == 0 else list(reversed(labels))):
            values[label].append(measure(label))
    return values


@dataclass
class Row:
    name: str                           # stable: `python -m bench --only NAME`, the JSON, the README block
    section: str
    what: str
    sample: Sample | None
    baseline: str = ""                  # the row label this one is compared with
    ratio: float | None = None
    target: str = ""                    # e.g. "≤ 1.5×"
    met: bool | None = None
    note: str = ""
    value: float | None = None          # the figure the target speaks of, when it is not the median (a p99)
    statistic: str = "median"

    def as_json(self) -> dict:
        """The row as bench/results/*.json keeps it: every field, None where not measured."""
        s = self.sample
        return {"name": self.name, "section": self.section, "what": self.what,
                "value": self.value if self.value is not None else (s.median if s else None),
                "statistic": self.statistic, "unit": s.unit if s else None,
                "values": list(s.values) if s else [], "spread": s.spread if s else None,
                "ratio": self.ratio, "baseline": self.baseline or None, "target": self.target or None,
                "met": self.met, "note": self.note or None}


@dataclass
class Table:
    rows: list[Row] = field(default_factory=list)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def compare(self, name: str, section: str, what: str, sample: Sample, baseline: Sample, baseline_name: str, *,
                at_most: float | None = None, at_least: float | None = None, note: str = "",
                paired: bool = False) -> Row:
        """A row with its ratio to a baseline measured in the same run, checked against a target.

        `paired`: the i-th values of both were measured side by side (interleaved(), one after the
        other), so the ratio is the median of the repeats' own ratios: a moment when the shared
        machine is busy lowers both sides of one repeat's ratio, instead of one side's median only."""
        apart = sample.median / baseline.median if baseline.median else float("inf")
        ratio = apart
        if paired:
            ratio = paired_ratio(sample, baseline)
            low, high = ratio_quartiles(sample, baseline)
            note = "; ".join(filter(None, [note, f"middle half of the rounds' ratios {low:.2f}–{high:.2f}×, "
                                                 f"medians apart {apart:.2f}×"]))
        target, met = "", None
        if at_most is not None:
            target, met = f"≤ {at_most:g}×", ratio <= at_most
        elif at_least is not None:
            target, met = f"≥ {at_least:g}×", ratio >= at_least
        return self.add(Row(name, section, what, sample, baseline_name, ratio, target, met, note))

    def render(self) -> str:
        header = ["what", "median", "min–max", "spread", "ratio", "vs", "target", "met"]
        lines, current = [], None
        body = []
        for row in self.rows:
            if row.section != current:
                current = row.section
                body.append([f"**{row.section}**", "", "", "", "", "", "", ""])
            s = row.sample
            body.append([row.what + (f" ({row.note})" if row.note else ""),
                         s.text() if s else "", s.range_text() if s else "",
                         f"{s.spread:.0%}" if s else "",
                         f"{row.ratio:.2f}×" if row.ratio is not None else "",
                         row.baseline, row.target,
                         "" if row.met is None else ("yes" if row.met else "NO")])
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join("---" for _ in header) + "|")
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
        return "\n".join(lines)
