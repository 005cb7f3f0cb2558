"""Charts drawn on the server as SVG: the trace timeline (a Gantt) and the stats charts.

SVG needs no script and no asset from elsewhere, so the pages work offline. Every text
that comes from stored data goes through ``escape``; the numbers are formatted here.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from dolmen.cli.render.text import ms
from dolmen.cli.render.trace import timeline_rows

if TYPE_CHECKING:
    from dolmen.storage.analytics import Trace

ROW = 18
LABEL = 300
COLORS = {
    "workflow": "#5b6b7f",
    "activity": "#3f7fbf",
    "child": "#8a5cc2",
    "timer": "#c2a25c",
    "signal": "#4f9f6f",
    "cancel": "#999999",
}


def timeline(trace: Trace, width: int = 1100, limit: int = 300) -> str:
    """The execution, its steps and its children's steps as bars on one time axis; the
    critical path is outlined red, failed attempts before a retry are ticks on the bar."""
    rows = timeline_rows(trace)
    shown = rows[:limit]
    start = trace.created_at
    end = max([trace.last_ts, start] + [r.end for r in rows if r.end is not None])
    span = max(end - start, 1e-6)
    plot = width - LABEL - 10

    def x(t: float) -> float:
        return LABEL + (t - start) / span * plot

    height = ROW * (len(shown) + 2)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="timeline of {escape(trace.id)}">',
        f'<text x="{LABEL}" y="12" class="axis">0</text>',
        f'<text x="{width - 10}" y="12" class="axis" text-anchor="end">{ms(span)} ms</text>',
    ]
    for i, row in enumerate(shown):
        y = ROW * (i + 1)
        label = escape(("  " * row.depth) + row.label)
        stop = row.end if row.end is not None else end
        left, right = x(row.start), max(x(stop), x(row.start) + 2)
        critical = " critical" if row.critical else ""
        color = COLORS.get(row.kind, "#777777")
        if row.outcome == "failed":
            color = "#c0392b"
        tip = escape(f"{row.label}: {row.note} ({ms(stop - row.start)} ms)")
        parts.append(
            f'<g class="bar{critical}" data-kind="{escape(row.kind)}">'
            f"<title>{tip}</title>"
            f'<text x="{4 + row.depth * 8}" y="{y + 13}" class="label">{label[:60]}</text>'
            f'<rect x="{left:.1f}" y="{y + 3}" width="{right - left:.1f}" height="{ROW - 6}" '
            f'fill="{color}"/>'
        )
        step = row.step
        for failed in step.failed_at if step is not None else []:
            parts.append(
                f'<line class="retry" x1="{x(failed):.1f}" x2="{x(failed):.1f}" y1="{y + 1}" '
                f'y2="{y + ROW - 1}"/>'
            )
        parts.append("</g>")
    if len(rows) > limit:
        y = ROW * (len(shown) + 1) + 13
        parts.append(f'<text x="4" y="{y}" class="label">… {len(rows) - limit} more</text>')
    parts.append("</svg>")
    return "".join(parts)


def bars(title: str, items: list[tuple[str, float]], unit: str = "", width: int = 700) -> str:
    """A horizontal bar chart: one labelled bar per item."""
    top = max([v for _, v in items] + [1e-12])
    height = ROW * (len(items) + 2)
    plot = width - LABEL - 80
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" '
        f'height="{height}" role="img" aria-label="{escape(title)}">',
        f'<text x="4" y="13" class="title">{escape(title)}</text>',
    ]
    for i, (name, value) in enumerate(items):
        y = ROW * (i + 1)
        w = max(value / top * plot, 1)
        parts.append(
            f'<text x="4" y="{y + 13}" class="label">{escape(name[-48:])}</text>'
            f'<rect x="{LABEL}" y="{y + 3}" width="{w:.1f}" height="{ROW - 6}" fill="#3f7fbf"/>'
            f'<text x="{LABEL + w + 4:.1f}" y="{y + 13}" class="label">'
            f"{escape(_number(value, unit))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def columns(title: str, points: list[tuple[float, float]], width: int = 900) -> str:
    """A column chart over time (``points``: epoch second, value), e.g. throughput."""
    height, pad = 160, 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" '
        f'height="{height + pad}" role="img" aria-label="{escape(title)}">',
        f'<text x="4" y="13" class="title">{escape(title)}</text>',
    ]
    if points:
        first, last = points[0][0], points[-1][0]
        span = max(last - first + 1, 1)
        top = max(v for _, v in points) or 1
        w = max((width - 8) / span - 1, 1)
        for t, v in points:
            h = v / top * (height - pad)
            left = 4 + (t - first) / span * (width - 8)
            parts.append(
                f'<rect x="{left:.1f}" y="{height - h:.1f}" width="{w:.1f}" height="{h:.1f}" '
                f'fill="#3f7fbf"><title>{int(v)}</title></rect>'
            )
        parts.append(f'<text x="4" y="{height + 16}" class="axis">peak {int(top)}/s</text>')
    parts.append("</svg>")
    return "".join(parts)


def _number(value: float, unit: str) -> str:
    if unit == "s":
        return f"{ms(value)} ms"
    if unit == "%":
        return f"{value * 100:.1f}%"
    return f"{value:g}"
