"""The storage contract a host writes and reads through, wherever the file is.

Two implementations: ``LocalStore`` on the node that holds the SQLite file (the
group-commit writer and a reader), and the remote store of a replayer on another node,
which reaches the storage actor through Ray. A host depends on this protocol only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from dolmen.runtime.events import Event
from dolmen.storage.ltx import Ltx
from dolmen.storage.records import ExecutionRow

Acknowledge = Callable[[list[Ltx]], None]


class Store(Protocol):
    def open(self, on_durable: Acknowledge) -> None:
        """Start storing. Each batch of LTXs that became durable, or failed (``ltx.error``),
        is handed to ``on_durable`` on the event loop that called ``open``."""
        ...

    def submit(self, ltx: Ltx) -> None:
        """Queue ``ltx``; it is acknowledged through ``on_durable``."""
        ...

    def allocate_eid(self) -> int:
        """A key for a new execution, unique across every host of the database."""
        ...

    async def rows(self, execution_ids: list[str]) -> list[ExecutionRow | None]:
        """The stored rows of these executions (None where there is none)."""
        ...

    async def history(self, eid: int) -> list[Event]:
        """One execution's durable history."""
        ...

    async def close(self) -> None:
        """Stop once what was submitted is acknowledged."""
        ...
