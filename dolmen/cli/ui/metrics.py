"""`/metrics`: the database's tallies in Prometheus' text format (prometheus-client).

A custom collector reads ``dolmen.storage.tallies`` at scrape time, so the figures are
the stored history's (the same from any process, and after restarts): counters of
executions started and ended by status, activity attempts by outcome and retries; a
gauge of running executions; a histogram of finished executions' durations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

from dolmen.runtime.status import Status
from dolmen.storage.tallies import Tallies


class TalliesCollector:
    def __init__(self, read: Callable[[], Tallies]) -> None:
        self.read = read

    def collect(self) -> Iterator[Any]:
        t = self.read()
        started = CounterMetricFamily(
            "dolmen_workflows_started", "Executions created (children included)"
        )
        started.add_metric([], sum(t.executions.values()))
        yield started
        ended = CounterMetricFamily(
            "dolmen_workflows_finished", "Executions that ended, by status", labels=["status"]
        )
        for status, n in sorted(t.executions.items()):
            if status != Status.RUNNING:
                ended.add_metric([status], n)
        yield ended
        attempts = CounterMetricFamily(
            "dolmen_activity_attempts", "Ended activity attempts, by outcome", labels=["outcome"]
        )
        for outcome, n in sorted(t.attempts.items()):
            attempts.add_metric([outcome], n)
        yield attempts
        retries = CounterMetricFamily(
            "dolmen_activity_retries", "Failed activity attempts followed by another attempt"
        )
        retries.add_metric([], t.retries)
        yield retries
        scheduled = CounterMetricFamily("dolmen_activities_scheduled", "Activity steps issued")
        scheduled.add_metric([], t.activities_scheduled)
        yield scheduled
        running = GaugeMetricFamily("dolmen_executions_running", "Executions not ended yet")
        running.add_metric([], t.executions.get(str(Status.RUNNING), 0))
        yield running
        duration = HistogramMetricFamily(
            "dolmen_execution_duration_seconds", "Finished executions, creation to end"
        )
        buckets = [(repr(b), c) for b, c in t.duration_buckets] + [("+Inf", t.duration_count)]
        duration.add_metric([], buckets, sum_value=t.duration_sum)
        yield duration


def exposition(read: Callable[[], Tallies]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TalliesCollector(read))  # type: ignore[arg-type]
    return generate_latest(registry)
