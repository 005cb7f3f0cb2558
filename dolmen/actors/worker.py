"""The worker process: a Ray actor that runs pure-Python activity attempts."""

from __future__ import annotations

from typing import Any

import ray

from dolmen.actors.executor import invoke
from dolmen.runtime.decorators import Activity
from dolmen.runtime.replay import error_fields
from dolmen.runtime.workflow_api import ActivityInfo


def node_label() -> str:
    """A short name for this process's Ray node, as histories record it."""
    return ray.get_runtime_context().get_node_id()[:NODE_LABEL_LENGTH]


# Enough hex digits of a Ray node id to tell a cluster's nodes apart, and short enough to
# keep a recorded step small.
NODE_LABEL_LENGTH = 12


@ray.remote(num_cpus=0, max_retries=0)
def run_attempt(act: Activity, args_blob: bytes, info: ActivityInfo) -> tuple[str, Any, str]:
    """One attempt of an activity with custom resources, wherever Ray placed it."""
    try:
        return "ok", invoke(act, args_blob, info), node_label()
    except BaseException as exc:  # noqa: BLE001 - including SystemExit from activity code
        return "error", error_fields(exc), node_label()


@ray.remote(num_cpus=1, max_restarts=0)
class PythonWorker:
    def run(self, act: Activity, args_blob: bytes, info: ActivityInfo) -> tuple[str, Any, str]:
        # Errors travel back as values: cheaper than Ray's exception wrapping, and the
        # fields are exactly what the history records.
        try:
            return "ok", invoke(act, args_blob, info), node_label()
        except BaseException as exc:  # noqa: BLE001 - including SystemExit from activity code
            return "error", error_fields(exc), node_label()
