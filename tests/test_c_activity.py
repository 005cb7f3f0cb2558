"""A C shared library's functions as activities, through cffi, on real Ray.

The library is examples/c/dolmen_example.c, compiled with gcc for this test run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import zlib

import pytest

import dolmen
from dolmen.runtime.c_activity import CSignatureError

SOURCE = os.path.join(os.path.dirname(__file__), "..", "examples", "c", "dolmen_example.c")


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> str:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    path = tmp_path_factory.mktemp("clib") / "libdolmen_example.so"
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(path), SOURCE], check=True)
    return str(path)


@pytest.mark.ray
def test_c_functions_run_as_activities_in_a_workflow(client, library):
    add = dolmen.c_activity(library, "long add(long a, long b);")
    adler32 = dolmen.c_activity(library, "uint32_t adler32(const uint8_t *data, size_t len);")
    dot = dolmen.c_activity(library, "int64_t dot(const int64_t *x, const int64_t *y, size_t n);")
    data = os.urandom(10_000)

    @dolmen.workflow
    async def checksums(blob: bytes) -> list:
        async with dolmen.join_set() as js:
            js.submit(adler32, blob, len(blob))
            js.submit(dot, [1, 2, 3], [4, 5, -6], 3)
            results = sorted([r async for r in js])
        return [await add(2, 40), *results]

    host_pid = client.host_info()["pid"]
    assert client.run(checksums, data) == [42, *sorted([zlib.adler32(data), -4])]
    assert client.host_info()["pid"] == host_pid
    assert add.executor == "native" and add.name == "c:libdolmen_example.so:add"


@pytest.mark.ray
def test_missing_library_and_missing_symbol_fail_clearly(client, library, tmp_path):
    absent = str(tmp_path / "libabsent.so")
    no_library = dolmen.c_activity(absent, "long add(long a, long b);", retries=0)
    no_symbol = dolmen.c_activity(library, "long sub(long a, long b);", retries=1, backoff=0.01)

    @dolmen.workflow
    async def failures() -> list:
        out = []
        for act in (no_library, no_symbol):
            try:
                await act(1, 2)
            except dolmen.ActivityError as exc:
                out.append([exc.type_name, exc.message, exc.attempts])
        return out

    host_pid = client.host_info()["pid"]
    (lib_type, lib_message, lib_attempts), (sym_type, sym_message, sym_attempts) = client.run(
        failures
    )
    assert (lib_type, lib_attempts) == ("CLibraryError", 1)
    assert f"cannot load C library {absent!r}" in lib_message
    assert (sym_type, sym_attempts) == ("CLibraryError", 2)
    assert sym_message == f"symbol 'sub' not found in C library {library!r}"
    assert client.host_info()["pid"] == host_pid


@pytest.mark.ray
def test_wrong_argument_types_fail_in_the_workflow_naming_the_argument(client, library):
    dot = dolmen.c_activity(library, "int64_t dot(const int64_t *x, const int64_t *y, size_t n);")

    @dolmen.workflow
    async def misuse() -> str:
        await dot([1, 2], "not a list", 2)
        return "scheduled"

    with pytest.raises(dolmen.WorkflowFailedError, match=r"argument 'y' \(int64_t \*\)"):
        client.run(misuse)


def test_direct_calls_and_argument_checks(library):
    add = dolmen.c_activity(library, "long add(long a, long b)", name="add")
    assert add(2, b=3) == 5
    adler32 = dolmen.c_activity(library, "uint32_t adler32(const uint8_t *, size_t);")
    assert adler32(b"dolmen", 6) == zlib.adler32(b"dolmen")
    assert [p.name for p in adler32.params] == ["arg0", "arg1"]
    with pytest.raises(TypeError, match=r"argument 'a' \(long\): an integer is required"):
        add.encode_args(("two", 3), {})
    with pytest.raises(OverflowError, match="argument 'b'"):
        add.encode_args((1, 2**70), {})
    with pytest.raises(TypeError, match="expected an int, not bool"):
        add.encode_args((True, 1), {})
    with pytest.raises(TypeError, match="missing a required argument: 'b'"):
        add.encode_args((1,), {})


@pytest.mark.parametrize(
    ("signature", "complaint"),
    [
        ("lung add(long a, long b);", "cannot parse C declaration"),
        ("long a; long b;", "expected one C function declaration"),
        ("void fill(long *out, size_t n);", "'const T \\*' input"),
        ("int printf(const char *format, ...);", "variadic"),
        ("char *name(void);", "result must be a number"),
    ],
)
def test_bad_signatures_are_refused_at_definition(signature, complaint):
    with pytest.raises(CSignatureError, match=complaint):
        dolmen.c_activity("libwhatever.so", signature)
