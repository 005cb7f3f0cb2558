"""The `dolmen` command: run and inspect durable workflows.

Commands that read (status, result, ls, history) open the SQLite file read-only and need
no Ray; commands that act (run, start, serve, cancel, signal, result --wait) connect to the
runtime that owns the database.

Exit codes: 0 success; 1 the execution failed, was cancelled or stopped as
nondeterministic; 2 usage or dolmen error; 3 the execution is still running.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from dolmen import storage as db
from dolmen.runtime import history_format as fmt
from dolmen.runtime.errors import (
    CancelledError,
    DolmenError,
    NondeterminismError,
    ResultTimeoutError,
    StorageError,
    WorkflowFailedError,
)

EXIT_OK, EXIT_FAILED, EXIT_ERROR, EXIT_RUNNING = 0, 1, 2, 3
_ENDED_BADLY = (WorkflowFailedError, CancelledError, NondeterminismError)

EMBEDDED_NOTE = """\
With the embedded default (no --address and no RAY_ADDRESS) the runtime lives inside
the dolmen process that started it and stops when that process exits. An execution
that is started, signalled or cancelled here progresses while a runtime is up on the
same database: `dolmen run`, `dolmen serve`, `dolmen result --wait`, or any client."""


# ---- helpers -----------------------------------------------------------------------------


def db_path(args: argparse.Namespace) -> str:
    return args.db or os.environ.get("DOLMEN_DB") or db.DEFAULT_DB


def parse_value(text: str) -> Any:
    """A command-line value: JSON if it parses, else the text itself as a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def dump_json(value: Any, out: TextIO) -> None:
    out.write(json.dumps(fmt.to_json_value(value), indent=None, ensure_ascii=False) + "\n")


def remote_cause(exc: BaseException) -> BaseException:
    """The error the runtime raised, without the remote traceback Ray wraps around it."""
    # Ray re-raises an actor's exception as a subclass of both RayTaskError and the
    # original class; the original is kept as ``cause``.
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


def error(message: str) -> None:
    print(f"dolmen: error: {message}", file=sys.stderr)


@contextlib.contextmanager
def reader(args: argparse.Namespace) -> Iterator[Any]:
    """A read-only connection; a missing file gets a hint instead of SQLite's wording."""
    path = db_path(args)
    if not os.path.exists(path):
        raise StorageError(
            f"no dolmen database at {path!r} (pass --db PATH or set DOLMEN_DB; "
            "a database is created by the first `dolmen run` or `dolmen start`)"
        )
    conn = db.open_readonly(path)
    try:
        yield conn
    finally:
        conn.close()


def cannot_connect(args: argparse.Namespace, exc: ConnectionError) -> DolmenError:
    where = args.address or os.environ.get("RAY_ADDRESS") or "a local Ray"
    return DolmenError(f"cannot connect to {where}: {exc}")


@contextlib.contextmanager
def runtime(args: argparse.Namespace, **options: Any) -> Iterator[Any]:
    """A client of the runtime that owns the database (starting a local Ray if embedded).

    Closing it shuts the host down only if this process created it, so a `dolmen signal`
    leaves a host that `dolmen serve` or an application runs on a cluster up.
    """
    from dolmen.client import Client

    path = os.path.abspath(db_path(args))
    try:
        client = Client(path, address=args.address, **options)
    except ConnectionError as exc:
        raise cannot_connect(args, exc) from None
    try:
        yield client
    finally:
        client.close()


class Progress:
    """Elapsed seconds and the execution id on stderr while a result is awaited."""

    def __init__(self, execution_id: str, enabled: bool, stream: TextIO | None = None) -> None:
        self.execution_id = execution_id
        self.enabled = enabled
        self.stream = stream or sys.stderr
        # On a terminal one line is redrawn; in a log each update is its own line.
        self._redraw = self.stream.isatty()
        self._shown = False

    def __call__(self, waited: float) -> None:
        if not self.enabled:
            return
        text = f"dolmen: waiting {waited:.0f} s for execution {self.execution_id}"
        self.stream.write(f"\r{text}\033[K" if self._redraw else text + "\n")
        self.stream.flush()
        self._shown = True

    def done(self) -> None:
        if self._shown and self._redraw:
            self.stream.write("\r\033[K")
            self.stream.flush()


def wants_progress(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "progress", False)) or sys.stderr.isatty()


