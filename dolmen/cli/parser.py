"""The command line: every command, its arguments and its help text.

Each command's handler lives with its concept (``acting``, ``reading``, ``analytics``);
the parser only names them, so ``--help`` works without importing DuckDB or starting Ray.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from dolmen import storage as db
from dolmen.cli.acting import (
    cmd_cancel,
    cmd_down,
    cmd_resume,
    cmd_run,
    cmd_serve,
    cmd_signal,
    cmd_start,
    cmd_up,
)
from dolmen.cli.analytics import cmd_stats, cmd_trace
from dolmen.cli.reading import cmd_history, cmd_ls, cmd_result, cmd_status
from dolmen.cli.repairing import cmd_fork, cmd_restart
from dolmen.cli.upgrade import cmd_upgrade_check

EMBEDDED_NOTE = """\
With the embedded default (no --address and no RAY_ADDRESS) the runtime lives inside
the dolmen process that started it and stops when that process exits. An execution
that is started, signalled or cancelled here progresses while a runtime is up on the
same database: `dolmen run`, `dolmen serve`, `dolmen result --wait`, or any client."""


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db",
        metavar="PATH",
        help=f"database file (default: $DOLMEN_DB, else {db.DEFAULT_DB})",
    )
    common.add_argument(
        "--address",
        help="Ray address to join (default: $RAY_ADDRESS, else an embedded local Ray)",
    )
    parser = argparse.ArgumentParser(
        prog="dolmen",
        description="Run and inspect dolmen durable workflows.",
        epilog="Exit codes: 0 ok; 1 execution failed or cancelled; 2 error; 3 still running.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Callable[[argparse.Namespace], int], text: str) -> Any:
        p = sub.add_parser(
            name,
            parents=[common],
            help=text,
            description=text,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(handler=handler)
        return p

    starting = "ARGS are JSON values; a word that is not JSON is taken as a string."
    p = command("run", cmd_run, "start an execution and print its result as JSON")
    add_start_arguments(p)
    p.add_argument("--timeout", type=float, metavar="S", help="give up waiting after S seconds")
    add_progress(p)
    p.epilog = starting + "\n\n" + EMBEDDED_NOTE

    p = command("start", cmd_start, "start an execution and print its id")
    add_start_arguments(p)
    p.epilog = starting + "\n\n" + EMBEDDED_NOTE

    p = command(
        "serve", cmd_serve, "keep a runtime up on the database (resuming unfinished executions)"
    )
    p.add_argument(
        "--module",
        action="append",
        default=[],
        metavar="M",
        help="import module M (workflow code) first; repeatable",
    )
    p.epilog = "Runs until Ctrl-C or SIGTERM, then flushes and stops cleanly."

    p = command("up", cmd_up, "start a runtime on a Ray cluster that stays up after this command")
    p.add_argument(
        "--module", action="append", default=[], metavar="M", help="import module M first"
    )
    p.add_argument(
        "--lease",
        type=float,
        metavar="S",
        help="seconds a silent node keeps its executions before others replay them (10)",
    )
    p.add_argument(
        "--one-node",
        action="store_true",
        help="run every execution on this node (no replayers on other nodes)",
    )
    p.epilog = (
        "Run it on the node that holds the database file: the storage actor is pinned\n"
        "there, and a replayer starts on every other node that gives Ray CPUs (also on\n"
        "nodes that join later). Any driver with the same --db and --address then\n"
        "submits to and reads from this runtime."
    )

    p = command("down", cmd_down, "flush and stop the runtime that `dolmen up` started")

    p = command("status", cmd_status, "show an execution (reads the database; no Ray)")
    p.add_argument("id", help="execution id")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = command("result", cmd_result, "print an execution's result as JSON")
    p.add_argument("id", help="execution id")
    p.add_argument("--wait", action="store_true", help="wait for a running execution (uses Ray)")
    p.add_argument("--timeout", type=float, metavar="S", help="with --wait: give up after S s")
    p.add_argument(
        "--traceback", action="store_true", help="show a failed workflow's stored traceback"
    )
    add_progress(p)
    p.epilog = "Exit 0 with the result; 1 if it failed or was cancelled; 3 if still running."

    p = command("cancel", cmd_cancel, "cancel an execution, its children and activities")
    p.add_argument("id", help="execution id")
    p.epilog = EMBEDDED_NOTE

    p = command("signal", cmd_signal, "send a signal to an execution")
    p.add_argument("id", help="execution id")
    p.add_argument("name", help="signal name")
    p.add_argument("value", nargs="?", help="JSON value (a non-JSON word is a string)")
    p.epilog = EMBEDDED_NOTE

    p = command("resume", cmd_resume, "replay a blocked execution against the code deployed now")
    p.add_argument("id", help="execution id")
    p.add_argument(
        "--module", action="append", default=[], metavar="M", help="register module M first"
    )
    p.epilog = (
        "A blocked execution's code diverged from its history. It resumes by itself when\n"
        "code that replays it is registered or the runtime restarts; this asks now. Exit 1\n"
        "(it stays blocked) if the code still diverges; `dolmen upgrade-check` tells first."
    )

    p = command(
        "upgrade-check",
        cmd_upgrade_check,
        "replay unfinished executions on the code as importable now (before a deploy; no Ray)",
    )
    p.add_argument("module", nargs="+", metavar="MODULE", help="module(s) with the new code")
    p.add_argument("--workflow", action="append", default=[], metavar="NAME", help="only NAME")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.epilog = (
        "Every running or blocked execution of the modules' workflows is replayed in memory\n"
        "(no activity runs; the database is read-only). Exit 0 if all replay cleanly, 1 if\n"
        "any would block (each is listed with where it diverges), 2 on error."
    )

    p = command("fork", cmd_fork, "a new execution from an ended one's results before a step")
    p.add_argument("id", help="the execution to fork (it must have ended)")
    p.add_argument(
        "--at",
        type=int,
        metavar="N",
        help="reuse the results of commands before position N, as `dolmen history` shows "
        "them (default: the step that failed)",
    )
    p.add_argument("--new-id", metavar="ID", help="the fork's id (default: <id>.fork<k>)")
    add_repair_waiting(p)
    p.epilog = EMBEDDED_NOTE

    p = command("restart", cmd_restart, "a new run of a failed or cancelled execution")
    p.add_argument("id", help="execution id")
    add_repair_waiting(p)
    p.epilog = (
        "Reuses the results recorded before the failing command; the ended run stays as\n"
        "an earlier run (`dolmen history ID --run N`).\n\n" + EMBEDDED_NOTE
    )

    p = command("ls", cmd_ls, "list executions, newest first (reads the database; no Ray)")
    p.add_argument("--status", help="running, blocked, finished, failed or cancelled")
    p.add_argument("--workflow", metavar="NAME", help="module:function or just function")
    p.add_argument("--limit", type=int, default=100, metavar="N", help="at most N (100)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = command("history", cmd_history, "show an execution's event history (no Ray)")
    p.add_argument("id", help="execution id")
    p.add_argument(
        "--run", type=int, metavar="N", help="show run N (1 = the first; default: the latest)"
    )
    p.add_argument(
        "--json", action="store_true", help="print a lossless JSON document (payloads decoded)"
    )

    p = command("stats", cmd_stats, "counts, rates, latencies and throughput (DuckDB; no Ray)")
    p.add_argument(
        "--since", metavar="WHEN", help="executions created since: 30s, 15m, 2h, 1d or a date/time"
    )
    p.add_argument("--workflow", metavar="NAME", help="module:function or just function")
    p.add_argument("--slowest", type=int, default=10, metavar="N", help="list N slowest (10)")
    p.add_argument("--json", action="store_true", help="print the whole report as JSON")
    p.add_argument("--png", metavar="FILE", help="draw throughput per second (needs matplotlib)")
    p.epilog = (
        "Reads the database read-only with DuckDB, also while a runtime writes it.\n"
        "Latencies: an activity's schedule->start counts only earlier failed attempts (no\n"
        "attempt-start event is recorded); an execution's is its wait for its first command."
    )

    p = command("trace", cmd_trace, "timeline of one execution and its critical path (no Ray)")
    p.add_argument("id", help="execution id")
    p.add_argument("--png", metavar="FILE", help="draw the timeline as an image (needs matplotlib)")
    p.add_argument("--json", action="store_true", help="print steps, children and critical path")
    p.add_argument("--limit", type=int, default=200, metavar="N", help="show at most N steps")
    p.epilog = (
        "Steps are shown as bars on one time axis, children's steps under them; the\n"
        "critical path is the chain of steps that bounded the execution's duration."
    )
    return parser


def add_start_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("workflow", metavar="module:function", help="the workflow to run")
    p.add_argument("args", nargs="*", metavar="ARGS", help="arguments, as JSON values")
    p.add_argument("--id", help="execution id (an existing id returns that execution)")


def add_repair_waiting(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wait", action="store_true", help="wait for its result and print it")
    p.add_argument("--timeout", type=float, metavar="S", help="with --wait: give up after S s")
    add_progress(p)


def add_progress(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--progress",
        action="store_true",
        help="show waiting progress on stderr even when it is not a terminal",
    )
