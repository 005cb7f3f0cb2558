"""A seeded fault-injection harness: a mixed load under a fault schedule drawn from a seed.

Each round starts the ``chaos_load`` workflows on a fresh database, signals them, and
meanwhile injects faults at times drawn from the seed: SIGKILL of the host, of process
workers, of executables run as activities, of the whole runtime at once; SIGSTOP of the
host and SIGCONT; windows of a full disk (on a real small file system). Then it checks
what must hold whatever happened: every result equals its fault-free result, every
signal the client saw acknowledged is in the database, no activity completion or timer
firing is recorded twice, ``integrity_check`` is ok, and ``replay_history`` reproduces
every history. A failing round names its seed, so ``run_round(seed)`` reruns it.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import random
import signal
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple

import dolmen
from dolmen.runtime.definitions import lookup_workflow
from dolmen.runtime.events import Kind
from dolmen.storage import export, reads
from dolmen.storage.connection import open_readonly
from dolmen.testing import chaos_load
from dolmen.testing.crashes import kill_host
from dolmen.testing.saved_histories import replay_history
from dolmen.testing.small_disk import SmallDisk

KINDS = ("kill_host", "kill_worker", "kill_exec", "kill_runtime", "stop_host", "disk_full")
ONCE = (Kind.ACTIVITY_COMPLETED, Kind.TIMER_FIRED, Kind.CHILD_FINISHED, Kind.FINISHED)
_TRANSIENT = (dolmen.DolmenError,)  # storage faults, a host that moved or restarted


@dataclasses.dataclass
class RoundReport:
    """What one round injected and checked; ``problems`` empty means every invariant held."""

    seed: int
    faults: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    executions: int = 0
    events: int = 0
    signals: int = 0
    lost: int = 0
    duplicated: int = 0
    problems: list[str] = dataclasses.field(default_factory=list)

    def failure(self) -> str:
        return f"fault round failed, rerun with seed {self.seed}: " + "; ".join(self.problems)


def draw_schedule(
    seed: int, faults: int, span: float, kinds: tuple[str, ...] = KINDS
) -> list[tuple[float, str]]:
    """``faults`` (time, kind) pairs within ``span`` seconds, drawn from ``seed`` alone."""
    rng = random.Random(seed)
    return sorted((rng.uniform(0.0, span), rng.choice(kinds)) for _ in range(faults))


def run_round(
    seed: int,
    workdir: str | os.PathLike[str],
    *,
    executions: int = 6,
    faults: int = 3,
    span: float = 4.0,
    disk: SmallDisk | None = None,
    deadline: float = 180.0,
) -> RoundReport:
    """One round on a Ray session that is already up; see the module's docstring."""
    kinds = KINDS if disk is not None else tuple(k for k in KINDS if k != "disk_full")
    schedule = draw_schedule(seed, faults, span, kinds)
    root = disk.root if disk is not None else Path(workdir)
    db_path = str(root / f"chaos-{seed}.db")
    report = RoundReport(seed)
    rng = random.Random(seed ^ 0x5EED)
    client = dolmen.Client(db_path, busy_timeout=1.0)
    ids = [f"chaos-{seed}-{i}" for i in range(executions)]
    pids = str(Path(workdir) / f"chaos-{seed}.pids")  # off the small disk: it fills up
    os.makedirs(pids, exist_ok=True)
    target = Target(db_path, pids, disk)
    injector = threading.Thread(
        target=_inject, args=(schedule, target, rng, report), name="dolmen-chaos"
    )
    try:
        until = time.monotonic() + deadline
        handles = [
            _retry(lambda i=i: client.start(chaos_load.chaos_mix, i, pids, id=ids[i]), until)
            for i in range(executions)
        ]
        injector.start()
        for i, handle in enumerate(handles):
            value = chaos_load.signal_value(i)
            _retry(lambda h=handle, v=value: h.signal(chaos_load.SIGNAL, v), until)
            report.signals += 1  # acknowledged: it must be in the database from now on
        results = [_retry(lambda h=h: h.result(timeout=30.0), until) for h in handles]
        injector.join()
        for i, result in enumerate(results):
            if result != chaos_load.expected(i):
                report.lost += 1
                report.problems.append(f"{ids[i]} ended with {result!r}")
    except Exception as exc:  # noqa: BLE001 - a round that cannot finish is a finding
        report.problems.append(f"{type(exc).__name__}: {exc}")
    finally:
        if injector.is_alive():
            injector.join()
        if disk is not None:
            disk.free()
        client.close()
        kill_host(client)
    _check_database(db_path, ids, report)
    return report


def _retry(call: Any, until: float) -> Any:
    while True:
        try:
            return call()
        except _TRANSIENT:
            if time.monotonic() > until:
                raise
            time.sleep(0.1)  # the runtime recovers by itself; bounded by the round's deadline


class Target(NamedTuple):
    """What a round's faults hit: its database's host, its workers' pids, its disk."""

    db_path: str
    pids: str
    disk: SmallDisk | None


