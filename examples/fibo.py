"""The Obelisk fibo workloads: `fiboa` (sequential) and `fiboa_concurrent` (join set).

python -m examples.fibo 38 100            # concurrent, native kernel
python -m examples.fibo 10 40 --sequential
"""

from __future__ import annotations

import argparse
import time

import dolmen
from dolmen import native


@dolmen.activity(retries=3, timeout=600.0, executor="native")
def fibo(n: int) -> int:
    # The native kernel releases the GIL; the native pool has one thread per CPU of the
    # node, so a fan-out keeps every core busy without oversubscribing them.
    return native.fibo(n)


@dolmen.workflow
async def fiboa(n: int, iterations: int) -> int:
    last = 0
    for _ in range(iterations):
        last = await fibo(n)
    return last


@dolmen.workflow
async def fiboa_concurrent(n: int, iterations: int) -> int:
    async with dolmen.join_set() as js:
        for _ in range(iterations):
            js.submit(fibo, n)
        last = 0
        async for result in js:
            last = result
    return last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=38)
    parser.add_argument("iterations", type=int, nargs="?", default=100)
    parser.add_argument("--sequential", action="store_true", help="run fiboa instead")
    parser.add_argument("--db", default=None, help="database file (default .dolmen/dolmen.db)")
    args = parser.parse_args()
    client = dolmen.connect(args.db)
    workflow = fiboa if args.sequential else fiboa_concurrent
    started = time.perf_counter()
    handle = client.start(workflow, args.n, args.iterations)
    result = handle.result(progress=lambda s: print(f"  ... {s:.0f} s", flush=True))
    elapsed = time.perf_counter() - started
    print(
        f"{workflow.__name__}({args.n}, {args.iterations}) = {result} in {elapsed:.3f} s "
        f"[{native.BACKEND} fibo, execution {handle.id}]"
    )


if __name__ == "__main__":
    main()
