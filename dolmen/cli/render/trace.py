"""`dolmen trace` as text: one execution's steps as bars on a shared time axis.

``timeline_rows`` lays the trace out (the execution, its steps, children's steps under
them); the text timeline here and the PNG in ``charts`` both draw those rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dolmen.cli.render.text import ms, when

if TYPE_CHECKING:  # importing analytics loads DuckDB, which drawing text does not need
    from dolmen.storage.analytics import Step, Trace


def short_name(name: str) -> str:
    return name.rpartition(":")[2] or name


class TimelineRow:
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


def timeline_rows(trace: Trace) -> list[TimelineRow]:
    """The execution, then its steps in issue order, each child's steps under it."""
    rows = [
        TimelineRow(
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
    _add_steps(rows, trace, 1, on_path=True)
    return rows


def _add_steps(rows: list[TimelineRow], trace: Trace, depth: int, on_path: bool) -> None:
    critical = {s.position for s in trace.critical_path()} if on_path else set()
    for step in trace.steps:
        label = step_label(step)
        rows.append(
            TimelineRow(
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
            _add_steps(rows, child, depth + 1, step.position in critical)


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
