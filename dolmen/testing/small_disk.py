"""A real, small file system for storage-fault tests: fill it, free it, remount it read-only.

A mocked ``ENOSPC`` would test the mock; this mounts a size-limited tmpfs (root only), so
SQLite meets the full disk exactly as it would in production. Where mounting is not
allowed, ``SmallDisk`` raises ``MountUnavailable`` and tests skip with its reason.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

_CHUNK = b"\0" * 65536


class MountUnavailable(RuntimeError):
    """This machine does not let us mount a file system (not root, or no tmpfs)."""


class SmallDisk:
    """A tmpfs of ``size_mb`` mounted at ``where`` (a folder that is created)."""

    def __init__(self, where: str | os.PathLike[str], size_mb: int = 4) -> None:
        self.root = Path(where)
        self.size_mb = size_mb
        self._filler = self.root / ".filler"
        self._mounted = False

    def mount(self) -> SmallDisk:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            raise MountUnavailable("mounting a small tmpfs needs root")
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={self.size_mb}m,mode=0700", "tmpfs", self.root],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise MountUnavailable(f"mount -t tmpfs failed: {done.stderr.strip()}")
        self._mounted = True
        return self

    def fill(self) -> int:
        """Take every free byte; returns how many were taken."""
        taken = 0
        fd = os.open(self._filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for chunk in (_CHUNK, _CHUNK[:512]):  # then the last partial blocks
                with contextlib.suppress(OSError):
                    while True:
                        taken += os.write(fd, chunk)
        finally:
            os.close(fd)
        return taken

    def free(self) -> None:
        """Give the space back."""
        self._filler.unlink(missing_ok=True)

    def remount(self, *, read_only: bool) -> None:
        mode = "ro" if read_only else "rw"
        subprocess.run(["mount", "-o", f"remount,{mode}", self.root], check=True)

    def unmount(self) -> None:
        if self._mounted:
            subprocess.run(["umount", "-l", self.root], check=False)
            self._mounted = False


@contextlib.contextmanager
def small_disk(where: str | os.PathLike[str], size_mb: int = 4) -> Iterator[SmallDisk]:
    disk = SmallDisk(where, size_mb).mount()
    try:
        yield disk
    finally:
        disk.unmount()
