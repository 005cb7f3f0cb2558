"""Opening dolmen's SQLite file: the one connect hook, and the errors that name the file."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Literal

from dolmen.runtime.errors import StorageError
from dolmen.storage import faults
from dolmen.storage.schema import APPLICATION_ID, MIGRATIONS, migrate

Synchronous = Literal["FULL", "NORMAL"]
DEFAULT_DB = ".dolmen/dolmen.db"


def connect(
    path: str | os.PathLike[str],
    *,
    synchronous: Synchronous = "FULL",
    readonly: bool = False,
    busy_timeout: float = 5.0,
) -> sqlite3.Connection:
    """The one connect hook: every PRAGMA dolmen relies on is set here, with its reason."""
    path = Path(path)
    if synchronous not in ("FULL", "NORMAL"):
        raise ValueError(f"synchronous must be 'FULL' or 'NORMAL', not {synchronous!r}")
    if readonly:
        if not path.exists():
            raise StorageError(f"database {str(path)!r} does not exist")
        uri = f"file:{path.resolve()}?mode=ro"
    else:
        _create_private(path)
        uri = f"file:{path.resolve()}"
    try:
        # isolation_level=None: dolmen issues BEGIN/COMMIT itself, so each physical commit
        # is deliberate and every statement can be counted.
        conn = sqlite3.connect(
            uri, uri=True, isolation_level=None, check_same_thread=False, timeout=busy_timeout
        )
        # Wait this long for a lock held by another program before reporting it.
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        # Before anything is changed: a foreign file is refused untouched (not even
        # switched to WAL, which rewrites its header).
        _check_is_dolmen(conn, path)
        if not readonly:
            # WAL: readers (CLI, DuckDB, replay loads) never block the single writer.
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StorageError(f"database {str(path)!r} cannot switch to WAL mode ({mode})")
            # FULL: a commit is on disk before it is acknowledged (the durability promise);
            # NORMAL is the explicit "fast" opt-in that may lose the last commits on power loss.
            conn.execute(f"PRAGMA synchronous = {synchronous}")
        # Temporary b-trees (sorts for `ls`) stay in memory instead of temp files.
        conn.execute("PRAGMA temp_store = MEMORY")
        if not readonly:
            migrate(conn)
    except sqlite3.DatabaseError as exc:
        raise storage_error(exc, path) from None
    return conn


def _create_private(path: Path) -> None:
    """Create the folder and file readable by the user only (0700 / 0600)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)


def _check_is_dolmen(conn: sqlite3.Connection, path: Path) -> None:
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    has_tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] > 0
    if app_id == APPLICATION_ID or (app_id == 0 and not has_tables):
        return
    raise StorageError(f"{str(path)!r} is an SQLite database, but not a dolmen database")


def storage_error(
    exc: BaseException, path: str | os.PathLike[str], *, held: bool = False
) -> StorageError:
    """Turn an sqlite3 error into a message that names the file and what to do; a fault of
    the disk under it (full, read-only, I/O) is a ``StorageFaultError`` (``held``: the
    writer keeps the refused work to write again, and the message says so)."""
    text = str(exc)
    if isinstance(exc, StorageError):
        return exc
    fault = faults.classify(exc)
    if fault is not None:
        error = faults.fault_error(fault, str(path), text, held=held)
        error.sqlite_error = text  # type: ignore[attr-defined]
        return error
    if "locked" in text or "busy" in text:
        hint = "it is locked by another program; close that program or use another --db"
    elif "not a database" in text or "malformed" in text or "corrupt" in text:
        hint = "the file is corrupted or not an SQLite database; restore it or use another --db"
    elif "readonly" in text or "read-only" in text:
        hint = "it is read-only for this user"
    elif "unable to open" in text:
        hint = "it cannot be opened (check the path and permissions)"
    else:
        hint = "SQLite reported an error"
    error = StorageError(f"database {str(path)!r}: {hint} (sqlite: {text})")
    error.sqlite_error = text  # type: ignore[attr-defined]
    return error


def open_readonly(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """A reader for the CLI and tools: refuses files that are not dolmen databases."""
    conn = connect(path, readonly=True)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise storage_error(exc, path) from None
    if "executions" not in tables:
        raise StorageError(f"{str(path)!r} has no dolmen tables (empty or not initialised)")
    version = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise StorageError(f"{str(path)!r} was written by a newer dolmen (schema {version})")
    return conn
