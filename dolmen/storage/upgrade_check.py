"""The upgrade check: would today's code replay every unfinished execution of a database?

Before a deploy, each running or blocked execution of the named workflows is replayed in
memory against the code as it is importable now: nothing runs (no activities, no
children, no timers), the database is opened read-only and no history is touched. The
report says per workflow how many replay cleanly and, for each that would block, where
the code and the history part ways (position, the recorded and the issued command).

``check_upgrade`` runs in this process; ``check_in_subprocess`` runs it in a fresh
interpreter (``python -m dolmen.storage.upgrade_check``), so the code checked is the
code on disk now, not what this process imported earlier.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable
from typing import Any

from dolmen.runtime.definitions import Workflow
from dolmen.runtime.errors import DolmenError, NondeterminismError
from dolmen.runtime.replay import WorkflowInstance
from dolmen.storage import reads
from dolmen.storage.connection import open_readonly

# The clock a replay sees for values it would record live: the check records nothing.
_CHECK_TIME = 0.0


@dataclasses.dataclass(frozen=True)
class Divergence:
    """One execution the code would block: where, and what each side has there."""

    execution_id: str
    position: int
    recorded: str
    issued: str


@dataclasses.dataclass
class WorkflowCheck:
    workflow: str
    checked: int = 0
    clean: int = 0
    divergences: list[Divergence] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class UpgradeReport:
    """Per workflow, how many unfinished executions replay cleanly and which diverge."""

    workflows: list[WorkflowCheck]
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when no execution would block."""
        return not any(w.divergences for w in self.workflows)

    @property
    def checked(self) -> int:
        return sum(w.checked for w in self.workflows)

    @property
    def divergences(self) -> list[Divergence]:
        return [d for w in self.workflows for d in w.divergences]

    def to_json(self) -> dict[str, Any]:
        checks = [dataclasses.asdict(w) for w in self.workflows]
        return {"ok": self.ok, "seconds": self.seconds, "workflows": checks}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> UpgradeReport:
        checks = [
            WorkflowCheck(
                w["workflow"], w["checked"], w["clean"], [Divergence(**d) for d in w["divergences"]]
            )
            for w in doc["workflows"]
        ]
        return cls(checks, float(doc.get("seconds", 0.0)))


def workflows_of(modules: Iterable[str]) -> list[Workflow]:
    """The workflows the modules define (importing them now)."""
    found: dict[str, Workflow] = {}
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise DolmenError(f"cannot import module {name!r}: {exc}") from None
        for value in vars(module).values():
            if isinstance(value, Workflow):
                found.setdefault(value.name, value)
    return list(found.values())


def check_upgrade(db_path: str | os.PathLike[str], workflows: Iterable[Workflow]) -> UpgradeReport:
    """Replay every unfinished execution of ``workflows`` against them (in this process)."""
    started = time.perf_counter()
    by_name = {w.name: w for w in workflows}
    checks = {name: WorkflowCheck(name) for name in sorted(by_name)}
    conn = open_readonly(db_path)
    try:
        for row, history in reads.unfinished_histories(conn, by_name):
            check = checks[row.workflow]
            check.checked += 1
            divergence = replay_one(by_name[row.workflow], row.id, history)
            if divergence is None:
                check.clean += 1
            else:
                check.divergences.append(divergence)
    finally:
        conn.close()
    return UpgradeReport(list(checks.values()), time.perf_counter() - started)


def replay_one(workflow: Workflow, execution_id: str, history: list) -> Divergence | None:
    """Replay one history (nothing runs); the divergence it would block on, or None."""
    try:
        WorkflowInstance(workflow, execution_id, history, clock=_clock).activate()
    except NondeterminismError as error:
        return Divergence(execution_id, error.position, error.expected, error.actual)
    except Exception as exc:  # noqa: BLE001 - e.g. arguments the new signature refuses
        return Divergence(execution_id, 0, "the recorded start", f"{type(exc).__name__}: {exc}")
    return None


def _clock() -> float:
    return _CHECK_TIME


def check_in_subprocess(
    db_path: str | os.PathLike[str], modules: list[str], names: list[str] | None = None
) -> UpgradeReport:
    """``check_upgrade`` in a fresh interpreter that imports ``modules`` from disk now;
    ``names`` keeps only those workflows of theirs."""
    command = [sys.executable, "-m", "dolmen.storage.upgrade_check", "--db", str(db_path)]
    for name in names or []:
        command += ["--workflow", name]
    env = dict(os.environ)
    # This process's import path, so the modules it can import the child can too.
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    done = subprocess.run(
        [*command, *modules], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode not in (0, 1):
        raise DolmenError(f"the upgrade check failed: {done.stderr.strip()[-2000:]}")
    return UpgradeReport.from_json(json.loads(done.stdout))


def _main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m dolmen.storage.upgrade_check")
    parser.add_argument("modules", nargs="+")
    parser.add_argument("--db", required=True)
    parser.add_argument("--workflow", action="append", default=[])
    args = parser.parse_args(argv)
    try:
        workflows = workflows_of(args.modules)
        if args.workflow:
            workflows = [w for w in workflows if w.name in args.workflow]
        report = check_upgrade(args.db, workflows)
    except DolmenError as exc:
        print(f"dolmen: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_json()))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
