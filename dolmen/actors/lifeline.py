"""Every process dolmen starts ends soon after what it serves is gone.

A Ray worker asked to exit (its driver died, the runtime shut down) leaves through the
normal interpreter exit, which joins every non-daemon thread first: an activity thread
that never returns kept a host process alive, sleeping, for good. And a worker whose
node agent (the raylet, its parent) died has nobody left to stop it.

``watch()`` starts one daemon thread per process that notices both (the interpreter's
main thread has stopped; the parent process changed) and, after a bounded grace for the
normal exit, kills the process groups of the executables this process started and ends
the process with ``os._exit``. Nothing of the database is at risk: every acknowledged
write is already committed, and what was not is replayed by the next runtime.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time

log = logging.getLogger("dolmen.host")

GRACE = 3.0  # seconds a normal exit gets before the process is ended outright
_INTERVAL = 0.2
_started = False
_lock = threading.Lock()


def watch(grace: float = GRACE) -> None:
    """Start this process's lifeline (once; later calls do nothing)."""
    global _started
    with _lock:
        if _started:
            return
        _started = True
    parent = os.getppid()
    threading.Thread(
        target=_watch, args=(parent, grace), name="dolmen-lifeline", daemon=True
    ).start()


def _watch(parent: int, grace: float) -> None:
    while True:
        time.sleep(_INTERVAL)
        if not threading.main_thread().is_alive():
            reason = "the process is exiting but a thread never returned"
        elif os.getppid() != parent:
            reason = "its parent (the Ray node) is gone"
        else:
            continue
        time.sleep(grace)  # the normal exit may still finish by itself
        log.warning("dolmen process %d ends now: %s", os.getpid(), reason)
        kill_children()
        os._exit(1)


def kill_children() -> None:
    """SIGKILL the process groups of this process's children (executables run as
    activities lead their own groups, so their own children go too)."""
    me = os.getpid()
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) != me:  # field 4 of stat: the parent pid
            continue
        pid = int(entry)
        with contextlib.suppress(OSError):
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
