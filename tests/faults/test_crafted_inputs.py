"""Crafted and torn inputs: each gets a clear error, memory stays bounded, nothing runs.

Truncated databases, a WAL of garbage, a foreign SQLite file; msgpack payloads with huge
declared lengths, deep nesting or unknown extension types; history documents crafted for
``replay_history``; and the CLI's read-only commands fuzzed with hypothesis.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import struct
import tracemalloc

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dolmen
from dolmen import cli
from dolmen.actors.host import Host
from dolmen.runtime import codec
from dolmen.runtime.errors import DolmenError, EncodingError, StorageError
from dolmen.testing.divergence import DivergenceError
from dolmen.testing.saved_histories import replay_history
from tests.workflows import doubler

MB = 1 << 20


def _written_database(path: str) -> None:
    async def write() -> None:
        host = Host(path)
        await host.open()
        try:
            await host.start(doubler, doubler.encode_args((21,), {}), "d")
            assert (await host.wait_result("d", 30.0)).status == "finished"
        finally:
            await host.close()

    asyncio.run(write())


# ---- torn and foreign database files ------------------------------------------------------


def test_a_truncated_database_is_a_clear_storage_error(tmp_path):
    path = str(tmp_path / "dolmen.db")
    _written_database(path)
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2 if size > 8192 else 4096 + 100)  # torn mid-page
    with pytest.raises(StorageError, match=str(tmp_path)):
        with contextlib.closing(dolmen.storage.connection.open_readonly(path)) as conn:
            list(conn.execute("SELECT * FROM events"))
            list(conn.execute("PRAGMA integrity_check"))
            raise StorageError(f"{path}: read a torn file without noticing")


def test_a_wal_of_garbage_is_ignored_and_nothing_committed_is_lost(tmp_path):
    path = str(tmp_path / "dolmen.db")
    _written_database(path)  # a clean close checkpoints: the WAL holds nothing needed
    with open(path + "-wal", "wb") as f:
        f.write(os.urandom(64 * 1024))
    with contextlib.closing(dolmen.storage.connection.open_readonly(path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT status FROM executions WHERE id = 'd'").fetchone() == (
            "finished",
        )


def test_a_foreign_sqlite_file_is_refused_untouched(tmp_path):
    path = tmp_path / "theirs.db"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE executions (x)")  # even with a table of our name
        conn.commit()
    before = path.read_bytes()

    async def open_it() -> None:
        host = Host(str(path))
        await host.open()

    with pytest.raises(StorageError, match="not a dolmen database"):
        asyncio.run(open_it())
    assert path.read_bytes() == before


# ---- crafted msgpack payloads ---------------------------------------------------------------


def _crafted() -> list[bytes]:
    huge_array = b"\xdd" + struct.pack(">I", 0xFFFFFFFF)  # array32 of 4 billion items
    huge_map = b"\xdf" + struct.pack(">I", 0xFFFFFFFF)
    huge_bin = b"\xc6" + struct.pack(">I", 0xFFFFFFFF) + b"x"
    huge_str = b"\xdb" + struct.pack(">I", 0xFFFFFFFF) + b"x"
    huge_ext = b"\xc9" + struct.pack(">I", 0xFFFFFFFF) + b"\x01"
    deep_lists = b"\x91" * 100_000 + b"\xc0"
    deep_maps = b"\x81\xc0" * 100_000 + b"\xc0"
    tuple_bomb = b"\xc0"
    for _ in range(5000):  # tuples nest through the ext hook, not msgpack's own stack
        tuple_bomb = msgpack.packb(msgpack.ExtType(2, tuple_bomb))
    return [
        huge_array,
        huge_map,
        huge_bin,
        huge_str,
        huge_ext,
        deep_lists,
        deep_maps,
        tuple_bomb,
        msgpack.packb(msgpack.ExtType(99, b"os.system('x')")),  # unknown ext type
        msgpack.packb(msgpack.ExtType(1, b"9" * 100_000)),  # a bigint past the digit limit
        msgpack.packb(msgpack.ExtType(1, b"\xff\xfe")),  # a bigint that is not text
        msgpack.packb(msgpack.ExtType(1, b"__import__('os')")),
        b"\xc1",  # the one byte msgpack never uses
        b"",
    ]


@pytest.mark.parametrize("payload", _crafted(), ids=lambda p: p[:6].hex() or "empty")
def test_crafted_msgpack_is_an_encoding_error_with_bounded_memory(payload):
    tracemalloc.start()
    try:
        with pytest.raises(EncodingError, match="stored payload"):
            codec.decode(payload)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * MB, f"decoding {len(payload)} bytes took {peak / MB:.0f} MB"


def test_tuples_too_deep_to_read_back_are_refused_before_they_are_stored():
    value = None
    for _ in range(32):
        value = (value,)
    assert codec.decode(codec.encode(value)) == value
    with pytest.raises(EncodingError, match="nested deeper than 32"):
        codec.encode((value,))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_decode_or_fail_as_encoding_errors(data):
    try:
        codec.decode(data)
    except EncodingError:
        pass


# ---- crafted history documents for replay_history --------------------------------------------


def _document(tmp_path) -> dict:
    path = str(tmp_path / "dolmen.db")
    _written_database(path)
    code, out, _ = _cli("history", "d", "--json", "--db", path)
    assert code == 0
    return json.loads(out)


def _cli(*argv: str) -> tuple[int, str, str]:
    import io
    import sys

    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        try:
            code = cli.main(list(argv))
        except SystemExit as exit_:  # argparse's usage errors
            code = exit_.code
    finally:
        sys.stdout, sys.stderr = saved
    return code, out.getvalue(), err.getvalue()


def test_crafted_history_documents_are_clear_errors(tmp_path):
    good = _document(tmp_path)
    assert replay_history(doubler, good).result == 42
    events = good["events"]
    crafted = [
        {},
        {"format": good["format"]},
        {"format": good["format"], "events": "not a list"},
        {"format": good["format"], "events": [1, 2]},
        {"format": good["format"], "events": [{"kind": "NO_SUCH_KIND"}]},
        {**good, "events": [{**events[0], "data": "not a dict"}]},
        {**good, "events": [{**events[0], "packed": {"args": "!!!not base64"}}]},
        {**good, "events": [{**events[0], "raw": {"args": 5}}]},
        {**good, "events": [{**events[0], "position": "x"}]},
        {**good, "events": [{**events[0], "data": {}, "raw": {}}]},
        {**good, "events": [{**events[0], "data": {"workflow": "x"}, "raw": {}}]},
        {**good, "events": [events[0], {**events[1], "data": {"result": {"no": "payload"}}}]},
        {**good, "events": events[1:]},
    ]
    for doc in crafted:
        with pytest.raises((DolmenError, ValueError, DivergenceError)) as caught:
            replay_history(doubler, doc)
        assert str(caught.value), doc
    assert replay_history(doubler, {**good, "execution": "not a dict"}).result == 42  # unused
    # The workflow named inside the document is never imported or run by name.
    evil = json.loads(json.dumps(good).replace("tests.workflows:doubler", "os:system"))
    assert replay_history(doubler, evil).result == 42


# ---- the CLI, fuzzed ------------------------------------------------------------------------

_READ_COMMANDS = ["ls", "status", "result", "history", "stats", "trace"]
_text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=30)


@pytest.fixture(scope="module")
def crafted_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("crafted")
    files = {
        "missing": root / "missing.db",
        "garbage": root / "garbage.db",
        "foreign": root / "foreign.db",
        "empty": root / "empty.db",
    }
    files["garbage"].write_bytes(os.urandom(8192))
    files["empty"].write_bytes(b"")
    with contextlib.closing(sqlite3.connect(files["foreign"])) as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.commit()
    return {k: str(v) for k, v in files.items()}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    command=st.sampled_from(_READ_COMMANDS),
    which=st.sampled_from(["missing", "garbage", "foreign", "empty"]),
    extra=st.lists(_text, max_size=4),
)
def test_fuzzed_cli_arguments_get_a_clear_error_not_a_traceback(
    crafted_files, command, which, extra
):
    code, out, err = _cli(command, *extra, "--db", crafted_files[which])
    assert code != 0
    assert "Traceback" not in err and "Traceback" not in out
    assert err.strip(), "an error must say what was wrong"
