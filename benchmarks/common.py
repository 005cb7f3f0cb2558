"""What every workload family shares: timing, medians, percentiles, progress, machine facts.

This machine's speed drifts (shared vCPUs, frequency) by up to +-20% between runs, so a
measurement is interleaved with its bare baseline (bare, measured, bare, measured, ...)
and medians are reported: drift then shows up as spread instead of biasing the ratio.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import math
import os
import platform
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

Row = dict[str, Any]
Progress = Callable[[str], None]


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sample."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def interleaved(
    measure: Callable[[], float], bare: Callable[[], float], rounds: int
) -> tuple[float, float, list[float], list[float]]:
    """bare, (measure, bare) x rounds; returns the medians and the samples."""
    bares = [bare()]
    runs = []
    for _ in range(rounds):
        runs.append(measure())
        bares.append(bare())
    return statistics.median(runs), statistics.median(bares), runs, bares


def adaptive(
    measure: Callable[[], float],
    bare: Callable[[], float],
    budget: float,
    most: int,
    least: int = 1,
) -> tuple[float, float, list[float], list[float]]:
    """Like ``interleaved``, with as many rounds as fit ``budget`` seconds after the first
    round (at least ``least``, at most ``most``): short workloads repeat, long ones less."""
    bares = [bare()]
    runs = [measure()]
    bares.append(bare())
    rounds = max(least, rounds_for(runs[0] + bares[-1], budget, most))
    for _ in range(rounds - 1):
        runs.append(measure())
        bares.append(bare())
    return statistics.median(runs), statistics.median(bares), runs, bares


def rounds_for(estimate_seconds: float, budget: float = 3.0, most: int = 9) -> int:
    """How many rounds of ``estimate_seconds`` fit ``budget`` (1 to ``most``)."""
    if estimate_seconds <= 0:
        return most
    return max(1, min(most, int(budget / estimate_seconds)))


def stored_bytes(path: str, tables: tuple[str, ...] | None = None) -> int:
    """Bytes of the b-tree pages of ``tables`` (all tables if None) measured with dbstat,
    so the WAL's state does not matter; the file size where dbstat is not compiled in."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        if tables is None:
            row = conn.execute("SELECT sum(pgsize) FROM dbstat").fetchone()
        else:
            marks = ",".join("?" * len(tables))
            row = conn.execute(
                f"SELECT sum(pgsize) FROM dbstat WHERE name IN ({marks})", tables
            ).fetchone()
        return row[0] or 0
    except sqlite3.OperationalError:
        return os.path.getsize(path)
    finally:
        conn.close()


def fit_line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares a, b of y = a + b * x."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0
    return my - b * mx, b


def version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if "model name" in ln), None)
    except OSError:
        pass
    memory = None
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        pass
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "memory_bytes": memory,
        "platform": platform.platform(),
    }


def versions() -> dict[str, Any]:
    from dolmen import native

    return {
        "python": platform.python_version(),
        "dolmen": version("dolmen"),
        "dolmen_kernel": native.BACKEND,
        "ray": version("ray"),
        "sqlite": sqlite3.sqlite_version,
        "msgpack": version("msgpack"),
        "dbos": version("dbos"),
        "matplotlib": version("matplotlib"),
    }


class Reporter:
    """Progress on stderr: one line per measurement, with the time since the start."""

    def __init__(self, total: int, stream: Any = None) -> None:
        self.total = total
        self.done = 0
        self.started = time.monotonic()
        self.stream = stream or sys.stderr

    def _clock(self) -> str:
        return str(datetime.timedelta(seconds=int(time.monotonic() - self.started)))

    def step(self, family: str, label: str) -> None:
        self.done += 1
        print(
            f"[{self.done:>2}/{self.total} {self._clock():>7}] {family}: {label}",
            file=self.stream,
            flush=True,
        )

    def note(self, message: str) -> None:
        print(f"{'':>{len(str(self.total)) * 2 + 12}} {message}", file=self.stream, flush=True)


def summary(row: Row) -> str:
    """A short human line for a finished row (progress output)."""
    parts = []
    for key in (
        "seconds",
        "p50_seconds",
        "workflows_per_second",
        "instances_per_second",
        "ratio_to_bare",
        "resume_seconds",
    ):
        value = row.get(key)
        if isinstance(value, int | float):
            if key.endswith("seconds"):
                name = "time" if key == "seconds" else key.removesuffix("_seconds")
                parts.append(f"{name}={fmt_seconds(value)}")
            else:
                parts.append(f"{key}={value:.3g}")
    bare = row.get("bare_seconds")
    if isinstance(bare, int | float):
        parts.append(f"bare={fmt_seconds(bare)}")
    return ", ".join(parts) or "done"


def fmt_seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1:
        return f"{value:.3g} s"
    if value >= 1e-3:
        return f"{value * 1e3:.3g} ms"
    return f"{value * 1e6:.3g} us"


class Context:
    """What a workload family gets: the shared client, sizes, a scratch folder, cleanups."""

    def __init__(self, client: Any, quick: bool, scratch: str, synchronous: str) -> None:
        self.client = client
        self.quick = quick
        self.scratch = scratch
        self.synchronous = synchronous
        self._cleanups: list[Callable[[], Any]] = []

    def on_close(self, fn: Callable[[], Any]) -> None:
        self._cleanups.append(fn)

    def close(self) -> None:
        while self._cleanups:
            try:
                self._cleanups.pop()()
            except Exception as exc:  # noqa: BLE001 - cleanup must not hide the results
                print(f"cleanup failed: {exc!r}", file=sys.stderr)


Step = tuple[str, Callable[[], "Row | list[Row]"]]


def dispose(client: Any) -> None:
    """Close a client that owns its host, then end the host's Ray process too (a closed
    host only flushes; its idle process would otherwise live as long as the session)."""
    from dolmen.testing.crashes import kill_host

    client.close()
    kill_host(client)