def await_result(handle: Any, timeout: float | None, show: bool) -> int:
    """Wait for ``handle``'s result, print it as JSON; the exit code says how it ended."""
    progress = Progress(handle.id, show)
    try:
        value = handle.result(timeout=timeout, progress=progress)
    except ResultTimeoutError:
        progress.done()
        print(
            f"dolmen: execution {handle.id} is still running after {timeout} s "
            f"(wait with `dolmen result --wait {handle.id}`)",
            file=sys.stderr,
        )
        return EXIT_RUNNING
    except _ENDED_BADLY as exc:
        progress.done()
        print(f"dolmen: {remote_cause(exc)}", file=sys.stderr)
        return EXIT_FAILED
    progress.done()
    dump_json(value, sys.stdout)
    return EXIT_OK


def prepare_start(args: argparse.Namespace) -> tuple[Any, list[Any]]:
    """Find the workflow and check its arguments before paying for Ray's startup."""
    from dolmen.runtime.definitions import lookup_workflow

    workflow = lookup_workflow(args.workflow)
    values = [parse_value(a) for a in args.args]
    try:
        workflow.encode_args(tuple(values), {})
    except TypeError as exc:  # wrong arity; EncodingError (a DolmenError) passes through
        if isinstance(exc, DolmenError):
            raise
        raise DolmenError(str(exc)) from None
    return workflow, values


# ---- commands that act through the runtime -------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    workflow, values = prepare_start(args)
    with runtime(args) as client:
        handle = client.start(workflow, *values, id=args.id)
        return await_result(handle, args.timeout, wants_progress(args))


def cmd_start(args: argparse.Namespace) -> int:
    workflow, values = prepare_start(args)
    with runtime(args) as client:
        print(client.start(workflow, *values, id=args.id).id)
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    workflows = import_modules(args.module)
    path = db_path(args)
    print(f"dolmen: starting the runtime for {os.path.abspath(path)}", flush=True)
    with runtime(args) as client:
        # Installed after Ray started, so ours are the handlers in force while serving.
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        if workflows:
            # Hand the code to the host now: executions parked for lack of it resume.
            client.register(*workflows)
        info = client.host_info()
        print(
            f"dolmen: serving {info.get('db_path')} (host pid {info.get('pid')} on node "
            f"{str(info.get('node_id'))[:12]}, {info.get('loaded')} executions loaded, "
            f"{len(workflows)} workflows registered); Ctrl-C to stop",
            flush=True,
        )
        while not stop.wait(1.0):
            pass
        print("dolmen: stopping (flushing cached events)", flush=True)
    print("dolmen: stopped", flush=True)
    return EXIT_OK


def require_cluster(args: argparse.Namespace) -> None:
    if not (args.address or os.environ.get("RAY_ADDRESS")):
        raise DolmenError(
            f"`dolmen {args.command}` acts on a Ray cluster: give --address or set RAY_ADDRESS "
            "(on one machine without a cluster, `dolmen serve` keeps a runtime up)"
        )


def cmd_up(args: argparse.Namespace) -> int:
    """Start a runtime that outlives this command: a storage actor here, replayers elsewhere."""
    require_cluster(args)
    workflows = import_modules(args.module)
    options = dict(spread=not args.one_node, lease_seconds=args.lease, detached=True)
    with runtime(args, **options) as client:
        if workflows:
            client.register(*workflows)
        info = client.host_info()
    print(f"dolmen: runtime up for {info['db_path']} (storage actor pid {info['pid']})")
    hosts = info.get("hosts") or [
        {"host": "storage", "node": str(info["node_id"])[:12], "cpus": "", "executions": ""}
    ]
    rows = [["HOST", "NODE", "CPUS", "EXECUTIONS"]]
    rows += [[h["host"], str(h["node"]), str(h["cpus"]), str(h["executions"])] for h in hosts]
    print("\n".join(format_table(rows)))
    return EXIT_OK


def cmd_down(args: argparse.Namespace) -> int:
    from dolmen.actors import ray_face

    require_cluster(args)
    path = os.path.abspath(db_path(args))
    try:
        ray_face.ensure_ray(args.address)
    except ConnectionError as exc:
        raise cannot_connect(args, exc) from None
    if not ray_face.stop_runtime(path):
        raise DolmenError(f"no dolmen runtime for {path} runs on this cluster")
    print(f"dolmen: runtime for {path} stopped (unfinished executions resume at the next up)")
    return EXIT_OK


