"""`--png`: the trace timeline as a Gantt chart and the report's throughput, by matplotlib.

matplotlib is imported only when a chart is drawn, with a clear error if it is missing.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

from dolmen.cli.render.text import ms, when
from dolmen.cli.render.trace import step_label, timeline_rows
from dolmen.runtime.errors import DolmenError
from dolmen.runtime.status import Status

if TYPE_CHECKING:  # importing analytics loads DuckDB, which drawing does not need
    from dolmen.storage.analytics import Trace


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise DolmenError("--png needs matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# Bad endings of executions; a failed step's outcome is spelled like Status.FAILED.
_BAD = frozenset({Status.FAILED, Status.BLOCKED, Status.CANCELLED})
_COLORS = {
    "workflow": "#4a4a4a",
    "activity": "#4c78a8",
    "child": "#72b7b2",
    "timer": "#b279a2",
    "signal": "#9d755d",
    "cancel": "#bab0ac",
}


def trace_png(trace: Trace, path: str | os.PathLike[str], limit: int = 200) -> None:
    """The timeline as a Gantt chart: critical steps outlined in red, retries as ticks."""
    plt = _pyplot()
    rows = timeline_rows(trace)[: limit + 1]
    origin = trace.created_at
    end = trace.finished_at if trace.finished_at is not None else trace.last_ts
    height = min(max(2.2, 0.32 * len(rows) + 1.4), 60)
    fig, ax = plt.subplots(figsize=(12, height))
    for y, row in enumerate(rows):
        start = (row.start - origin) * 1000.0
        stop = ((row.end if row.end is not None else end) - origin) * 1000.0
        color = _COLORS.get(row.kind, "#888888")
        ax.barh(
            y,
            max(stop - start, (end - origin) * 1000.0 / 400),
            left=start,
            height=0.62,
            color="#e0a0a0" if row.outcome in _BAD else color,
            edgecolor="#d62728" if row.critical else "none",
            linewidth=1.8 if row.critical else 0,
            hatch="//" if row.end is None else None,
        )
        if row.step is not None:
            for failed in row.step.failed_at:
                x = (failed - origin) * 1000.0
                ax.plot([x, x], [y - 0.36, y + 0.36], color="#d62728", linewidth=1.2)
        took = f"{ms(row.end - row.start)} ms" if row.end is not None else ""
        if row.note:
            took += f"  ({row.note})" if took else row.note
        ax.text(stop, y, "  " + took, va="center", fontsize=7.5, color="#333333")
    # Left-aligned monospace labels, so children's steps show indented under them.
    labels = ["  " * r.depth + f"{r.kind} {r.label}" for r in rows]
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(labels, fontsize=8, family="monospace")
    for tick in ax.get_yticklabels():
        tick.set_horizontalalignment("left")
    ax.tick_params(axis="y", length=0, pad=0.6 * 8 * max(len(text) for text in labels) + 6)
    ax.invert_yaxis()
    ax.set_xlabel("ms since the execution was created")
    span = (end - origin) * 1000.0
    ax.set_xlim(0, span * 1.25 if span > 0 else 1)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    path_names = " → ".join(step_label(s) for s in trace.critical_path())
    title = f"{trace.id}  ({trace.workflow}, {trace.status}, {ms(trace.seconds)} ms)"
    if path_names:
        title += f"\ncritical path (red outline): {path_names}"
    ax.set_title(title, fontsize=9.5, loc="left")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.text(
        0.99,
        0.01,
        "red outline: critical path · red ticks: failed attempts that were retried · "
        "pink: failed · hatched: unresolved",
        ha="right",
        va="bottom",
        fontsize=7,
        color="#666666",
    )
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def throughput_png(report: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Executions and activity attempts per second over the snapshot's time span."""
    buckets = report["throughput"]
    if not buckets:
        raise DolmenError("nothing to plot: no executions match")
    plt = _pyplot()
    first, last = buckets[0]["second"], buckets[-1]["second"]
    # One point per second; a long span is drawn as means over wider bins (stated below).
    width = max(1, math.ceil((last - first + 1) / 2000))
    edges = list(range(first, last + 1, width))

    def series(key: str) -> list[float]:
        sums = [0.0] * len(edges)
        for b in buckets:
            sums[(b["second"] - first) // width] += b[key]
        sums = [v / width for v in sums]
        return sums + sums[-1:]  # repeated so the last bin is drawn to its end

    xs = [e - first for e in edges] + [edges[-1] - first + width]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    top.step(xs, series("started"), where="post", label="executions started", color="#4c78a8")
    top.step(xs, series("ended"), where="post", label="executions ended", color="#f58518")
    top.set_ylabel("executions / s")
    top.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    bottom.step(xs, series("attempts"), where="post", label="activity attempts", color="#54a24b")
    bottom.step(xs, series("events"), where="post", label="events recorded", color="#b279a2")
    bottom.set_ylabel("per second")
    binned = "one-second buckets" if width == 1 else f"means per second over {width}-s bins"
    bottom.set_xlabel(f"seconds since {when(first)} ({binned})")
    bottom.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    for ax in (top, bottom):
        ax.grid(color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        ax.set_ylim(bottom=0)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    runs = report["totals"]["executions"]
    top.set_title(
        f"{report['database']}: {runs['executions']:,} executions, {runs['events']:,} events",
        fontsize=9.5,
        loc="left",
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