def _inject(
    schedule: list[tuple[float, str]], target: Target, rng: random.Random, report: RoundReport
) -> None:
    started = time.monotonic()
    for at, kind in schedule:
        time.sleep(max(0.0, started + at - time.monotonic()))  # the schedule's own times
        try:
            _FAULTS[kind](target, rng)
            report.faults[kind] += 1
        except ProcessLookupError:
            report.faults[f"{kind} (nothing to hit)"] += 1


def _processes() -> list[tuple[int, int, str]]:
    """(pid, parent pid, command line) of every process, read from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode(errors="replace")
            found.append((int(entry), parent, command))
    return found


def _host_pid(db_path: str) -> int | None:
    """The host of this round's database: the Ray host process that has the file open."""
    target = os.path.realpath(db_path)
    for pid, _parent, command in _processes():
        if command.startswith("ray::HostActor"):
            with contextlib.suppress(OSError):
                fds = os.listdir(f"/proc/{pid}/fd")
                if any(os.path.realpath(f"/proc/{pid}/fd/{fd}") == target for fd in fds):
                    return pid
    return None


def _worker_pids(target: Target) -> list[int]:
    """This round's worker processes: those its activities left their pid from, alive."""
    found = []
    for name in os.listdir(target.pids):
        with contextlib.suppress(OSError):
            with open(f"/proc/{name}/cmdline", "rb") as f:
                if f.read().startswith(b"ray::PythonWorker"):
                    found.append(int(name))
    return found


def _children(pid: int) -> list[int]:
    return [child for child, parent, _command in _processes() if parent == pid]


def _kill(pids: list[int]) -> None:
    if not pids:
        raise ProcessLookupError("no such process")
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _kill_host(target: Target, rng: random.Random) -> None:
    _kill([pid] if (pid := _host_pid(target.db_path)) else [])


def _soon(find: Any, within: float = 3.0) -> list[int]:
    """What ``find()`` returns once it is not empty (a target may not exist yet), or []."""
    until = time.monotonic() + within
    while not (found := find()) and time.monotonic() < until:
        time.sleep(0.02)  # polling for the target process, bounded
    return found


def _kill_worker(target: Target, rng: random.Random) -> None:
    workers = _soon(lambda: _worker_pids(target))
    _kill([rng.choice(workers)] if workers else [])


def _kill_exec(target: Target, rng: random.Random) -> None:
    def running() -> list[int]:
        pid = _host_pid(target.db_path)
        return _children(pid) if pid else []

    _kill(_soon(running))


def _kill_runtime(target: Target, rng: random.Random) -> None:
    pid = _host_pid(target.db_path)
    _kill([pid, *_children(pid), *_worker_pids(target)] if pid else [])


def _stop_host(target: Target, rng: random.Random) -> None:
    pid = _host_pid(target.db_path)
    if pid is None:
        raise ProcessLookupError("no host")
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(rng.uniform(0.3, 1.5))  # the length of the stop is the fault
    finally:
        os.kill(pid, signal.SIGCONT)


def _disk_full(target: Target, rng: random.Random) -> None:
    assert target.disk is not None
    target.disk.fill()
    try:
        time.sleep(rng.uniform(0.3, 1.5))  # the length of the window is the fault
    finally:
        target.disk.free()


_FAULTS = {
    "kill_host": _kill_host,
    "kill_worker": _kill_worker,
    "kill_exec": _kill_exec,
    "kill_runtime": _kill_runtime,
    "stop_host": _stop_host,
    "disk_full": _disk_full,
}


def _check_database(db_path: str, ids: list[str], report: RoundReport) -> None:
    with contextlib.closing(sqlite3.connect(db_path)) as raw:
        integrity = raw.execute("PRAGMA integrity_check").fetchone()[0]
    if integrity != "ok":
        report.problems.append(f"integrity_check: {integrity}")
    with contextlib.closing(open_readonly(db_path)) as conn:
        for i, execution_id in enumerate(ids):
            row = reads.get_execution(conn, execution_id)
            if row is None:
                report.lost += 1
                report.problems.append(f"{execution_id} is not in the database")
                continue
            tree = [row, *reads.descendants(conn, execution_id)]
            for member in tree:
                events = reads.load_history(conn, member.eid)
                _check_history(member, events, report)
            top = reads.load_history(conn, row.eid)
            signals = [
                e.data["value"] for e in top if e.kind == Kind.SIGNAL_RECEIVED
            ]  # the acknowledged signal is there (a resent one may be there twice)
            if chaos_load.signal_value(i) not in signals:
                report.lost += 1
                report.problems.append(f"{execution_id} lost its acknowledged signal")


def _check_history(row: Any, events: list[Any], report: RoundReport) -> None:
    report.executions += 1
    report.events += len(events)
    seen = collections.Counter((e.kind, e.position) for e in events if e.kind in ONCE)
    for (kind, position), count in seen.items():
        if count > 1:
            report.duplicated += count - 1
            report.problems.append(f"{row.id}: {kind.name} at {position} recorded {count} times")
    try:
        replayed = replay_history(
            lookup_workflow(row.workflow), export.history_document(row, events)
        )
    except Exception as exc:  # noqa: BLE001 - a history that does not replay is a finding
        report.problems.append(f"{row.id} does not replay: {exc}")
        return
    if str(replayed.status) != "finished":
        report.problems.append(f"{row.id} replays as {replayed.status}")
