"""A several-node Ray cluster on one machine, for tests and benchmarks of cluster behaviour.

``ray.cluster_utils.Cluster`` starts real Ray nodes (a raylet each) on this machine. It
is owned by a child process here, because the calling process may already have joined its
own Ray session and a process can join only one: drivers join ``cluster.address``.

    with LocalCluster() as cluster:          # head without CPUs + node_a, node_b
        subprocess.run(["dolmen", "up", "--address", cluster.address, ...])
        cluster.remove_worker(0)             # kill node_a with every process on it
        cluster.add_worker({"node_c": 1})    # a node joins
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

DEFAULT_WORKERS: tuple[dict[str, float], ...] = ({"node_a": 1.0}, {"node_b": 1.0})


class LocalCluster:
    """Head node with ``head_cpus`` CPUs, plus one worker node per entry of ``workers``
    (its custom resources), each with ``cpus_per_worker`` CPUs."""

    def __init__(
        self,
        workers: Sequence[dict[str, float]] = DEFAULT_WORKERS,
        *,
        cpus_per_worker: int = 2,
        head_cpus: int = 0,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        spec = {"workers": list(workers), "cpus": cpus_per_worker, "head_cpus": head_cpus}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "dolmen.testing.local_cluster", json.dumps(spec)],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self._process.stdout.readline()
        if not line:
            self._process.wait(timeout=30)
            raise RuntimeError(
                f"the local Ray cluster did not start (exit {self._process.returncode})"
            )
        info = json.loads(line)
        self.address: str = info["address"]
        self.head: str = info["head"]
        self.workers: list[str] = [w["node_id"] for w in info["workers"]]
        self.resources: list[dict[str, float]] = [w["resources"] for w in info["workers"]]
        self._removed: set[int] = set()

    @property
    def live_workers(self) -> list[str]:
        """Node ids of the worker nodes not removed (``workers`` keeps every index)."""
        return [w for i, w in enumerate(self.workers) if i not in self._removed]

    def remove_worker(self, index: int) -> None:
        """Kill worker node ``index``: its raylet and every process on it, at once."""
        self._process.stdin.write(f"remove {index}\n")
        self._process.stdin.flush()
        answer = self._process.stdout.readline().strip()
        if answer != "removed":
            raise RuntimeError(f"removing worker node {index} failed: {answer!r}")
        self._removed.add(index)

    def add_worker(self, resources: dict[str, float] | None = None) -> str:
        """Start one more worker node (a node joining the cluster); returns its node id."""
        self._process.stdin.write(f"add {json.dumps(resources or {})}\n")
        self._process.stdin.flush()
        answer = json.loads(self._process.stdout.readline())
        self.workers.append(answer["node_id"])
        self.resources.append(answer["resources"])
        return answer["node_id"]

    def close(self) -> None:
        if self._process.poll() is not None:
            return
        self._process.stdin.close()
        try:
            self._process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self._process.kill()

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()


def _serve(spec: dict[str, Any]) -> None:
    import os

    from ray.cluster_utils import Cluster

    # As for dolmen's embedded local Ray: workers at normal priority, not Ray's nice 15.
    os.environ.setdefault("RAY_worker_niceness", "0")
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": spec["head_cpus"], "include_dashboard": False},
    )
    try:
        nodes = [
            cluster.add_node(num_cpus=spec["cpus"], resources=resources)
            for resources in spec["workers"]
        ]
        cluster.wait_for_nodes()
        workers = [
            {"node_id": node.node_id, "resources": resources}
            for node, resources in zip(nodes, spec["workers"], strict=True)
        ]
        info = {"address": cluster.address, "head": cluster.head_node.node_id, "workers": workers}
        print(json.dumps(info), flush=True)
        for line in sys.stdin:  # until the owner closes our stdin
            command = line.split()
            if command[:1] == ["remove"]:
                cluster.remove_node(nodes[int(command[1])], allow_graceful=False)
                print("removed", flush=True)
            elif command[:1] == ["add"]:
                resources = json.loads(line.split(maxsplit=1)[1])
                nodes.append(cluster.add_node(num_cpus=spec["cpus"], resources=resources))
                cluster.wait_for_nodes()
                answer = {"node_id": nodes[-1].node_id, "resources": resources}
                print(json.dumps(answer), flush=True)
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    _serve(json.loads(sys.argv[1]))
