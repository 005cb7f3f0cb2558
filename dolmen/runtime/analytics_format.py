"""Rendering analytics for people: `dolmen stats` tables, `dolmen trace` timelines.

Text goes to the terminal; ``--png`` draws the same timeline, or the throughput chart,
with matplotlib (imported only then, with a clear error if it is missing).
"""

from __future__ import annotations

import datetime
import math
import os
from collections.abc import Iterable
from typing import Any

from dolmen.runtime.errors import DolmenError
from dolmen.storage.analytics import Step, Trace

_SPARKS = " ▁▂▃▄▅▆▇█"


# ---- small helpers -------------------------------------------------------------------------


def table(rows: list[list[str]], right: Iterable[int] = ()) -> list[str]:
    """Columns padded to their widest cell; columns in ``right`` are right-aligned."""
    right = set(right)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def count(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def percent(rate: float | None) -> str:
    return "-" if rate is None else f"{100.0 * rate:.1f}%"


def ms(seconds: float | None) -> str:
    if seconds is None or seconds != seconds:  # None or NaN
        return "-"
    value = seconds * 1000.0
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def size(n: float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000.0
    return f"{n:,.1f} GB"


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.datetime.fromtimestamp(ts).isoformat(sep=" ", timespec="seconds")


def short_name(name: str) -> str:
    return name.rpartition(":")[2] or name


def sparkline(values: list[int], unicode: bool = True) -> str:
    top = max(values, default=0)
    if top <= 0:
        return ""
    marks = _SPARKS if unicode else " .:-=+*#%@"
    return "".join(marks[round(v / top * (len(marks) - 1))] for v in values)


def filled(buckets: list[dict[str, Any]], key: str, last: int) -> list[int]:
    """``key`` per second over the last ``last`` seconds that had buckets, gaps as 0."""
    if not buckets:
        return []
    end = buckets[-1]["second"]
    start = max(buckets[0]["second"], end - last + 1)
    by_second = {b["second"]: b[key] for b in buckets}
    return [by_second.get(s, 0) for s in range(start, end + 1)]


# ---- dolmen stats --------------------------------------------------------------------------


def render_stats(report: dict[str, Any], unicode: bool = True) -> list[str]:
    totals = report["totals"]
    runs, acts = totals["executions"], totals["activities"]
    scope = []
    if report.get("workflow"):
        scope.append(f"workflow {report['workflow']}")
    if report.get("since") is not None:
        scope.append(f"since {when(report['since'])}")
    lines = [
        f"database {report['database']}" + (f"  ({', '.join(scope)})" if scope else ""),
        f"{count(runs['executions'])} executions, {count(runs['events'])} events, "
        f"{count(acts['steps'])} activity steps; from {when(runs['first_created'])} "
        f"to {when(runs['last_activity'])}",
    ]
    if not runs["executions"]:
        lines.append("no executions recorded" + (" that match" if scope else " yet"))
        return lines

    lines += ["", "EXECUTIONS"]
    rows = [["WORKFLOW", "TOTAL", "RUNNING", "FINISHED", "FAILED", "CANCELLED", "NONDET."]]
    rows[0] += ["SUCCESS", "FAILURE"]
    for w in report["workflows"]:
        rows.append(
            [
                w["workflow"],
                *(
                    count(w[k])
                    for k in (
                        "executions",
                        "running",
                        "finished",
                        "failed",
                        "cancelled",
                        "nondeterministic",
                    )
                ),
                percent(w["success_rate"]),
                percent(w["failure_rate"]),
            ]
        )
    lines += table(rows, right=range(1, 9))

    if report["activities"]:
        lines += ["", "ACTIVITIES (rates: success and failure per step after retries; retry"]
        lines[-1] += " rate per attempt)"
        rows = [
            [
                "ACTIVITY",
                "STEPS",
                "ATTEMPTS",
                "OK",
                "FAILED",
                "PENDING",
                "RETRIES",
                "TIMEOUTS",
                "SUCCESS",
                "FAILURE",
                "RETRY",
            ]
        ]
        for a in report["activities"]:
            rows.append(
                [
                    a["activity"],
                    *(
                        count(a[k])
                        for k in (
                            "steps",
                            "attempts",
                            "completed",
                            "failed",
                            "pending",
                            "retries",
                            "timeouts",
                        )
                    ),
                    percent(a["success_rate"]),
                    percent(a["failure_rate"]),
                    percent(a["retry_rate"]),
                ]
            )
        lines += table(rows, right=range(1, 11))

    if report["latency"]:
        lines += ["", "LATENCY (ms)"]
        rows = [["", "NAME", "N", "MEASURE", "P50", "P95", "P99", "MAX"]]
        labels = {
            "schedule_to_start": "schedule->start",
            "start_to_finish": "start->finish",
            "end_to_end": "end-to-end",
        }
        for entry in report["latency"]:
            for i, (measure, label) in enumerate(labels.items()):
                figures = entry[measure]
                rows.append(
                    [
                        entry["level"] if i == 0 else "",
                        entry["name"] if i == 0 else "",
                        count(entry["count"]) if i == 0 else "",
                        label,
                        *(ms(figures[k]) for k in ("p50", "p95", "p99", "max")),
                    ]
                )
        lines += table(rows, right=(2, 4, 5, 6, 7))
        lines.append(
            "  activity schedule->start counts only earlier failed attempts (no attempt-start"
        )
        lines.append("  event is recorded); an execution's is its wait until its first command")

    buckets = report["throughput"]
    if buckets:
        span = buckets[-1]["second"] - buckets[0]["second"] + 1
        lines += ["", f"THROUGHPUT (per second; {len(buckets)} active of {span} seconds)"]
        rows = [["", "PEAK", "MEAN (ACTIVE)", f"LAST {min(span, 60)} S"]]
        for key, label in (
            ("started", "executions started"),
            ("ended", "executions ended"),
            ("attempts", "activity attempts"),
            ("events", "events recorded"),
        ):
            values = [b[key] for b in buckets]
            rows.append(
                [
                    label,
                    count(max(values)),
                    f"{sum(values) / len(values):,.1f}",
                    sparkline(filled(buckets, key, 60), unicode),
                ]
            )
        lines += table(rows, right=(1, 2))

    if report["slowest"]:
        lines += ["", "SLOWEST EXECUTIONS"]
        rows = [["ID", "WORKFLOW", "STATUS", "MS", "EVENTS", "STEPS", "CREATED"]]
        for s in report["slowest"]:
            rows.append(
                [
                    s["id"],
                    s["workflow"],
                    s["status"],
                    ms(s["seconds"]),
                    count(s["events"]),
                    count(s["steps"]),
                    when(s["created_at"]),
                ]
            )
        lines += table(rows, right=(3, 4, 5))

    storage = report["storage"]
    lines += ["", "STORAGE (payload bytes per execution: event data + result)"]
    rows = [["WORKFLOW", "EXECUTIONS", "TOTAL", "MEAN", "P50", "MAX", "EVENTS/EXEC"]]
    for w in storage["per_workflow"]:
        rows.append(
            [
                w["workflow"],
                count(w["executions"]),
                size(w["bytes"]),
                size(w["mean"]),
                size(w["p50"]),
                size(w["max"]),
                f"{w['mean_events']:.1f}",
            ]
        )
    lines += table(rows, right=range(1, 7))
    lines.append(
        f"  database file {size(storage['file_bytes'])} (with WAL): "
        f"{size(storage['file_bytes_per_execution'])} per execution in the file, "
        "SQLite overhead included"
    )

    incidents = report["incidents"]
    lines += [
        "",
        f"INCIDENTS: {incidents['nondeterministic_count']} nondeterministic, "
        f"{incidents['timeout_count']} timed-out attempts",
    ]
    for n in incidents["nondeterministic"]:
        lines.append(
            f"  nondeterministic {n['id']} ({n['workflow']}) at position {n['position']}: "
            f"recorded {n['expected']}, code issued {n['actual']}"
        )
    for t in incidents["timeouts"][:20]:
        then = "final" if t["final"] else "retried"
        lines.append(
            f"  timeout {t['id']} position {t['position']} {t['activity']} "
            f"attempt {t['attempt']} ({then}) at {when(t['ts'])}"
        )
    if incidents["timeout_count"] > 20:
        lines.append(f"  ... {incidents['timeout_count'] - 20} more (see --json)")
    return lines


# ---- dolmen trace --------------------------------------------------------------------------


class _Row:
    """One line of a timeline: the execution itself, or one step (indented if nested)."""

    def __init__(
        self,
        depth: int,
        label: str,
        kind: str,
        start: float,
        end: float | None,
        critical: bool,
        outcome: str,
        note: str,
        step: Step | None = None,
    ) -> None:
        self.depth, self.label, self.kind = depth, label, kind
        self.start, self.end, self.critical = start, end, critical
        self.outcome, self.note, self.step = outcome, note, step


def timeline_rows(trace: Trace) -> list[_Row]:
    """The execution, then its steps in issue order, each child's steps under it."""
    end = trace.finished_at if trace.finished_at is not None else trace.last_ts
    rows = [
        _Row(
            0,
            f"{trace.id} ({short_name(trace.workflow)})",
            "workflow",
            trace.created_at,
            trace.finished_at,
            True,
            trace.status,
            trace.status,
        )
    ]
    _add_steps(rows, trace, 1, on_path=True, now=end)
    return rows


def _add_steps(rows: list[_Row], trace: Trace, depth: int, on_path: bool, now: float) -> None:
    critical = {s.position for s in trace.critical_path()} if on_path else set()
    for step in trace.steps:
        label = step_label(step)
        rows.append(
            _Row(
                depth,
                label,
                step.kind,
                step.issued,
                step.ended,
                step.position in critical,
                step.outcome,
                _note(step),
                step,
            )
        )
        child = trace.children.get(step.child_id or "")
        if child is not None:
            _add_steps(rows, child, depth + 1, step.position in critical, now)


def step_label(step: Step) -> str:
    """``#3 charge('order-7', 12.5)``: position and call (no position for a cancel)."""
    return f"#{step.position} {step.call}" if step.position >= 0 else step.call


def _note(step: Step) -> str:
    parts = []
    if step.kind == "child" and step.child_id:
        parts.append(step.child_id)
    if step.outcome != "completed":
        parts.append(step.outcome)
    if step.retries:
        parts.append(f"{step.attempts} attempts")
    if step.timeouts:
        parts.append(f"{step.timeouts} timed out")
    return ", ".join(parts)


def render_trace(
    trace: Trace, width: int = 100, limit: int = 200, unicode: bool = True
) -> list[str]:
    """A timeline: one bar per step on a shared time axis (ms since creation)."""
    rows = timeline_rows(trace)
    origin = trace.created_at
    end = trace.finished_at if trace.finished_at is not None else trace.last_ts
    total = max(end - origin, 1e-9)
    path = trace.critical_path()
    took = f"{ms(trace.seconds)} ms"
    if trace.finished_at is None:
        took = f"last event {took} after creation"
    lines = [
        f"execution {trace.id}  workflow {trace.workflow}  status {trace.status}  {took}",
        f"created {when(trace.created_at)}; times are ms since then",
    ]
    if path:
        names = " -> ".join(step_label(s) for s in path)
        busy = sum(s.seconds or 0.0 for s in path)
        waited = sum(s.waited or 0.0 for s in path) + trace.final_wait()
        lines.append(
            f"critical path: {names}  (steps {ms(busy)} ms + waits between them {ms(waited)} ms)"
        )
    labels = [("  " * r.depth) + f"{r.kind} {r.label}" for r in rows[: limit + 1]]
    label_width = min(max(len(text) for text in labels), 40)
    bar_width = max(width - label_width - 26, 20)
    full, part, running = ("█", "▒", "░") if unicode else ("#", "=", ".")
    axis = "0 ms".ljust(bar_width - 10) + f"{ms(total)} ms".rjust(10)
    header = f"{'':<{label_width}}  {axis}{'START':>8} {'TOOK':>8}"
    lines.append(header.rstrip())
    for row, text in zip(rows[: limit + 1], labels, strict=True):
        first = int((row.start - origin) / total * bar_width)
        first = min(max(first, 0), bar_width - 1)
        stop = row.end if row.end is not None else end
        last = int(round((stop - origin) / total * bar_width))
        last = min(max(last, first + 1), bar_width)
        mark = full if row.critical else part
        if row.end is None:
            mark = running
        bar = " " * first + mark * (last - first) + " " * (bar_width - last)
        took = ms(row.end - row.start) if row.end is not None else "..."
        label = text if len(text) <= label_width else text[: label_width - 1] + "~"
        line = f"{label:<{label_width}}  {bar}{ms(row.start - origin):>8} {took:>8}"
        if row.note:
            line += f"  {row.note}"
        lines.append(line.rstrip())
    if len(rows) > limit + 1:
        lines.append(f"... {len(rows) - limit - 1} more steps (raise --limit)")
    legend = (
        f"{full} critical path  {part} other steps  {running} unresolved (running or abandoned)"
    )
    lines.append(legend)
    return lines


# ---- PNG -----------------------------------------------------------------------------------


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise DolmenError("--png needs matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


_BAD = frozenset({"failed", "nondeterministic", "cancelled"})
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
