"""dolmen.native: kernel values, native/pure-Python agreement, GIL release, input checks."""

from __future__ import annotations

import array
import os
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dolmen import native

REPO = Path(__file__).resolve().parents[1]

needs_native = pytest.mark.skipif(not native.is_native(), reason="native extension not in use")


def test_backend_is_consistent() -> None:
    assert native.BACKEND in ("native", "python")
    assert native.is_native() == (native.BACKEND == "native")


@pytest.mark.skipif(os.environ.get("DOLMEN_PURE_PYTHON") == "1", reason="pure Python requested")
def test_extension_is_built() -> None:
    # A failed build would otherwise fall back silently and every native test would skip.
    assert native.is_native(), native._NATIVE_UNAVAILABLE_REASON


# ---- values ---------------------------------------------------------------------------------

FIBO_KNOWN = {0: 0, 1: 1, 2: 1, 3: 2, 10: 55, 20: 6765, 30: 832040}
PRIMES_KNOWN = {0: 0, 1: 0, 2: 0, 3: 1, 4: 2, 10: 4, 11: 4, 12: 5, 100: 25, 101: 25, 102: 26}
CRC_KNOWN = {
    b"": 0,
    b"a": 0xE8B7BE43,
    b"123456789": 0xCBF43926,
    b"The quick brown fox jumps over the lazy dog": 0x414FA339,
}


@pytest.mark.parametrize("fibo", [native.fibo, native.python_fibo], ids=["api", "python"])
def test_fibo_known_values(fibo: Callable[[int], int]) -> None:
    for n, want in FIBO_KNOWN.items():
        assert fibo(n) == want, n


@needs_native
def test_fibo_38_native() -> None:
    assert native.fibo(38) == 39088169


@pytest.mark.parametrize(
    "count", [native.count_primes, native.python_count_primes], ids=["api", "python"]
)
def test_count_primes_known_values(count: Callable[[int], int]) -> None:
    for limit, want in PRIMES_KNOWN.items():
        assert count(limit) == want, limit
    assert count(10**6) == 78498


@pytest.mark.parametrize("crc", [native.crc32, native.python_crc32], ids=["api", "python"])
def test_crc32_known_vectors(crc: Callable[[bytes], int]) -> None:
    for data, want in CRC_KNOWN.items():
        assert crc(data) == want, data


def test_crc32_buffer_types() -> None:
    data = os.urandom(4096)
    want = zlib.crc32(data)
    assert native.crc32(data) == want
    assert native.crc32(bytearray(data)) == want
    assert native.crc32(memoryview(data)) == want
    assert native.crc32(memoryview(data)[100:200]) == zlib.crc32(data[100:200])
    ints = array.array("i", range(100))
    # A memoryview of ints is checksummed over its bytes, not truncated to its item count.
    assert native.crc32(memoryview(ints)) == zlib.crc32(ints.tobytes())


@needs_native
def test_crc32_large_buffer_native() -> None:
    data = os.urandom(8 << 20)
    assert native.crc32(data) == zlib.crc32(data)


# ---- native and pure Python agree -----------------------------------------------------------


@needs_native
@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 25))
def test_fibo_agrees(n: int) -> None:
    assert native.fibo(n) == native.python_fibo(n)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=2048))
def test_crc32_agrees(data: bytes) -> None:
    want = zlib.crc32(data)
    assert native.crc32(data) == want
    assert native.python_crc32(data) == want


@settings(max_examples=100, deadline=None)
@given(limit=st.integers(0, 10**5))
def test_count_primes_agrees(limit: int) -> None:
    assert native.count_primes(limit) == native.python_count_primes(limit)


# ---- the GIL is released during native calls -------------------------------------------------


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _finish_times(n: int, threads: int = 2) -> list[float]:
    """Seconds from a common start until each of `threads` concurrent fibo(n) calls returns."""
    barrier = threading.Barrier(threads + 1)
    ends: list[float] = []

    def work() -> None:
        barrier.wait()
        native.fibo(n)
        ends.append(time.perf_counter())

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    start = time.perf_counter()
    for w in workers:
        w.join()
    return sorted(end - start for end in ends)


def _busy_cpu_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy (Linux); None where unknown."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


@needs_native
def test_main_thread_runs_during_native_call() -> None:
    # With the GIL held, this loop could not tick at all while fibo runs; holds on one core too.
    ticks = 0
    worker = threading.Thread(target=native.fibo, args=(36,))
    worker.start()
    while worker.is_alive():
        ticks += 1
        time.sleep(0.001)
    worker.join()
    assert ticks >= 10


@needs_native
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores")
def test_two_threads_run_in_parallel() -> None:
    n = 36
    one = min(_timed(lambda: native.fibo(n)) for _ in range(3))
    # A shared machine's other processes can take a core for seconds. Rounds in which they
    # used a noticeable share of a core prove nothing either way; with the GIL held, no
    # quiet round could get below 2x.
    quiet_rounds: list[float] = []
    for _ in range(10):
        busy0, cpu0 = _busy_cpu_seconds(), time.process_time()
        wall = _finish_times(n)[-1]
        busy1, cpu1 = _busy_cpu_seconds(), time.process_time()
        if wall < 1.6 * one:
            return
        others = None if busy0 is None or busy1 is None else busy1 - busy0 - (cpu1 - cpu0)
        if others is None or others < 0.2 * wall:
            quiet_rounds.append(wall)
        time.sleep(0.2)
    if not quiet_rounds:
        pytest.skip("other processes kept a core busy in every round")
    pytest.fail(f"one call {one:.3f}s; two threads took {min(quiet_rounds):.3f}s at best")


# ---- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: native.fibo(-1), ValueError, r"fibo\(\) argument 'n' must be >= 0"),
        (lambda: native.fibo(94), ValueError, r"fibo\(94\) overflows u64"),
        (lambda: native.fibo(10**30), ValueError, "overflows u64"),
        (lambda: native.fibo(True), TypeError, r"fibo\(\) argument 'n' must be int, not bool"),
        (lambda: native.fibo(3.0), TypeError, "not float"),
        (lambda: native.fibo("3"), TypeError, "not str"),
        (lambda: native.fibo(None), TypeError, "not NoneType"),
        (lambda: native.count_primes(-5), ValueError, "must be >= 0"),
        (lambda: native.count_primes(2**32 + 1), ValueError, "exceeds the limit cap"),
        (lambda: native.count_primes(False), TypeError, "not bool"),
        (lambda: native.count_primes(1e6), TypeError, "not float"),
        (lambda: native.crc32("text"), TypeError, r"crc32\(\) argument 'data'.*not str"),
        (lambda: native.crc32([1, 2]), TypeError, "not list"),
        (lambda: native.crc32(memoryview(b"abcd")[::2]), ValueError, "contiguous"),
    ],
)
def test_bad_input(call: Callable[[], object], exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        call()


def test_int_subclass_accepted() -> None:
    class Size(int):
        pass

    assert native.fibo(Size(10)) == 55


# ---- backend selection ----------------------------------------------------------------------


def test_pure_python_env_selects_fallback() -> None:
    env = {**os.environ, "DOLMEN_PURE_PYTHON": "1"}
    code = (
        "import dolmen.native as m; "
        "print(m.BACKEND, m.is_native(), m.fibo(20), m.crc32(b'123456789'), m.count_primes(100))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["python", "False", "6765", str(0xCBF43926), "25"]
