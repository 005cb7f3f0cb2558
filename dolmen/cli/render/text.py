"""Small text formats the renderers and commands share: tables, counts, rates, times."""

from __future__ import annotations

import datetime
from collections.abc import Iterable


def table(rows: list[list[str]], right: Iterable[int] = ()) -> list[str]:
    """Columns padded to their widest cell; columns in ``right`` are right-aligned."""
    right = set(right)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def count(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def percent(rate: float | None) -> str:
    return "-" if rate is None else f"{100.0 * rate:.1f}%"


def ms(seconds: float | None) -> str:
    if seconds is None or seconds != seconds:  # None or NaN
        return "-"
    value = seconds * 1000.0
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def size(n: float | None) -> str:
    if n is None:
        return "-"
    if abs(n) < 1000:
        return f"{n:,.0f} B"
    for unit in ("kB", "MB"):
        n /= 1000.0
        if abs(n) < 1000:
            return f"{n:,.1f} {unit}"
    return f"{n / 1000.0:,.1f} GB"


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.datetime.fromtimestamp(ts).isoformat(sep=" ", timespec="seconds")
