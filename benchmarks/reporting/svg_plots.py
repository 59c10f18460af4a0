"""The leaderboard page's plots as inline SVG: delta-m against sparsity and the latency frontier,
each point an element that names its method, sparsity, value and seeds on hover and carries its
method and kind, so the page's filters hide it with its table rows."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from html import escape

import pandas as pd
from matplotlib.ticker import MaxNLocator

from benchmarks.reporting.plots import FRONTIER_X, colour_index, frontier_rows
from benchmarks.reporting.settings import UNPRUNED_KINDS

WIDTH, HEIGHT = 560, 360
MARGIN = {"left": 58, "right": 16, "top": 16, "bottom": 44}
COLORS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
# One shape per family of methods, as in the PNG frontier (plots.MARKERS)
SHAPES = {
    "dense": "star",
    "static": "circle",
    "dynamic": "diamond",
    "pretrained": "triangle_down",
    "structured": "square",
    "architecture": "triangle_up",
}


@dataclass(frozen=True)
class Scale:
    """Data interval [low, high] onto pixels [start, end]."""

    low: float
    high: float
    start: float
    end: float
    marks: tuple[float, ...] = ()  # where the ticks go (default: round numbers)

    def __call__(self, value: float) -> float:
        span = self.high - self.low or 1.0
        return self.start + (value - self.low) / span * (self.end - self.start)

    def ticks(self) -> list[float]:
        if self.marks:
            return list(self.marks)
        return [
            t for t in MaxNLocator(6).tick_values(self.low, self.high) if self.low <= t <= self.high
        ]


def _padded(values: Iterable[float], always: Iterable[float] = ()) -> tuple[float, float]:
    finite = [v for v in [*values, *always] if math.isfinite(v)]
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    pad = 0.06 * (high - low or 1.0)
    return low - pad, high + pad


def shape_path(shape: str, x: float, y: float, size: float) -> str:
    """SVG path data of a marker centred on (x, y)."""
    r = size / 2
    if shape == "circle":
        arc = f"a{r:.1f},{r:.1f} 0 1,0"
        return f"M{x - r:.1f},{y:.1f}{arc} {2 * r:.1f},0{arc} {-2 * r:.1f},0Z"
    if shape == "star":
        corners = []
        for i in range(10):
            radius = r * 1.3 if i % 2 == 0 else r * 0.55
            angle = math.pi / 2 + i * math.pi / 5
            corners.append((x + radius * math.cos(angle), y - radius * math.sin(angle)))
    else:
        corners = {
            "square": [(x - r, y - r), (x + r, y - r), (x + r, y + r), (x - r, y + r)],
            "diamond": [(x, y - r * 1.3), (x + r, y), (x, y + r * 1.3), (x - r, y)],
            "triangle_up": [
                (x, y - r * 1.2),
                (x + r * 1.1, y + r * 0.8),
                (x - r * 1.1, y + r * 0.8),
            ],
            "triangle_down": [
                (x, y + r * 1.2),
                (x + r * 1.1, y - r * 0.8),
                (x - r * 1.1, y - r * 0.8),
            ],
        }[shape]
    return "M" + "L".join(f"{cx:.1f},{cy:.1f}" for cx, cy in corners) + "Z"


def _line(css: str, x1: float, x2: float, y1: float, y2: float) -> str:
    return f'<line class="{css}" x1="{x1:.1f}" x2="{x2:.1f}" y1="{y1:.1f}" y2="{y2:.1f}"/>'


def _text(x: float, y: float, text: str, anchor: str = "middle") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}">{escape(text)}</text>'


def _frame(x: Scale, y: Scale, x_label: str, y_label: str, x_format: str) -> list[str]:
    parts = []
    for tick in y.ticks():
        parts.append(_line("grid", x.start, x.end, y(tick), y(tick)))
        parts.append(_text(x.start - 6, y(tick) + 4, f"{tick:g}", "end"))
    for tick in x.ticks():
        parts.append(_line("grid", x(tick), x(tick), y.start, y.end))
        parts.append(_text(x(tick), y.start + 16, f"{tick:{x_format}}"))
    parts.append(_line("axis", x.start, x.end, y.start, y.start))
    parts.append(_line("axis", x.start, x.start, y.start, y.end))
    parts.append(_text((x.start + x.end) / 2, HEIGHT - 8, x_label))
    parts.append(
        f'<text transform="translate(14,{(y.start + y.end) / 2:.0f}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>'
    )
    return parts


def _point(
    shape: str, x: float, y: float, size: float, color: str, row: pd.Series, tip: str
) -> str:
    return (
        f'<path class="point" d="{shape_path(shape, x, y, size)}" fill="{color}" '
        f'data-kind="{escape(str(row["kind"]))}" data-method="{escape(str(row["method"]))}" '
        f'data-tip="{escape(tip)}"><title>{escape(tip)}</title></path>'
    )


def _tip(row: pd.Series, extra: str = "") -> str:
    mean, ci = row["delta_m:mean"], row.get("delta_m:ci95", math.nan)
    interval = f" ± {ci:.2f}" if isinstance(ci, float) and math.isfinite(ci) else ""
    where = f"{100 * row['sparsity']:g}% sparsity" if row["kind"] not in UNPRUNED_KINDS else "dense"
    return (
        f"{row['method']} ({row['kind']}), {where}\n"
        f"Δm {mean:.2f}{interval}, {int(row['seeds'])} seed(s){extra}"
    )


def _colors(rows: pd.DataFrame) -> dict[str, str]:
    return {method: COLORS[i % len(COLORS)] for method, i in colour_index(rows).items()}


def _svg(parts: list[str], label: str) -> str:
    body = "\n".join(parts)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{escape(label)}">\n{body}\n</svg>'
    )


def _area() -> tuple[float, float, float, float]:
    return MARGIN["left"], WIDTH - MARGIN["right"], HEIGHT - MARGIN["bottom"], MARGIN["top"]


def delta_m_svg(table: pd.DataFrame) -> str:
    """Delta-m against target sparsity, a line per compressed method (error bars: 95% interval
    over seeds); the baseline at 0."""
    rows = table[~table["kind"].isin(UNPRUNED_KINDS)].dropna(subset=["delta_m:mean"])
    left, right, bottom, top = _area()
    levels = tuple(sorted(100 * rows["sparsity"].unique()))
    x = Scale(*_padded(levels), left, right, levels)
    y = Scale(*_padded(rows["delta_m:mean"], [0.0]), bottom, top)
    parts = _frame(x, y, "target sparsity (%)", "Δm (%) ↑ better", "g")
    parts.append(_line("axis", left, right, y(0), y(0)))
    colors = _colors(rows)
    for (kind, method), points in rows.groupby(["kind", "method"], sort=False):
        points = points.sort_values("sparsity")
        color = colors[method]
        xy = [
            (x(100 * s), y(m))
            for s, m in zip(points["sparsity"], points["delta_m:mean"], strict=True)
        ]
        line = " ".join(f"{px:.1f},{py:.1f}" for px, py in xy)
        parts.append(
            f'<polyline points="{line}" fill="none" stroke="{color}" stroke-width="1.2" '
            f'data-kind="{escape(str(kind))}" data-method="{escape(str(method))}"/>'
        )
        for (px, py), (_, row) in zip(xy, points.iterrows(), strict=True):
            parts.append(_point(SHAPES.get(str(kind), "circle"), px, py, 8, color, row, _tip(row)))
    return _svg(parts, "delta-m against target sparsity")


def frontier_svg(table: pd.DataFrame) -> str | None:
    """Delta-m against the measured latency at batch 1 relative to dense; a shape per family,
    the size growing with sparsity; None when no row has a latency."""
    rows = frontier_rows(table)
    if rows.empty:
        return None
    latency = f"{FRONTIER_X}:mean"
    left, right, bottom, top = _area()
    x = Scale(*_padded(rows[latency], [1.0]), left, right)
    y = Scale(*_padded(rows["delta_m:mean"], [0.0]), bottom, top)
    parts = _frame(
        x, y, "latency at batch 1 × dense (measured; < 1 is faster)", "Δm (%) ↑ better", ".2g"
    )
    parts.append(_line("axis", x(1), x(1), bottom, top))
    parts.append(_line("axis", left, right, y(0), y(0)))
    levels = sorted(rows.loc[~rows["kind"].isin(UNPRUNED_KINDS), "sparsity"].unique())
    colors = _colors(rows)
    for _, row in rows.iterrows():
        size = 7 + 3 * levels.index(row["sparsity"]) if row["sparsity"] in levels else 10
        tip = _tip(row, f"\nlatency × dense {row[latency]:.2f}")
        shape = SHAPES.get(str(row["kind"]), "circle")
        parts.append(
            _point(
                shape,
                x(row[latency]),
                y(row["delta_m:mean"]),
                size,
                colors[row["method"]],
                row,
                tip,
            )
        )
    return _svg(parts, "delta-m against measured latency")
