"""Tags: short string labels on an execution, for finding it (`list(tags=...)`, the UI).

Given at ``start(..., tags=...)`` and added by ``dolmen.set_tags(**tags)`` inside the
workflow, which is a plain call recorded in the history (a ``VALUE_RECORDED`` "tags"
event) so replay neither repeats nor changes it; later values of a key replace earlier
ones. Checked here, before anything is stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_KEY = 64
MAX_VALUE = 256
MAX_TAGS = 64


def check_tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    """``tags`` as a plain ``{str: str}``; a clear ``ValueError`` for anything else."""
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise ValueError(f"tags must be a mapping of strings to strings, not {type(tags).__name__}")
    if len(tags) > MAX_TAGS:
        raise ValueError(f"at most {MAX_TAGS} tags, not {len(tags)}")
    out: dict[str, str] = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not key or len(key) > MAX_KEY:
            raise ValueError(f"tag key {key!r} must be a non-empty string of <= {MAX_KEY} chars")
        if not isinstance(value, str) or len(value) > MAX_VALUE:
            raise ValueError(
                f"tag {key!r}: its value {value!r} must be a string of <= {MAX_VALUE} chars"
            )
        out[key] = value
    return out
