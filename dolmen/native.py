"""dolmen's CPU kernels: the compiled extension when it is there, pure Python otherwise.

This is the only module that imports ``dolmen._native``. The native kernels run without
the GIL (cffi releases it for every call into the library), so activity threads calling
them scale across cores; the pure-Python kernels compute the same values the same way,
which keeps benchmarks honest and lets tests compare both in one process.

The backend is chosen once, at import: ``DOLMEN_PURE_PYTHON=1`` or a missing extension
selects pure Python. ``BACKEND`` and ``is_native()`` say which one is in use; the
``python_*`` functions are always the pure-Python kernels.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

__all__ = [
    "BACKEND",
    "COUNT_PRIMES_LIMIT_MAX",
    "FIBO_N_MAX",
    "count_primes",
    "crc32",
    "fibo",
    "is_native",
    "python_count_primes",
    "python_crc32",
    "python_fibo",
]

# fibo(93) is the largest Fibonacci number that fits the native kernel's u64.
FIBO_N_MAX = 93
# Bounds the sieve's memory: one byte per odd number below the limit natively (2 GiB at
# this cap), one per number in the pure-Python fallback.
COUNT_PRIMES_LIMIT_MAX = 2**32


# ---- pure-Python kernels: same results as native/src/lib.rs ---------------------------


def python_fibo(n: int) -> int:
    """Naive doubly recursive Fibonacci, the benchmark's definition (no validation)."""
    if n < 2:
        return n
    return python_fibo(n - 1) + python_fibo(n - 2)


def _crc32_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = 0xEDB88320 ^ (c >> 1) if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC32_TABLE = _crc32_table()


def python_crc32(data: bytes) -> int:
    """IEEE CRC-32, table-driven like the native kernel (no validation)."""
    table = _CRC32_TABLE
    crc = 0xFFFFFFFF
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def python_count_primes(limit: int) -> int:
    """Number of primes below ``limit`` by a sieve of Eratosthenes (no validation)."""
    if limit <= 2:
        return 0
    sieve = bytearray([1]) * limit
    sieve[0] = sieve[1] = 0
    p = 2
    while p * p < limit:
        if sieve[p]:
            # Slice assignment does the marking in C; a Python loop would be ~50x slower.
            sieve[p * p :: p] = bytes(len(range(p * p, limit, p)))
        p += 1
    return sieve.count(1)


# ---- backend selection: the one place that decides --------------------------------------


def _load_native() -> tuple[tuple[Any, Any] | None, str | None]:
    """(ffi, lib) or None, and why the extension is not used."""
    if os.environ.get("DOLMEN_PURE_PYTHON") == "1":
        return None, "DOLMEN_PURE_PYTHON=1"
    try:
        from dolmen._native import ffi, lib
    except (ImportError, OSError) as exc:  # OSError: the library exists but dlopen failed
        return None, f"{type(exc).__name__}: {exc}"
    return (ffi, lib), None


_loaded, _NATIVE_UNAVAILABLE_REASON = _load_native()
BACKEND: str = "python" if _loaded is None else "native"


def is_native() -> bool:
    """True when the kernels run in the compiled extension (and so without the GIL)."""
    return _loaded is not None


_fibo_impl: Callable[[int], int]
_crc32_impl: Callable[[bytes], int]
_count_primes_impl: Callable[[int], int]

if _loaded is None:
    _fibo_impl = python_fibo
    _crc32_impl = python_crc32
    _count_primes_impl = python_count_primes
else:
    _ffi, _lib = _loaded
    _fibo_impl = _lib.fibo
    _count_primes_impl = _lib.count_primes

    def _crc32_impl(data: bytes) -> int:
        # from_buffer lends bytes' own memory to C: no copy, whatever the size.
        return _lib.crc32(_ffi.from_buffer(data), len(data))


# ---- public, validated API --------------------------------------------------------------


def _check_int(func: str, arg: str, value: object, lo: int, hi: int, why: str) -> int:
    # bool is an int subclass, but fibo(True) is almost surely a bug, so refuse it.
    if type(value) is bool or not isinstance(value, int):
        raise TypeError(f"{func}() argument '{arg}' must be int, not {type(value).__name__}")
    if value < lo:
        raise ValueError(f"{func}() argument '{arg}' must be >= {lo}, got {value}")
    if value > hi:
        raise ValueError(f"{func}({value}) {why}")
    return int(value)


def fibo(n: int) -> int:
    """The n-th Fibonacci number by naive double recursion; 0 <= n <= 93.

    Exponential on purpose: it is the CPU-bound benchmark kernel. Native fibo(38) takes
    about 0.1 s; the pure-Python fallback about 7.7 s.
    """
    n = _check_int("fibo", "n", n, 0, FIBO_N_MAX, "overflows u64")
    return _fibo_impl(n)


def crc32(data: bytes) -> int:
    """IEEE CRC-32 of ``data``, equal to ``zlib.crc32(data)``.

    Accepts bytes, bytearray or memoryview; str is refused because its encoding is
    ambiguous.
    """
    if isinstance(data, memoryview):
        if not data.c_contiguous:
            raise ValueError("crc32() argument 'data' must be a contiguous buffer")
        # Checksum the bytes, not the items: a view of int32s has len() == nbytes / 4.
        data = data.cast("B")
    elif not isinstance(data, bytes | bytearray):
        raise TypeError(f"crc32() argument 'data' must be bytes-like, not {type(data).__name__}")
    return _crc32_impl(data)


def count_primes(limit: int) -> int:
    """Number of primes strictly below ``limit``; 0 <= limit <= 2**32."""
    limit = _check_int(
        "count_primes",
        "limit",
        limit,
        0,
        COUNT_PRIMES_LIMIT_MAX,
        f"exceeds the limit cap {COUNT_PRIMES_LIMIT_MAX} (the sieve needs limit/2 bytes)",
    )
    return _count_primes_impl(limit)
