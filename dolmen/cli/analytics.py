"""Commands over DuckDB analytics: stats and trace (read-only; no Ray).

DuckDB is imported only when one of them runs, and matplotlib only for ``--png``, so the
other commands start without them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from dolmen.cli.plumbing import EXIT_OK, db_path, reader
from dolmen.cli.render import charts
from dolmen.cli.render.stats import render_stats
from dolmen.cli.render.trace import render_trace
from dolmen.cli.values import parse_since


@contextlib.contextmanager
def analytics(args: argparse.Namespace, **filters: Any) -> Iterator[Any]:
    """Analytics over the database, validated like the other readers."""
    from dolmen.storage.analytics import Analytics

    with reader(args) as conn, Analytics(db_path(args), conn=conn, **filters) as session:
        yield session


def cmd_stats(args: argparse.Namespace) -> int:
    since = parse_since(args.since) if args.since else None
    with analytics(args, since=since, workflow=args.workflow) as session:
        report = session.report(slowest=args.slowest)
    if args.png:
        charts.throughput_png(report, args.png)
        print(f"dolmen: wrote {args.png}", file=sys.stderr)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    elif not args.png:
        for line in render_stats(report, unicode=unicode_ok(sys.stdout)):
            print(line)
    return EXIT_OK


def cmd_trace(args: argparse.Namespace) -> int:
    with analytics(args) as session:
        trace = session.trace(args.id)
    if args.png:
        charts.trace_png(trace, args.png, limit=args.limit)
        print(f"dolmen: wrote {args.png}", file=sys.stderr)
    if args.json:
        print(json.dumps(trace.to_json(), indent=2))
    elif not args.png:
        width = shutil.get_terminal_size((120, 24)).columns
        lines = render_trace(trace, width, args.limit, unicode=unicode_ok(sys.stdout))
        for line in lines:
            print(line)
    return EXIT_OK


def unicode_ok(stream: TextIO) -> bool:
    return "utf" in (getattr(stream, "encoding", None) or "").lower()
