"""What crosses Ray between dolmen's processes: one typed record per operation.

A client builds one of these per call and hands it to the host actor's method of the same
concept; the coordinator routes signals and cancels to the replayer that holds the
execution; the storage actor and its replayers talk in ``Attach``, ``Adopt``, ``Peers``,
``Heartbeat`` and ``Commit`` (answered by one ``Refusal``, or None, per LTX). Every
method that crosses Ray takes one of these, or a single plain value. Records are frozen:
a request is a value, not a channel.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, NamedTuple

from dolmen.actors.peers import PeerSpec
from dolmen.runtime.definitions import Workflow
from dolmen.runtime.events import Event
from dolmen.storage.records import EventRecord, ExecutionRecord, ExecutionRow, StatusRecord

# ---- from clients ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Start:
    workflow: Workflow | str
    args: bytes  # the encoded arguments (Workflow.encode_args)
    execution_id: str
    timeout: float | None = None  # the execution's deadline in seconds (else the workflow's)


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
    """Wait up to ``timeout`` for each of ``execution_ids`` to end (a blocked one is
    waited for, unless ``raise_on_blocked``: then its BLOCKED outcome comes back)."""

    execution_ids: list[str]
    timeout: float | None
    raise_on_blocked: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Signal:
    execution_id: str
    name: str
    value: bytes  # codec-encoded


@dataclasses.dataclass(frozen=True, slots=True)
class Cancel:
    execution_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class Resume:
    """Replay a blocked execution against the code registered now."""

    execution_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class Fork:
    """A new execution from ``source_id``'s results before position ``at``."""

    source_id: str
    at: int | None
    new_id: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class Restart:
    """A new run of a failed or cancelled execution."""

    execution_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class WaitMessage:
    """Wait up to ``timeout`` for a message of ``execution_id`` after history ``after_seq``
    to be committed, or for the execution to end."""

    execution_id: str
    after_seq: int
    timeout: float | None


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


Routed = Signal | Cancel | Resume  # what the coordinator forwards to the execution's replayer


# ---- between the storage actor and its replayers ----------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Attach:
    """A new replayer starts under the storage actor's ``epoch``, with keys from
    ``first_eid``, the code known so far, and its lease period."""

    epoch: str
    first_eid: int
    workflows: list[Workflow]
    lease_seconds: float


Adoption = tuple[ExecutionRow, list[Event]]  # an execution and its history so far


@dataclasses.dataclass(frozen=True, slots=True)
class Adopt:
    """Executions leased to a replayer, each with its history, and code it lacks."""

    epoch: str
    workflows: list[Workflow]
    executions: list[Adoption]


@dataclasses.dataclass(frozen=True, slots=True)
class Heartbeat:
    replayer_id: str
    epoch: str


@dataclasses.dataclass(frozen=True, slots=True)
class Peers:
    """The other nodes' replayers (``version`` orders updates that Ray may reorder)."""

    version: int
    peers: list[PeerSpec]


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
