"""A logical transaction (LTX): what one execution's step writes, all or nothing.

Hosts build LTXs and hand them to their ``Store``; the group-commit writer packs the LTXs
that queue up while it commits into one physical transaction, and acknowledges each.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from dolmen.runtime.errors import StorageError
from dolmen.storage.records import EventRecord, ExecutionRecord, StatusRecord

# A maintenance write outside the typed records: SQL text and its parameters.
Statement = tuple[str, tuple[Any, ...]]


@dataclasses.dataclass(eq=False)
class Ltx:
    """One logical transaction: all or nothing, acknowledged once durable."""

    executions: list[ExecutionRecord] = dataclasses.field(default_factory=list)
    events: list[EventRecord] = dataclasses.field(default_factory=list)
    statuses: list[StatusRecord] = dataclasses.field(default_factory=list)
    # Rare bookkeeping writes (crash counters, the clean-shutdown flag): see ``meta``.
    statements: list[Statement] = dataclasses.field(default_factory=list)
    token: Any = None  # the submitter's handle, returned untouched on acknowledgement
    error: StorageError | None = None

    def eids(self) -> set[int]:
        return (
            {r.eid for r in self.executions}
            | {r.eid for r in self.events}
            | {r.eid for r in self.statuses}
        )
