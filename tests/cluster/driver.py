"""A driver process of the cluster tests: ``python -m tests.cluster.driver COMMAND ...``.

Each run is a separate Ray driver joining the cluster at ``--address``, as an application
on another machine would. It prints JSON on stdout.

  start WORKFLOW N ARGS...   start N executions (ids PREFIX-0..N-1) and print their ids
  results IDS...             wait for the executions and print their results
  kill-storage               kill the storage actor's process (Ray restarts it)
"""

from __future__ import annotations

import argparse
import json

import dolmen
from dolmen.actors import placement


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command")
    parser.add_argument("rest", nargs="*")
    parser.add_argument("--address", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--prefix", default="wf")
    args = parser.parse_args()
    client = dolmen.Client(args.db, address=args.address)
    if args.command == "start":
        workflow, count, *values = args.rest
        handles = client.start_many(
            workflow,
            [tuple(json.loads(v) for v in values)] * int(count),
            ids=[f"{args.prefix}-{i}" for i in range(int(count))],
        )
        print(json.dumps([h.id for h in handles]))
    elif args.command == "results":
        handles = [client.handle(i) for i in args.rest]
        print(json.dumps(client.results(handles, timeout=240)))
    elif args.command == "kill-storage":
        import ray

        actor = ray.get_actor(placement.host_name(client.db_path), namespace=placement.NAMESPACE)
        ray.kill(actor, no_restart=False)
        print(json.dumps("killed"))
    client.close()


if __name__ == "__main__":
    main()
