"""Commands that read the database: status, result, ls, history (read-only; no Ray).

Only ``result --wait`` on a running execution reaches the runtime, to wait for it.
"""

from __future__ import annotations

import argparse
import json
import sys

from dolmen import storage as db
from dolmen.cli.plumbing import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_RUNNING,
    await_result,
    reader,
    runtime,
    wants_progress,
)
from dolmen.cli.render.history import render_history
from dolmen.cli.render.text import table
from dolmen.runtime.describe import error_text, local_time
from dolmen.runtime.events import TERMINAL, Event, Kind, short
from dolmen.runtime.status import Status
from dolmen.storage import export


def load(args: argparse.Namespace) -> tuple[db.ExecutionRow, list[Event]]:
    """The execution and the history of its latest run (or of ``args.run``)."""
    with reader(args) as conn:
        row = db.require_execution(conn, args.id)
        run = getattr(args, "run", None)
        return row, db.load_history(conn, row.eid) if run is None else db.load_run(conn, row, run)


def cmd_status(args: argparse.Namespace) -> int:
    row, events = load(args)
    with reader(args) as conn:
        runs = db.run_count(conn, row.eid)
        first = db.first_event(conn, row.eid)
    doc = export.execution_to_json(row, len(events))
    doc["run"] = runs
    source = first.data.get("forked_from") if first is not None else None
    if source is not None:
        doc["forked_from"], doc["forked_at"] = source, first.data.get("forked_at")
    if args.json:
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    fields = [
        ("id", row.id),
        ("workflow", row.workflow),
        ("status", row.status),
        ("created", local_time(row.created_at)),
        ("finished", finished_text(row)),
        ("events", str(len(events))),
    ]
    if runs > 1:
        fields.append(("run", str(runs)))
    if source is not None:
        fields.append(("forked", f"from {source} at position {doc['forked_at']}"))
    if doc["parent_id"]:
        fields.append(("parent", doc["parent_id"]))
    problem = doc["error"]
    if row.status is Status.BLOCKED and problem:
        # What the NondeterminismError said: where the code and the history part ways.
        fields.append(("blocked", f"at history position {problem.get('position')}"))
        fields.append(("recorded", short(str(problem.get("expected")))))
        fields.append(("issued", short(str(problem.get("actual")))))
    elif problem:
        fields.append(("error", short(f"{problem.get('type')}: {problem.get('message')}")))
    for name, value in fields:
        print(f"{name:<9} {value}")
    return EXIT_OK


def finished_text(row: db.ExecutionRow) -> str:
    if row.finished_at is None:
        return "-"
    return f"{local_time(row.finished_at)} (after {row.finished_at - row.created_at:.3f} s)"


def cmd_result(args: argparse.Namespace) -> int:
    with reader(args) as conn:
        row = db.require_execution(conn, args.id)
    if not row.status.ended and args.wait:
        with runtime(args) as client:
            return await_result(client.handle(row.id), args.timeout, wants_progress(args))
    return print_stored_result(row, args.traceback)


def print_stored_result(row: db.ExecutionRow, traceback: bool = False) -> int:
    outcome = row.outcome()
    if outcome.status is Status.RUNNING:
        print(
            f"dolmen: execution {row.id} is still running "
            f"(wait with `dolmen result --wait {row.id}`)",
            file=sys.stderr,
        )
        return EXIT_RUNNING
    if outcome.status is Status.BLOCKED:
        print(
            f"dolmen: execution {row.id} is blocked: {error_text(outcome.error or {})}; "
            f"deploy code that replays it, then `dolmen resume {row.id}`",
            file=sys.stderr,
        )
        return EXIT_RUNNING
    if outcome.status is Status.FINISHED:
        print(json.dumps(export.decode_payload(outcome.result), ensure_ascii=False))
        return EXIT_OK
    fields = outcome.error or {}
    if outcome.status is Status.CANCELLED:
        print(f"dolmen: execution {row.id} was cancelled", file=sys.stderr)
    else:
        print(f"dolmen: execution {row.id} failed: {error_text(fields)}", file=sys.stderr)
        if traceback and fields.get("traceback"):
            print(str(fields["traceback"]).rstrip(), file=sys.stderr)
    return EXIT_FAILED


def cmd_ls(args: argparse.Namespace) -> int:
    with reader(args) as conn:
        rows = db.list_executions(
            conn, status=args.status, workflow=args.workflow, limit=args.limit
        )
        runs = [db.run_count(conn, r.eid) for r in rows]  # the latest run's number
    if args.json:
        docs = [dict(export.row_to_json(r), run=n) for r, n in zip(rows, runs, strict=True)]
        print(json.dumps(docs, indent=2))
        return EXIT_OK
    lines = [["ID", "WORKFLOW", "STATUS", "RUN", "CREATED", "SECONDS"]]
    lines += [
        [
            r.id,
            r.workflow,
            r.status,
            str(n),
            local_time(r.created_at),
            f"{r.finished_at - r.created_at:.3f}" if r.finished_at is not None else "-",
        ]
        for r, n in zip(rows, runs, strict=True)
    ]
    for line in table(lines):
        print(line)
    if not rows:
        print("(no executions)", file=sys.stderr)
    return EXIT_OK


def cmd_history(args: argparse.Namespace) -> int:
    row, events = load(args)
    if args.json:
        print(json.dumps(export.history_document(row, events), indent=2, ensure_ascii=False))
    else:
        if args.run is not None:
            print(f"run {args.run}: {run_status(events)} (the execution is {row.status})")
        for line in render_history(row, events):
            print(line)
    return EXIT_OK


def run_status(events: list[Event]) -> str:
    """How one run ended, from its last event (a run without an ending is the latest)."""
    last = events[-1].kind
    if last in TERMINAL or last == Kind.CONTINUED:
        return str(Status.of_terminal(last))
    return str(Status.RUNNING)