def import_modules(names: list[str]) -> list[Any]:
    """Import modules that hold workflow code; returns the workflows they define."""
    import importlib

    from dolmen.runtime.definitions import Workflow

    found: list[Any] = []
    for name in names:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise DolmenError(f"cannot import module {name!r}: {exc}") from None
        found += [v for v in vars(module).values() if isinstance(v, Workflow)]
    return found


def cmd_cancel(args: argparse.Namespace) -> int:
    with runtime(args) as client:
        client.handle(args.id).cancel()
    print(f"dolmen: cancel requested for execution {args.id}", file=sys.stderr)
    return EXIT_OK


def cmd_signal(args: argparse.Namespace) -> int:
    value = parse_value(args.value) if args.value is not None else None
    with runtime(args) as client:
        client.handle(args.id).signal(args.name, value)
    print(f"dolmen: signal {args.name!r} sent to execution {args.id}", file=sys.stderr)
    return EXIT_OK


# ---- commands that read the database ---------------------------------------------------------


def load(args: argparse.Namespace) -> tuple[db.ExecutionRow, list[Any]]:
    with reader(args) as conn:
        row = db.require_execution(conn, args.id)
        return row, db.load_history(conn, row.eid)


def cmd_status(args: argparse.Namespace) -> int:
    row, events = load(args)
    doc = fmt.execution_to_json(row, len(events))
    if args.json:
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    fields = [
        ("id", row.id),
        ("workflow", row.workflow),
        ("status", row.status),
        ("created", fmt.local_time(row.created_at)),
        ("finished", finished_text(row)),
        ("events", str(len(events))),
    ]
    if doc["parent_id"]:
        fields.append(("parent", doc["parent_id"]))
    if doc["error"]:
        problem = doc["error"]
        fields.append(("error", fmt.short(f"{problem.get('type')}: {problem.get('message')}")))
    for name, value in fields:
        print(f"{name:<9} {value}")
    return EXIT_OK


def finished_text(row: db.ExecutionRow) -> str:
    if row.finished_at is None:
        return "-"
    return f"{fmt.local_time(row.finished_at)} (after {row.finished_at - row.created_at:.3f} s)"


def cmd_result(args: argparse.Namespace) -> int:
    with reader(args) as conn:
        row = db.require_execution(conn, args.id)
    if row.status == "running" and args.wait:
        with runtime(args) as client:
            return await_result(client.handle(row.id), args.timeout, wants_progress(args))
    return print_stored_result(row, args.traceback)


def print_stored_result(row: db.ExecutionRow, traceback: bool = False) -> int:
    if row.status == "running":
        print(
            f"dolmen: execution {row.id} is still running "
            f"(wait with `dolmen result --wait {row.id}`)",
            file=sys.stderr,
        )
        return EXIT_RUNNING
    if row.status == "finished":
        print(json.dumps(fmt.decode_payload(row.result), ensure_ascii=False))
        return EXIT_OK
    fields = fmt.stored_error(row) or {}
    if row.status == "cancelled":
        print(f"dolmen: execution {row.id} was cancelled", file=sys.stderr)
    else:
        what = "stopped (nondeterministic)" if row.status == "nondeterministic" else "failed"
        kind, message = fields.get("type", "?"), fields.get("message", "")
        print(f"dolmen: execution {row.id} {what}: {kind}: {message}", file=sys.stderr)
        if traceback and fields.get("traceback"):
            print(str(fields["traceback"]).rstrip(), file=sys.stderr)
    return EXIT_FAILED


def cmd_ls(args: argparse.Namespace) -> int:
    with reader(args) as conn:
        rows = db.list_executions(
            conn, status=args.status, workflow=args.workflow, limit=args.limit
        )
    if args.json:
        print(json.dumps([ls_entry(r) for r in rows], indent=2))
        return EXIT_OK
    table = [["ID", "WORKFLOW", "STATUS", "CREATED", "SECONDS"]]
    table += [
        [
            r.id,
            r.workflow,
            r.status,
            fmt.local_time(r.created_at),
            f"{r.finished_at - r.created_at:.3f}" if r.finished_at is not None else "-",
        ]
        for r in rows
    ]
    for line in format_table(table):
        print(line)
    if not rows:
        print("(no executions)", file=sys.stderr)
    return EXIT_OK


