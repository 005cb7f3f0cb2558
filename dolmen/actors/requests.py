"""What crosses Ray between dolmen's processes: one typed record per operation.

A client builds one of these per call and hands it to the host actor's method of the same
concept; the coordinator routes signals and cancels to the replayer that holds the
execution; replayers send their commits as ``Commit`` and hear back one ``Refusal`` (or
None) per LTX. Records are frozen: a request is a value, not a channel.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, NamedTuple

from dolmen.runtime.definitions import Workflow
from dolmen.storage.connection import Synchronous
from dolmen.storage.records import EventRecord, ExecutionRecord, StatusRecord


@dataclasses.dataclass(frozen=True, slots=True)
class RuntimeOptions:
    """How the client that creates a runtime wants it run (see ``dolmen.Client``)."""

    db_path: str
    synchronous: Synchronous = "FULL"
    threads: int | None = None
    processes: int | None = None
    native_threads: int | None = None
    evict_after: float = 60.0
    busy_timeout: float = 5.0
    spread: bool = False  # lease executions to replayers on the cluster's other nodes
    lease_seconds: float | None = None

    def executor_options(self) -> dict[str, int | float | None]:
        """What every host of the runtime (replayers too) is given for its executor."""
        return dict(
            threads=self.threads,
            processes=self.processes,
            native_threads=self.native_threads,
            evict_after=self.evict_after,
        )


# ---- from clients ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Start:
    workflow: Workflow | str
    args: bytes  # the encoded arguments (Workflow.encode_args)
    execution_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class StartMany:
    workflow: Workflow | str
    args: list[bytes]
    execution_ids: list[str]


@dataclasses.dataclass(frozen=True, slots=True)
class Run:
    """Start, then wait up to ``timeout`` for the outcome: one round trip for short runs."""

    start: Start
    timeout: float | None


@dataclasses.dataclass(frozen=True, slots=True)
class Wait:
    """Wait up to ``timeout`` for each of ``execution_ids`` to end."""

    execution_ids: list[str]
    timeout: float | None


@dataclasses.dataclass(frozen=True, slots=True)
class Signal:
    execution_id: str
    name: str
    value: bytes  # codec-encoded


@dataclasses.dataclass(frozen=True, slots=True)
class Cancel:
    execution_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class Describe:
    """An execution's status as the runtime sees it (loaded, activities running...)."""

    execution_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class Register:
    """Workflow code for the runtime (and every replayer) to know by name."""

    workflows: list[Workflow]


@dataclasses.dataclass(frozen=True, slots=True)
class StorageStats:
    """The writer's statement and commit counters, per execution for these ids."""

    execution_ids: list[str] | None


Routed = Signal | Cancel  # what the coordinator forwards to the execution's replayer


# ---- between the storage actor and its replayers ----------------------------------------


class WireLtx(NamedTuple):
    """An LTX as a replayer sends it: its records, without the submitter's token."""

    executions: list[ExecutionRecord]
    events: list[EventRecord]
    statuses: list[StatusRecord]


@dataclasses.dataclass(frozen=True, slots=True)
class Commit:
    replayer_id: str
    epoch: str
    ltxs: list[WireLtx]


class Refusal(NamedTuple):
    """Why the storage actor did not write one LTX of a commit."""

    kind: Literal["lease", "storage"]  # lease: not this replayer's; storage: the write failed
    message: str
