"""A driver that leaves an activity thread looping forever, then exits (run as a script).

Prints one JSON line: the pids of the processes dolmen started for it. The test then
checks that every one of them is gone within seconds.
"""

from __future__ import annotations

import json
import os
import sys
import time

import dolmen


def _spin(marker: str) -> None:
    with open(marker, "w") as f:
        f.write(str(os.getpid()))
    while True:  # never returns, never checks for cancellation
        time.sleep(0.01)


@dolmen.activity(retries=0)
def spin_in_thread(marker: str) -> None:
    _spin(marker)


@dolmen.activity(retries=0, executor="process")
def spin_in_process(marker: str) -> None:
    _spin(marker)


@dolmen.workflow
async def stuck(marker: str) -> None:
    await dolmen.gather(spin_in_thread(marker + ".thread"), spin_in_process(marker + ".process"))


def main(db_path: str, how: str) -> None:
    client = dolmen.Client(db_path)
    marker = db_path + ".running"
    handle = client.start(stuck, marker, id="stuck")
    deadline = time.monotonic() + 60
    markers = [marker + ".thread", marker + ".process"]
    while not all(os.path.exists(m) and os.path.getsize(m) for m in markers):
        if time.monotonic() > deadline:
            raise SystemExit("the activity never started")
        try:
            handle.result(timeout=0.05)  # waits on the runtime, not a sleep
        except dolmen.ResultTimeoutError:
            pass
    handle.cancel()
    pids = {}
    for name, path in zip(("host", "worker"), markers, strict=True):  # a thread runs in the host
        with open(path) as f:
            pids[name] = int(f.read())
    print(json.dumps(pids), flush=True)
    if how == "kill":
        os._exit(1)  # the driver dies without any cleanup
    if how == "close":
        client.close()
    # "exit": the interpreter exits normally, as a script that forgot close() would


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
