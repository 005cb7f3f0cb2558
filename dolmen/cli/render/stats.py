"""`dolmen stats` as text: the analytics report in tables, with throughput sparklines."""

from __future__ import annotations

from typing import Any

from dolmen.cli.render.text import count, ms, percent, size, table, when

_SPARKS = " ▁▂▃▄▅▆▇█"


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
    rows = [["WORKFLOW", "TOTAL", "RUNNING", "FINISHED", "FAILED", "CANCELLED", "BLOCKED"]]
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
                        "blocked",
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
        f"INCIDENTS: {incidents['blocked_count']} blocked, "
        f"{incidents['timeout_count']} timed-out attempts",
    ]
    for n in incidents["blocked"]:
        lines.append(
            f"  blocked {n['id']} ({n['workflow']}) at position {n['position']}: "
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