def ls_entry(row: db.ExecutionRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "workflow": row.workflow,
        "status": row.status,
        "parent_id": fmt.parent_id(row),
        "created_at": row.created_at,
        "finished_at": row.finished_at,
    }


def format_table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def cmd_history(args: argparse.Namespace) -> int:
    row, events = load(args)
    if args.json:
        print(json.dumps(fmt.history_document(row, events), indent=2, ensure_ascii=False))
    else:
        for line in fmt.render_history(row, events):
            print(line)
    return EXIT_OK


# ---- analytics (DuckDB over the database, read-only; no Ray) ---------------------------------


@contextlib.contextmanager
def analytics(args: argparse.Namespace, **filters: Any) -> Iterator[Any]:
    """Analytics over the database, validated like the other readers."""
    from dolmen.storage.analytics import Analytics

    with reader(args) as conn, Analytics(db_path(args), conn=conn, **filters) as session:
        yield session


def cmd_stats(args: argparse.Namespace) -> int:
    from dolmen.runtime import analytics_format as view
    from dolmen.storage.analytics import parse_since

    since = parse_since(args.since) if args.since else None
    with analytics(args, since=since, workflow=args.workflow) as session:
        report = session.report(slowest=args.slowest)
    if args.png:
        view.throughput_png(report, args.png)
        print(f"dolmen: wrote {args.png}", file=sys.stderr)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    elif not args.png:
        for line in view.render_stats(report, unicode=unicode_ok(sys.stdout)):
            print(line)
    return EXIT_OK


def cmd_trace(args: argparse.Namespace) -> int:
    import shutil

    from dolmen.runtime import analytics_format as view

    with analytics(args) as session:
        trace = session.trace(args.id)
    if args.png:
        view.trace_png(trace, args.png, limit=args.limit)
        print(f"dolmen: wrote {args.png}", file=sys.stderr)
    if args.json:
        print(json.dumps(trace.to_json(), indent=2))
    elif not args.png:
        width = shutil.get_terminal_size((120, 24)).columns
        lines = view.render_trace(trace, width, args.limit, unicode=unicode_ok(sys.stdout))
        for line in lines:
            print(line)
    return EXIT_OK


def unicode_ok(stream: TextIO) -> bool:
    return "utf" in (getattr(stream, "encoding", None) or "").lower()


# ---- the parser ----------------------------------------------------------------------------


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

    p = command("ls", cmd_ls, "list executions, newest first (reads the database; no Ray)")
    p.add_argument("--status", help="running, finished, failed, cancelled or nondeterministic")
    p.add_argument("--workflow", metavar="NAME", help="module:function or just function")
    p.add_argument("--limit", type=int, default=100, metavar="N", help="at most N (100)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = command("history", cmd_history, "show an execution's event history (no Ray)")
    p.add_argument("id", help="execution id")
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


def add_progress(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--progress",
        action="store_true",
        help="show waiting progress on stderr even when it is not a terminal",
    )


# ---- entry point ---------------------------------------------------------------------------


class MainThreadStdout:
    """Standard output for this thread only; other threads' writes go to standard error.

    Ray's background threads print cluster events ("the node ... has been marked dead")
    and worker logs to ``sys.stdout``; a command's own output, JSON that scripts parse,
    must stay alone there.
    """

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self._out, self._err = out, err
        self._owner = threading.get_ident()

    def write(self, text: str) -> int:
        target = self._out if threading.get_ident() == self._owner else self._err
        return target.write(text)

    def flush(self) -> None:
        self._out.flush()
        self._err.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._out, name)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Like `python -m`: workflow modules in the current directory are importable, here and
    # (Ray hands the driver's sys.path on) in the runtime's worker processes.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    stdout, sys.stdout = sys.stdout, MainThreadStdout(sys.stdout, sys.stderr)
    try:
        code = args.handler(args)
        # Now, not at exit: Ray's exit hooks may end the process before buffers are written.
        try:
            sys.stdout.flush()
        except BrokenPipeError:  # the reader left early (`dolmen ls | head -1`)
            os.dup2(os.open(os.devnull, os.O_WRONLY), stdout.fileno())
        return code
    except DolmenError as exc:
        error(str(remote_cause(exc)))
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("dolmen: interrupted", file=sys.stderr)
        return 130
    finally:
        sys.stdout = stdout


if __name__ == "__main__":
    sys.exit(main())
