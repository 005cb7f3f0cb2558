"""Commands that act through the runtime: run, start, serve, up, down, cancel, signal, resume.

Each connects to the runtime that owns the database (``plumbing.runtime``); the embedded
default starts one in this process, a cluster's is found by the database's path.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any

from dolmen.cli.plumbing import (
    EXIT_FAILED,
    EXIT_OK,
    await_result,
    cannot_connect,
    db_path,
    runtime,
    wants_progress,
)
from dolmen.cli.render.text import table
from dolmen.cli.values import parse_value
from dolmen.runtime.errors import DolmenError, NondeterminismError


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
    print("\n".join(table(rows)))
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


def cmd_resume(args: argparse.Namespace) -> int:
    """Replay a blocked execution against the code the runtime has now."""
    with runtime(args) as client:
        if args.module:
            client.register(*import_modules(args.module))
        try:
            status = client.resume(args.id).status()["status"]
        except NondeterminismError as exc:
            print(f"dolmen: execution {args.id} stays blocked: {exc}", file=sys.stderr)
            return EXIT_FAILED
    print(f"dolmen: execution {args.id} is {status}", file=sys.stderr)
    return EXIT_OK
