"""Testing workflows: determinism checks in memory, saved-history replay, a pytest fixture.

- ``assert_deterministic(workflow, *args)`` runs the workflow in memory (no Ray, no
  database, activities inline) with random completion orders and delays, crashes and
  evictions at every step, and raises ``DivergenceError`` with a diff of the recorded and
  the replayed history at the first divergence.
- ``check_determinism(workflow, args_strategy)`` does the same driven by hypothesis.
- ``replay_history(workflow, path)`` replays a saved ``dolmen history ID --json`` file;
  ``replay_histories(workflow, folder)`` every one in a folder: the deploy test for CI
  (code guarded by ``dolmen.patched`` passes; ``.patches`` says which branch each takes).
- ``Simulation`` is the in-memory runner underneath, for tests of your own.
- ``dolmen_runtime`` is a pytest fixture: a ``Client`` on a temporary database (needs Ray);
  pytest finds it without an import (dolmen's ``pytest11`` plugin).
- ``kill_host(client)`` kills a runtime's host process as a crash would.
- ``dolmen.testing.local_cluster.LocalCluster`` starts a several-node Ray cluster on this
  machine (in a child process) for tests of cluster behaviour: placement, losing a node.

The kit needs hypothesis and pytest: ``pip install "dolmen[testing]"``.
"""

try:
    import hypothesis  # noqa: F401 - checked here, so a missing extra is named at once
    import pytest  # noqa: F401
except ImportError as missing:
    raise ImportError(
        f"dolmen.testing needs {missing.name}, which is not installed: "
        'pip install "dolmen[testing]"'
    ) from missing

from dolmen.pytest_plugin import dolmen_runtime
from dolmen.testing.crashes import kill_host
from dolmen.testing.determinism import DeterminismReport, assert_deterministic, check_determinism
from dolmen.testing.divergence import DivergenceError, render_diff
from dolmen.testing.saved_histories import (
    ReplayedHistory,
    load_history,
    replay_histories,
    replay_history,
)
from dolmen.testing.simulation import Simulation, SimulationError, Step, virtual_time

__all__ = [
    "DeterminismReport",
    "DivergenceError",
    "ReplayedHistory",
    "Simulation",
    "SimulationError",
    "Step",
    "assert_deterministic",
    "check_determinism",
    "dolmen_runtime",
    "kill_host",
    "load_history",
    "render_diff",
    "replay_histories",
    "replay_history",
    "virtual_time",
]
