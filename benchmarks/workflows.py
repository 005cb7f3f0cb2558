"""The step bodies and workflows the benchmarks time: fibo (native, Python, worker process,
subprocess) and no-op steps. The DBOS peer runs the same kernels (``dolmen.native``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

import dolmen
from dolmen import native

# ---- fibo, four ways ----------------------------------------------------------------------


@dolmen.activity(retries=0, executor="native")
def fibo_native(n: int) -> int:
    return native.fibo(n)


@dolmen.activity(retries=0)
def fibo_py(n: int) -> int:
    return native.python_fibo(n)


@dolmen.activity(retries=0, executor="process")
def fibo_process(n: int) -> int:
    return native.python_fibo(n)


# The subprocess variant: one process per activity. The executable is a 6-line C program
# (naive recursive fibo, prints the result) compiled once per machine with `cc -O2`; where
# no C compiler exists, `python -c` computes the same (and costs ~60 ms of start-up each).
FIBO_C = r"""#include <stdio.h>
#include <stdlib.h>
static unsigned long long fibo(unsigned n) { return n < 2 ? n : fibo(n - 1) + fibo(n - 2); }
int main(int argc, char **argv) {
    printf("%llu\n", fibo(argc > 1 ? (unsigned)atoi(argv[1]) : 10));
    return 0;
}
"""
FIBO_EXE = os.path.join(tempfile.gettempdir(), f"dolmen-bench-{os.getuid()}", "fibo")
FIBO_PY = (
    "import sys\ndef f(n): return n if n < 2 else f(n - 1) + f(n - 2)\nprint(f(int(sys.argv[1])))"
)

fibo_exec_c = dolmen.exec_activity([FIBO_EXE], retries=0, name="bench:fibo-exe")
fibo_exec_py = dolmen.exec_activity(
    [sys.executable, "-c", FIBO_PY], retries=0, name="bench:fibo-py"
)


def build_fibo_executable() -> tuple[str, list[str]]:
    """Compile the C fibo once; returns (variant name, argv prefix) of what will run."""
    if not os.path.exists(FIBO_EXE) and shutil.which("cc"):
        os.makedirs(os.path.dirname(FIBO_EXE), mode=0o700, exist_ok=True)
        source = FIBO_EXE + ".c"
        with open(source, "w") as f:
            f.write(FIBO_C)
        subprocess.run(["cc", "-O2", "-o", FIBO_EXE, source], check=True, capture_output=True)
    if os.path.exists(FIBO_EXE):
        return "exec", [FIBO_EXE]
    return "exec-python", [sys.executable, "-c", FIBO_PY]


_STEPS = {"native": fibo_native, "python": fibo_py, "process": fibo_process}
_EXEC = {"exec": fibo_exec_c, "exec-python": fibo_exec_py}


@dolmen.workflow
async def sequential(n: int, iterations: int, variant: str) -> int:
    step = _STEPS[variant]
    last = 0
    for _ in range(iterations):
        last = await step(n)
    return last


@dolmen.workflow
async def parallel(n: int, iterations: int, variant: str) -> int:
    last = 0
    async with dolmen.join_set() as js:
        for _ in range(iterations):
            if variant in _EXEC:
                js.submit(_EXEC[variant], [str(n)])
            else:
                js.submit(_STEPS[variant], n)
        async for result in js:
            last = int(result.stdout) if variant in _EXEC else result
    return last


# ---- no-op steps ----------------------------------------------------------------------------


def noop_body() -> None:
    return None


@dolmen.activity(retries=0)
def noop() -> None:
    return noop_body()


@dolmen.activity(retries=0, executor="inline")
def noop_inline() -> None:
    return noop_body()


@dolmen.workflow
async def noop_steps(steps: int, inline: bool = False) -> None:
    step = noop_inline if inline else noop
    for _ in range(steps):
        await step()


@dolmen.workflow
async def empty() -> None:
    return None


@dolmen.workflow
async def wait_for_go(i: int) -> int:
    """Recovery: blocks on a signal, so a killed host leaves it unfinished."""
    return i + await dolmen.wait_signal("go")
