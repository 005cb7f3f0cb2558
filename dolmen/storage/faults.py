"""Storage faults: what went wrong with the disk under the database, said plainly.

SQLite reports a full disk, a read-only remount or an I/O error as a bare code
("database or disk is full"). The writer turns those into a ``StorageFaultError`` naming
the file and what happened, so the caller waiting on the write learns it at once, and
holds the work instead of failing executions: these faults clear by themselves (space is
freed, the file system is remounted) and the held writes then go through. A database file
deleted or replaced under the runtime is the one final fault: writing on would write into
a file nobody reads, so the writer stops.

``FaultEpisodes`` logs each stretch of faults once, with a count, instead of once a retry.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import time
from typing import NamedTuple

from dolmen.runtime.errors import StorageFault, StorageFaultError

log = logging.getLogger("dolmen.storage")

# SQLite's primary result codes (the low byte of an extended code).
_SQLITE_CODES = {
    3: StorageFault.PERMISSION,  # SQLITE_PERM
    8: StorageFault.READ_ONLY,  # SQLITE_READONLY
    10: StorageFault.IO,  # SQLITE_IOERR
    13: StorageFault.FULL,  # SQLITE_FULL
    14: StorageFault.CANT_OPEN,  # SQLITE_CANTOPEN
    23: StorageFault.PERMISSION,  # SQLITE_AUTH
}
_ERRNOS = {
    errno.ENOSPC: StorageFault.FULL,
    errno.EDQUOT: StorageFault.FULL,
    errno.EROFS: StorageFault.READ_ONLY,
    errno.EIO: StorageFault.IO,
    errno.EACCES: StorageFault.PERMISSION,
    errno.EPERM: StorageFault.PERMISSION,
}


def classify(exc: BaseException) -> StorageFault | None:
    """The fault an exception from a write reports, or None if it is not about the disk
    (a constraint, a value SQLite cannot bind: that one LTX is wrong, not the storage)."""
    if isinstance(exc, StorageFaultError):
        return exc.fault
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None:
            return _SQLITE_CODES.get(code & 0xFF)
        text = str(exc).lower()
        if "disk is full" in text:
            return StorageFault.FULL
        if "readonly" in text or "read-only" in text:
            return StorageFault.READ_ONLY
        if "disk i/o error" in text:
            return StorageFault.IO
        return None
    if isinstance(exc, OSError):
        return _ERRNOS.get(exc.errno)
    return None


def fault_error(
    fault: StorageFault, path: str, detail: str = "", *, held: bool = True
) -> StorageFaultError:
    """The error a caller gets: what happened, to which file, and what happens next."""
    folder = os.path.dirname(os.path.abspath(path))
    what = {
        StorageFault.FULL: f"the disk holding {folder!r} is full",
        StorageFault.READ_ONLY: f"the database {path!r} has become read-only",
        StorageFault.IO: f"the disk holding {path!r} reported an I/O error",
        StorageFault.CANT_OPEN: f"the database {path!r} (or its -wal/-shm file) cannot be opened",
        StorageFault.PERMISSION: f"permission to write the database {path!r} was lost",
        StorageFault.REPLACED: f"the database {path!r} was deleted or replaced while open",
    }[fault]
    if fault is StorageFault.REPLACED:
        then = ": dolmen stopped writing to it; restart the runtime to use the file now there"
    elif held:
        then = (
            ": nothing of this write is on disk; the runtime holds the work and writes it "
            "by itself once the fault clears (executions stay unfinished)"
        )
    else:
        then = ""
    suffix = f" (sqlite: {detail})" if detail else ""
    return StorageFaultError(f"{what}{then}{suffix}", fault, path)


class FileIdentity(NamedTuple):
    """Which file a path names: a deleted or replaced file changes it."""

    dev: int
    ino: int


def identity(path: str) -> FileIdentity | None:
    """The identity of the file at ``path`` now; None if there is none."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return FileIdentity(st.st_dev, st.st_ino)


class FaultEpisodes:
    """One log line when writes start failing and one when they go through again."""

    def __init__(self) -> None:
        self.current: StorageFaultError | None = None
        self.failed_writes = 0
        self._since = 0.0

    def failed(self, error: StorageFaultError, writes: int) -> None:
        if self.current is None or self.current.fault is not error.fault:
            log.error("%s [holding writes until it clears]", error)
            self._since = time.monotonic()
            self.failed_writes = 0
        self.current = error
        self.failed_writes += writes

    def cleared(self) -> None:
        if self.current is None:
            return
        log.warning(
            "the database is writable again: %d write(s) were held for %.1f s (%s)",
            self.failed_writes,
            time.monotonic() - self._since,
            self.current.fault.value,
        )
        self.current = None
        self.failed_writes = 0
