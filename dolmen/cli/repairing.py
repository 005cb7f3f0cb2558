"""Commands that repair ended executions through the runtime: fork and restart.

Each prints the id that now runs (a fork's new id, or the restarted id) and, with
``--wait``, waits for its result as ``dolmen result --wait`` does.
"""

from __future__ import annotations

import argparse
import sys

from dolmen.cli.plumbing import EXIT_OK, await_result, runtime, wants_progress


def cmd_fork(args: argparse.Namespace) -> int:
    with runtime(args) as client:
        handle = client.fork(args.id, at=args.at, new_id=args.new_id)
        print(handle.id)
        where = "the failing step" if args.at is None else f"position {args.at}"
        print(f"dolmen: forked {args.id} at {where} as {handle.id}", file=sys.stderr)
        if args.wait:
            return await_result(handle, args.timeout, wants_progress(args))
    return EXIT_OK


def cmd_restart(args: argparse.Namespace) -> int:
    with runtime(args) as client:
        handle = client.restart(args.id)
        print(handle.id)
        print(f"dolmen: restarted {args.id} as run {client.runs(args.id)}", file=sys.stderr)
        if args.wait:
            return await_result(handle, args.timeout, wants_progress(args))
    return EXIT_OK
