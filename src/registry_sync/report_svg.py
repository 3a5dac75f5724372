"""Charts for the HTML report: inline SVG drawn in pure Python (no chart library, no script).

Each function takes plain counts or points and returns one `<svg>` element that scales to its
container (`viewBox`, no fixed size). Every label is escaped here; a label too long for its
column is cut with an ellipsis and shown whole in the tooltip (`<title>`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from html import escape

WIDTH = 480  # viewBox units; the page scales the chart to its column
BAR = 19
GAP = 6
FONT = 13
CHAR_W = 7.2  # mean glyph width at FONT in a sans-serif, to size the label column
MAX_LABEL_W = 180
OTHER_COLOR = "#8a8f98"

# (label, [(series, count), ...]): one bar, stacked by series in the order given
BarRow = tuple[str, Sequence[tuple[str, int]]]
# (review year, registry year, what the point is: product and trial)
Point = tuple[int, int, str]


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _fit(label: str, width: float) -> str:
    """The label cut to `width` units, with an ellipsis when cut."""
    room = max(int(width / CHAR_W), 4)
    return label if len(label) <= room else label[: room - 1] + "…"


def _svg(height: float, title: str, body: Sequence[str], cls: str = "chart") -> str:
    return (
        f'<svg class="{cls}" viewBox="0 0 {WIDTH} {math.ceil(height)}" role="img" '
        f'aria-label="{_e(title)}" font-size="{FONT}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{_e(title)}</title>{''.join(body)}</svg>"
    )


def stacked_bars(title: str, rows: Sequence[BarRow], colors: Mapping[str, str]) -> str:
    """Horizontal bars, one per row, each stacked by series; a legend of the series below."""
    label_w = min(max(len(label) for label, _ in rows) * CHAR_W + 10, MAX_LABEL_W)
    top = max(sum(n for _, n in segments) for _, segments in rows) or 1
    plot_w = WIDTH - label_w - 36  # room for the total after the bar
    body: list[str] = []
    y = 0.0
    for label, segments in rows:
        body.append(
            f'<text x="{label_w - 6:.0f}" y="{y + BAR * 0.72:.1f}" text-anchor="end">'
            f"<title>{_e(label)}</title>{_e(_fit(label, label_w - 6))}</text>"
        )
        x = label_w
        for series, n in segments:
            if n <= 0:
                continue
            w = n / top * plot_w
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{BAR}" '
                f'fill="{colors.get(series, OTHER_COLOR)}"><title>{_e(label)}: {_e(series)} '
                f"{n}</title></rect>"
            )
            x += w
        total = sum(n for _, n in segments)
        body.append(f'<text x="{x + 4:.1f}" y="{y + BAR * 0.72:.1f}">{total}</text>')
        y += BAR + GAP
    shown = {s for _, segs in rows for s, n in segs if n > 0}
    series_seen = [s for s in dict.fromkeys(s for _, segs in rows for s, _ in segs) if s in shown]
    legend, height = _legend(series_seen, colors, y + 6)
    return _svg(height, title, body + legend)


def _legend(series: Sequence[str], colors: Mapping[str, str], y: float) -> tuple[list[str], float]:
    """Swatches and names, wrapped to the chart's width; returns the parts and the new height."""
    parts: list[str] = []
    x = 0.0
    for name in series:
        w = 16 + len(name) * CHAR_W + 14
        if x and x + w > WIDTH:
            x, y = 0.0, y + 18
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="11" height="11" '
            f'fill="{colors.get(name, OTHER_COLOR)}"/>'
            f'<text x="{x + 16:.1f}" y="{y + 10:.1f}">{_e(name)}</text>'
        )
        x += w
    return parts, y + (18 if series else 0)


def _ticks(lo: int, hi: int) -> list[int]:
    step = 1 if hi - lo <= 10 else 2 if hi - lo <= 20 else 5
    return list(range(lo - lo % step, hi + 1, step))


def year_scatter(title: str, points: Sequence[Point], x_title: str, y_title: str) -> str:
    """One dot per (x year, y year), sized by how many rows share it, on a square plot with
    the line where both years agree; dots off the line are the disagreements."""
    years = [p[0] for p in points] + [p[1] for p in points]
    lo, hi = min(years) - 1, max(years) + 1
    left, top, side = 52.0, 10.0, WIDTH - 70.0

    def pos(year: int, vertical: bool) -> float:
        frac = (year - lo) / (hi - lo)
        return top + side - frac * side if vertical else left + frac * side

    body = [
        f'<rect x="{left}" y="{top}" width="{side}" height="{side}" class="plot"/>',
        f'<line x1="{pos(lo, False)}" y1="{pos(lo, True)}" x2="{pos(hi, False)}" '
        f'y2="{pos(hi, True)}" class="same"/>',
    ]
    for year in _ticks(lo + 1, hi - 1):
        body.append(
            f'<text x="{pos(year, False):.1f}" y="{top + side + 16:.1f}" '
            f'text-anchor="middle">{year}</text>'
            f'<text x="{left - 5:.1f}" y="{pos(year, True) + 4:.1f}" '
            f'text-anchor="end">{year}</text>'
        )
    body += _dots(points, pos)
    body.append(
        f'<text x="{left + side / 2:.1f}" y="{top + side + 34:.1f}" '
        f'text-anchor="middle">{_e(x_title)}</text>'
        f'<text transform="translate(12 {top + side / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">{_e(y_title)}</text>'
    )
    return _svg(top + side + 42, title, body, "chart square")


MAX_RADIUS = 40.0  # a dot shared by thousands of rows stays inside the plot (its count is shown)
TIP_NAMES = 50  # rows named in a dot's tooltip; past that, how many more


def _dots(points: Sequence[Point], pos: Callable[[int, bool], float]) -> list[str]:
    shared = Counter((x, y) for x, y, _ in points)
    names: dict[tuple[int, int], list[str]] = {}
    for x, y, name in points:
        names.setdefault((x, y), []).append(name)
    out = []
    for (x, y), n in sorted(shared.items()):
        cls = "dot agree" if x == y else "dot differ"
        r = min(5 + 2.5 * math.sqrt(n - 1), MAX_RADIUS)
        named = names[(x, y)]
        tip = f"review {x}, registry {y}: " + "; ".join(named[:TIP_NAMES])
        if len(named) > TIP_NAMES:
            tip += f"; and {len(named) - TIP_NAMES:,} more"
        count = (
            f'<text x="{pos(x, False):.1f}" y="{pos(y, True) + 4:.1f}" text-anchor="middle" '
            f'class="count">{n}</text>'
            if n > 1
            else ""
        )
        out.append(
            f'<g><title>{_e(tip)}</title><circle cx="{pos(x, False):.1f}" '
            f'cy="{pos(y, True):.1f}" r="{r:.1f}" class="{cls}"/>{count}</g>'
        )
    return out
