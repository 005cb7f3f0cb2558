"""A logical transaction (LTX): what one execution's step writes, all or nothing.

Hosts build LTXs and hand them to their ``Store``; the group-commit writer packs the LTXs
that queue up while it commits into one physical transaction, and acknowledges each.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from dolmen.runtime.errors import StorageError
from dolmen.runtime.events import Event
from dolmen.runtime.status import Status
from dolmen.storage.records import EventRecord, ExecutionRecord, StatusRecord, event_record

# A maintenance write outside the typed records: SQL text and its parameters.
Statement = tuple[str, tuple[Any, ...]]
TAG_SQL = "INSERT OR REPLACE INTO tags (eid, key, value) VALUES (?, ?, ?)"


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

    def add_execution(
        self, eid: int, execution_id: str, parent_eid: int | None, created: Event
    ) -> None:
        """A new execution's row and its first event (``created``), written together."""
        workflow = created.data["workflow"]
        self.executions.append(
            ExecutionRecord(eid, execution_id, workflow, Status.RUNNING, parent_eid, created.ts)
        )
        self.events.append(event_record(eid, 0, created))
        tags = created.data.get("tags")
        if tags:
            self.add_tags(eid, tags)

    def add_tags(self, eid: int, tags: dict[str, str]) -> None:
        """Tags of ``eid`` (a key given again replaces its value)."""
        self.statements.extend((TAG_SQL, (eid, k, v)) for k, v in tags.items())

    def eids(self) -> set[int]:
        return (
            {r.eid for r in self.executions}
            | {r.eid for r in self.events}
            | {r.eid for r in self.statuses}
        )
