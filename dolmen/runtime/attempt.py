"""One activity attempt, run in this process: decode the arguments, call, encode the result.

Every executor ends here (a host thread, the event loop for inline steps, a worker
process, a Ray task), and so does the in-memory simulation of the testing kit.
"""

from __future__ import annotations

import asyncio

from dolmen.runtime import codec
from dolmen.runtime.context import ActivityInfo, set_activity_info
from dolmen.runtime.definitions import Activity


def invoke(act: Activity, args_blob: bytes, info: ActivityInfo) -> bytes:
    """Run one attempt and return the encoded result; the activity's errors propagate."""
    args, kwargs = act.decode_args(args_blob)
    set_activity_info(info)
    try:
        result = act.fn(*args, **kwargs)
        if act.is_async:
            result = asyncio.run(result)
    finally:
        set_activity_info(None)
    return codec.encode(result, f"the result of activity {act.name!r}")
