"""A host's live metrics, on Ray's own metrics endpoint (``ray.util.metrics``).

Counted from each acknowledged commit batch (``Host.watch_commits``): the events it made
durable say what started, ended, was attempted and retried, and its size is the commit
batch size. Nothing is added per step on the hot path: one pass over a batch's events
after it committed, and Ray's metrics are updated at most once per ``PUSH_EVERY``
seconds with what accumulated (its calls cost microseconds each). The totals also come
back in ``Client.host_info()["metrics"]``. The UI's ``/metrics`` counts the same things
from the database instead (``dolmen.storage.tallies``).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from dolmen.runtime.events import Kind
from dolmen.storage.ltx import Ltx
from dolmen.storage.records import unpack_data

PUSH_EVERY = 1.0
_ENDED = {
    int(Kind.FINISHED): "finished",
    int(Kind.FAILED): "failed",
    int(Kind.CANCELLED): "cancelled",
}
BATCH_BOUNDARIES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]


class HostMetrics:
    def __init__(self, host: Any, clock: Any = time.monotonic) -> None:
        self.host = host
        self.totals: Counter[str] = Counter()
        self._pending: Counter[str] = Counter()
        self._batches: list[int] = []
        self._clock = clock
        self._pushed = clock()
        self._ray: dict[str, Any] | None = None

    def observe(self, batch: list[Ltx]) -> None:
        counts = self._pending
        counts["commit_batches"] += 1
        self._batches.append(len(batch))
        for ltx in batch:
            if ltx.error is not None:
                continue
            counts["workflows_started"] += len(ltx.executions)
            for record in ltx.events:
                kind = record.kind
                if kind == Kind.ACTIVITY_COMPLETED:
                    counts["attempts:completed"] += 1
                elif kind == Kind.ACTIVITY_FAILED:
                    counts["attempts:failed"] += 1
                    if not _final(record.data):
                        counts["retries"] += 1
                elif kind in _ENDED:
                    counts["finished:" + _ENDED[kind]] += 1
        if self._clock() - self._pushed >= PUSH_EVERY:
            self.push()

    def push(self) -> None:
        """Hand what accumulated to Ray's metrics (and to ``totals``)."""
        self._pushed = self._clock()
        pending, self._pending = self._pending, Counter()
        batches, self._batches = self._batches, []
        self.totals.update(pending)
        metrics = self._metrics()
        if metrics is None:
            return
        for key, n in pending.items():
            if key == "commit_batches" or n <= 0:
                continue
            name, _, label = key.partition(":")
            counter = metrics[name]
            tags = {metrics["_label"][name]: label} if label else None
            counter.inc(n, tags=tags)
        for size in batches:
            metrics["commit_batch_size"].observe(size)
        metrics["executions_loaded"].set(self.host.loaded_count())

    def snapshot(self) -> dict[str, int]:
        self.push()
        return dict(self.totals)

    def _metrics(self) -> dict[str, Any] | None:
        if self._ray is None:
            try:
                from ray.util import metrics as m

                self._ray = {
                    "workflows_started": m.Counter(
                        "dolmen_workflows_started", "Executions created"
                    ),
                    "finished": m.Counter(
                        "dolmen_workflows_finished", "Executions ended", tag_keys=("status",)
                    ),
                    "attempts": m.Counter(
                        "dolmen_activity_attempts", "Ended attempts", tag_keys=("outcome",)
                    ),
                    "retries": m.Counter("dolmen_activity_retries", "Retried attempts"),
                    "commit_batch_size": m.Histogram(
                        "dolmen_commit_batch_size", "LTXs per commit", BATCH_BOUNDARIES
                    ),
                    "executions_loaded": m.Gauge(
                        "dolmen_executions_loaded", "Executions held in memory"
                    ),
                    "_label": {"finished": "status", "attempts": "outcome"},
                }
            except Exception:  # noqa: BLE001 - outside Ray (or no metrics agent): totals only
                self._ray = {}
        return self._ray or None


def _final(data: bytes) -> bool:
    try:
        return bool(unpack_data(data).get("final", True))
    except Exception:  # noqa: BLE001 - a damaged record counts as final
        return True
