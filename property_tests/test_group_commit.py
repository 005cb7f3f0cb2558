"""Commit coalescing: logical transactions in any grouping leave the database as one-at-a-time
commits would, and a failing one never takes the rest of its batch down with it.

The real ``GroupCommitWriter`` is driven with a gate in its acknowledgement callback: while
the writer waits there, the next group is queued, so its next physical transaction holds
exactly that group.
"""

from __future__ import annotations

import os
import queue
import sqlite3
import tempfile

from hypothesis import given
from hypothesis import strategies as st

from dolmen.storage import GroupCommitWriter, Ltx
from dolmen.storage.records import EventRecord, ExecutionRecord, StatusRecord
from property_tests.profiles import examples

EIDS = st.integers(1, 4)


def _execution(eid: int, status: str) -> ExecutionRecord:
    return ExecutionRecord(eid, f"e{eid}", "wf", status, None, 1.0)


events = st.builds(
    lambda eid, seq, kind, data: EventRecord(eid, seq, kind, -1, 2.0, data),
    EIDS,
    st.integers(0, 3),
    st.integers(1, 15),
    st.binary(max_size=4),
)
# Rows SQLite refuses, and values it cannot even bind (raised as Python errors).
poison = st.sampled_from(
    [
        ("statement", ("INSERT INTO no_such_table VALUES (1)", ())),
        ("statement", ("INSERT INTO meta (key, value) VALUES (?, NULL)", ("k",))),
        ("event", EventRecord(1, 0, 3, -1, 2.0, {"not": "bindable"})),
        ("event", EventRecord(1, 1, 2**70, -1, 2.0, b"")),
    ]
)


@st.composite
def ltxs(draw) -> Ltx:
    ltx = Ltx()
    for eid in draw(st.lists(EIDS, max_size=2)):
        ltx.executions.append(_execution(eid, "running"))
    ltx.events.extend(draw(st.lists(events, max_size=3)))
    ltx.statuses.extend(
        StatusRecord(status, b"r", 3.0, eid)
        for status, eid in draw(
            st.lists(st.tuples(st.sampled_from(["finished", "failed"]), EIDS), max_size=1)
        )
    )
    for eid, count in draw(st.lists(st.tuples(EIDS, st.integers(0, 3)), max_size=1)):
        ltx.statements.append(("UPDATE executions SET crash_count = ? WHERE eid = ?", (count, eid)))
    for key, value in draw(
        st.lists(st.tuples(st.sampled_from("xy"), st.text(max_size=2)), max_size=1)
    ):
        ltx.statements.append(
            ("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
        )
    if draw(st.integers(0, 9)) == 0:
        kind, value = draw(poison)
        (ltx.statements if kind == "statement" else ltx.events).append(value)
    return ltx


def host_ordered(ltx_list: list[Ltx]) -> list[Ltx]:
    """Drop updates of executions that a *later* LTX creates.

    The writer applies a batch's inserts before its updates, so an update that precedes the
    insert of its row would hit it in a batch and miss it one at a time. The host never
    writes one: an execution's status and counters follow its creation's acknowledgement.
    """
    created_later = set()
    for ltx in reversed(ltx_list):
        ltx.statuses = [r for r in ltx.statuses if r[3] not in created_later]
        ltx.statements = [
            (sql, params)
            for sql, params in ltx.statements
            if not (sql.startswith("UPDATE") and params[-1] in created_later)
        ]
        created_later |= {r.eid for r in ltx.executions}
    return ltx_list


def _copy(ltx: Ltx, index: int) -> Ltx:
    return Ltx(
        list(ltx.executions), list(ltx.events), list(ltx.statuses), list(ltx.statements), index
    )


class GatedWriter:
    """A writer whose every physical commit is one group we choose."""

    def __init__(self, path: str) -> None:
        self.acked: queue.SimpleQueue[list[Ltx]] = queue.SimpleQueue()
        self.gate: queue.SimpleQueue[None] = queue.SimpleQueue()
        self.writer = GroupCommitWriter(path, self._notify, synchronous="NORMAL")
        self.writer.submit(Ltx(statements=[("SELECT 1", ())]))  # parks the writer at the gate
        self.acked.get(timeout=10)

    def _notify(self, batch: list[Ltx]) -> None:
        self.acked.put(batch)
        self.gate.get()

    def commit(self, group: list[Ltx]) -> list[Ltx]:
        for ltx in group:
            self.writer.submit(ltx)
        self.gate.put(None)  # the writer leaves the gate and takes everything queued
        return self.acked.get(timeout=10)

    def close(self) -> None:
        self.gate.put(None)
        self.writer.close()


def _state(path: str) -> tuple:
    conn = sqlite3.connect(path)
    try:
        return (
            conn.execute("SELECT * FROM executions ORDER BY eid").fetchall(),
            conn.execute("SELECT * FROM events ORDER BY eid, seq").fetchall(),
            conn.execute("SELECT * FROM meta ORDER BY key").fetchall(),
        )
    finally:
        conn.close()


def _apply(path: str, ltx_list: list[Ltx], sizes: list[int]) -> tuple[tuple, list[bool], list]:
    gated = GatedWriter(path)
    batches = []
    failed = []
    try:
        start = 0
        for size in sizes:
            group = [_copy(ltx, start + i) for i, ltx in enumerate(ltx_list[start : start + size])]
            start += size
            batch = gated.commit(group)
            batches.append([ltx.token for ltx in batch])
            failed.extend(ltx.error is not None for ltx in batch)
    finally:
        gated.close()
    return _state(path), failed, batches


@examples(100)
@given(ltx_list=st.lists(ltxs(), min_size=1, max_size=12).map(host_ordered), data=st.data())
def test_any_grouping_gives_the_one_at_a_time_state(ltx_list, data):
    sizes = []
    left = len(ltx_list)
    while left:
        size = data.draw(st.integers(1, left), label="group size")
        sizes.append(size)
        left -= size
    with tempfile.TemporaryDirectory() as folder:
        grouped = _apply(os.path.join(folder, "grouped.db"), ltx_list, sizes)
        alone = _apply(os.path.join(folder, "alone.db"), ltx_list, [1] * len(ltx_list))
    state, failed, batches = grouped
    # The grouping really happened: one physical transaction per group, in order.
    assert [len(b) for b in batches] == sizes
    assert [t for b in batches for t in b] == list(range(len(ltx_list)))
    # Same rows, and the same logical transactions refused, as one at a time.
    assert state == alone[0]
    assert failed == alone[1]


def test_a_poisoned_ltx_in_a_batch_fails_alone():
    """The example behind the property, readable on its own."""
    good = [Ltx(executions=[_execution(i, "running")]) for i in (1, 2, 3)]
    bad = Ltx(events=[EventRecord(1, 0, 3, -1, 2.0, b""), EventRecord(1, 1, 2**70, -1, 2.0, b"")])
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "d.db")
        gated = GatedWriter(path)
        try:
            batch = gated.commit([good[0], bad, good[1], good[2]])
        finally:
            gated.close()
        assert [ltx.error is not None for ltx in batch] == [False, True, False, False]
        assert "too large" in str(bad.error)
        assert [row[0] for row in _state(path)[0]] == [1, 2, 3]
