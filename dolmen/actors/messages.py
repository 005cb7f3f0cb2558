"""Who waits for an execution's next message (event or stream value), and waking them.

Readers read messages from the database themselves, then ask the host to wait until one
newer than what they saw is committed, or the execution ends. The board watches every
acknowledged batch for message events and endings, so nothing polls. It starts watching
on the first wait (an application that never reads messages pays nothing per commit), and
learns what was committed before from the database, so no commit is missed.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable

from dolmen.runtime.events import MESSAGES
from dolmen.storage.ltx import Ltx
from dolmen.storage.reads import load_messages

_MESSAGE_KINDS = frozenset(int(k) for k in MESSAGES)


class MessageBoard:
    def __init__(self, reader: Callable[[], sqlite3.Connection]) -> None:
        self._reader = reader
        self._last: dict[int, int] = {}  # eid -> seq of its last committed message
        self._ended: set[int] = set()
        self._waiters: dict[int, list[asyncio.Future[None]]] = {}

    def on_commit(self, batch: list[Ltx]) -> None:
        """An observer of the write path: every batch, once durable."""
        if not self._last:
            return  # nobody reads messages: nothing to look at
        woken: set[int] = set()
        for ltx in batch:
            if ltx.error is not None:
                continue
            for record in ltx.events:
                if record.kind in _MESSAGE_KINDS and record.eid in self._last:
                    self._last[record.eid] = max(self._last[record.eid], record.seq)
                    woken.add(record.eid)
            for status in ltx.statuses:
                if status.eid in self._last and status.status.ended:
                    self._ended.add(status.eid)
                    woken.add(status.eid)
        for eid in woken:
            for future in self._waiters.pop(eid, []):
                if not future.done():
                    future.set_result(None)

    async def wait(self, eid: int, after_seq: int, running: bool, timeout: float | None) -> bool:
        """Return once a message after ``after_seq`` is committed or the execution ended
        (True), or ``timeout`` passed (False)."""
        if eid not in self._last:
            known = load_messages(self._reader(), eid, after_seq)
            self._last[eid] = known[-1][0] if known else after_seq
        if self._last[eid] > after_seq or eid in self._ended or not running:
            return True
        future = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(eid, []).append(future)
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
            return True
        except TimeoutError:
            waiters = self._waiters.get(eid, [])
            if future in waiters:
                waiters.remove(future)
            return False
