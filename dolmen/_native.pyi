"""Type stub for the cffi module that maturin generates from native/src/lib.rs.

Use it through ``dolmen.native``, which validates arguments; these functions trust theirs.
"""

from typing import Any

class _Lib:
    def fibo(self, n: int, /) -> int: ...
    def crc32(self, ptr: Any, len: int, /) -> int: ...
    def count_primes(self, limit: int, /) -> int: ...

ffi: Any
lib: _Lib
