"""Values typed on the command line: arguments and signal values, and ``--since`` times."""

from __future__ import annotations

import datetime
import json
import re
import time
from typing import Any

from dolmen.runtime.errors import DolmenError


def parse_value(text: str) -> Any:
    """A command-line value: JSON if it parses, else the text itself as a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_since(text: str, now: float | None = None) -> float:
    """``--since``: "90s", "15m", "2h", "1d" ago, a number of seconds ago, or an ISO date
    or time ("2026-11-22", "2026-11-22 10:30", local time unless it names a zone)."""
    now = time.time() if now is None else now
    value = text.strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhd]?)", value)
    if match:
        unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
        return now - float(match.group(1)) * unit
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise DolmenError(
            f"--since {text!r}: give a duration ago (30s, 15m, 2h, 1d) or a date/time "
            "(2026-11-22 or 2026-11-22T10:30)"
        ) from None
    return moment.timestamp()  # naive times are local, like `dolmen ls` shows them
