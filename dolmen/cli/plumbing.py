"""What the commands share: exit codes, the database, the runtime, waiting for a result.

Readers open the SQLite file read-only and need no Ray; ``runtime()`` is a client of the
runtime that owns the database. A result is awaited with progress on stderr and printed
as JSON on stdout; the exit code says how the execution ended.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from dolmen import storage as db
from dolmen.runtime.errors import (
    CancelledError,
    DolmenError,
    NondeterminismError,
    ResultTimeoutError,
    StorageError,
    WorkflowFailedError,
)
from dolmen.storage.export import to_json_value

EXIT_OK, EXIT_FAILED, EXIT_ERROR, EXIT_RUNNING = 0, 1, 2, 3
_ENDED_BADLY = (WorkflowFailedError, CancelledError, NondeterminismError)


def db_path(args: argparse.Namespace) -> str:
    return args.db or os.environ.get("DOLMEN_DB") or db.DEFAULT_DB


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


def dump_json(value: Any, out: TextIO) -> None:
    out.write(json.dumps(to_json_value(value), indent=None, ensure_ascii=False) + "\n")


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
        print(f"dolmen: {exc}", file=sys.stderr)
        return EXIT_FAILED
    progress.done()
    dump_json(value, sys.stdout)
    return EXIT_OK
