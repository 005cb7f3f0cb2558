"""Testing workflows: determinism checks in memory, saved-history replay, a pytest fixture.

- ``assert_deterministic(workflow, *args)`` runs the workflow in memory (no Ray, no
  database, activities inline) with random completion orders and delays, crashes and
  evictions at every step, and raises ``DivergenceError`` with a diff of the recorded and
  the replayed history at the first divergence.
- ``check_determinism(workflow, args_strategy)`` does the same driven by hypothesis.
- ``replay_history(workflow, path)`` replays a saved ``dolmen history ID --json`` file.
- ``Simulation`` is the in-memory runner underneath, for tests of your own.
- ``dolmen_runtime`` is a pytest fixture: a ``Client`` on a temporary database (needs Ray).
- ``dolmen.testing.local_cluster.LocalCluster`` starts a several-node Ray cluster on this
  machine (in a child process) for tests of cluster behaviour: placement, losing a node.
"""

from dolmen.testing.determinism import (
    DeterminismReport,
    DivergenceError,
    ReplayedHistory,
    assert_deterministic,
    check_determinism,
    load_history,
    render_diff,
    replay_history,
)
from dolmen.testing.pytest_plugin import dolmen_runtime
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
    "load_history",
    "render_diff",
    "replay_history",
    "virtual_time",
]
