"""A driver process of the cluster tests: ``python -m tests.cluster.driver COMMAND ...``.

Each run is a separate Ray driver joining the cluster at ``--address``, as an application
on another machine would. It prints JSON on stdout.

  start WORKFLOW N ARGS...   start N executions (ids PREFIX-0..N-1) and print their ids
  results IDS...             wait for the executions and print their results
  kill-storage               kill the storage actor's process (Ray restarts it)
  variant VALUE N            register code (defined here, so no node can import it) for
                             the workflow "tests.cluster.variant" that returns VALUE, run it
                             N times and print the results
"""

from __future__ import annotations

import argparse
import json
import sys

import ray

import dolmen
from dolmen.actors import ray_face
from dolmen.cli.entry import MainThreadStdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command")
    parser.add_argument("rest", nargs="*")
    parser.add_argument("--address", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--prefix", default="wf")
    args = parser.parse_args()
    answer_to = sys.stdout
    sys.stdout = MainThreadStdout(sys.stdout, sys.stderr)  # Ray's cluster events go to stderr
    # Our stdout is the answer: no worker logs mixed into it.
    ray.init(address=args.address, namespace=ray_face.NAMESPACE, log_to_driver=False)
    client = dolmen.Client(args.db, address=args.address)
    if args.command == "start":
        workflow, count, *values = args.rest
        handles = client.start_many(
            workflow,
            [tuple(json.loads(v) for v in values)] * int(count),
            ids=[f"{args.prefix}-{i}" for i in range(int(count))],
        )
        answer = [h.id for h in handles]
    elif args.command == "results":
        handles = [client.handle(i) for i in args.rest]
        answer = client.results(handles, timeout=240)
    elif args.command == "variant":
        value, count = args.rest

        async def variant() -> str:
            return value

        workflow = dolmen.Workflow(variant, "tests.cluster.variant", "await")
        client.register(workflow)
        handles = client.start_many(workflow, [()] * int(count))
        answer = client.results(handles, timeout=120)
    elif args.command == "kill-storage":
        actor = ray.get_actor(ray_face.host_name(client.db_path), namespace=ray_face.NAMESPACE)
        ray.kill(actor, no_restart=False)
        answer = "killed"
    else:
        parser.error(f"unknown command {args.command!r}")
    client.close()
    # Flushed now: a Ray driver's exit may end the process before buffers are written.
    print(json.dumps(answer), file=answer_to, flush=True)


if __name__ == "__main__":
    main()
