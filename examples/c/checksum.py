"""Your own C library as activities: checksum files in parallel with a C function.

python -m examples.c.checksum FILE...       # compiles dolmen_example.c with gcc first

The library is built into a temporary folder here; in production it would be installed
on every node, and ``library=`` would name its path there.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import zlib

import dolmen

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dolmen_example.c")


def build(folder: str) -> str:
    library = os.path.join(folder, "libdolmen_example.so")
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", library, SOURCE], check=True)
    return library


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--db", default=None, help="database file (default .dolmen/dolmen.db)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        adler32 = dolmen.c_activity(
            build(folder), "uint32_t adler32(const uint8_t *data, size_t len);"
        )

        @dolmen.workflow(name="examples.c.checksum:checksums")
        async def checksums(blobs: list[bytes]) -> list[int]:
            # Each call runs on the native pool (one thread per CPU), without the GIL.
            return await dolmen.gather(*(adler32(blob, len(blob)) for blob in blobs))

        blobs = []
        for path in args.files:
            with open(path, "rb") as f:
                blobs.append(f.read())
        client = dolmen.connect(args.db)
        for path, blob, value in zip(args.files, blobs, client.run(checksums, blobs), strict=True):
            assert value == zlib.adler32(blob)  # the C function agrees with zlib
            print(f"{value:08x}  {path}")


if __name__ == "__main__":
    main()
