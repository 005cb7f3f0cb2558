"""The `dolmen` command.

The read-only commands are tested on a database written by a plain-asyncio ``Host`` (no
Ray); signal and cancel go through the shared Ray session; one slow test runs
`dolmen run` end to end in a subprocess with its own embedded Ray.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import sqlite3
import subprocess
import sys

import pytest

import dolmen
from dolmen import cli
from dolmen import storage as db
from dolmen.actors.host import Host
from dolmen.cli import entry, plumbing, values
from dolmen.runtime import codec
from dolmen.runtime.events import Event, Kind
from dolmen.storage import export

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_flaky_calls: list[int] = []


@dolmen.activity(retries=0)
def describe(label: str, blob: bytes, pair: tuple) -> dict:
    return {"label": label, "size": len(blob), "pair": pair}


@dolmen.activity(retries=1, backoff=0.001)
def flaky_once(value: int) -> int:
    _flaky_calls.append(value)
    if len(_flaky_calls) == 1:
        raise ConnectionError("first attempt fails on purpose")
    return value + 1


@dolmen.workflow
async def double(x: int) -> int:
    return 2 * x


@dolmen.workflow
async def pipeline(label: str) -> dict:
    info = await describe(label, b"\x00\xff", (1, 2))
    bumped = await flaky_once(41)
    doubled = await double(3)
    dolmen.now()
    return {"info": info, "bumped": bumped, "doubled": doubled}


@dolmen.workflow
async def broken(message: str) -> None:
    raise ValueError(message)


@dolmen.workflow
async def waiting(name: str) -> list:
    value = await dolmen.wait_signal(name)
    return [name, value]


async def _populate(path: str) -> dict[str, str]:
    host = Host(path)
    await host.open()
    try:
        ids = {
            "ok": await host.start(pipeline, pipeline.encode_args(("hello",), {}), "ok-1"),
            "failed": await host.start(broken, broken.encode_args(("boom",), {}), "bad-1"),
            "running": await host.start(waiting, waiting.encode_args(("go",), {}), "wait-1"),
            "cancelled": await host.start(waiting, waiting.encode_args(("x",), {}), "gone-1"),
        }
        for key in ("ok", "failed"):
            status = (await host.wait_result(ids[key], 10.0)).status
            assert status == ("finished" if key == "ok" else "failed")
        await host.cancel(ids["cancelled"])
        assert (await host.wait_result(ids["cancelled"], 10.0)).status == "cancelled"
    finally:
        await host.close()
    return ids


@pytest.fixture(scope="module")
def populated(tmp_path_factory) -> tuple[str, dict[str, str]]:
    path = str(tmp_path_factory.mktemp("cli") / "dolmen.db")
    _flaky_calls.clear()
    return path, asyncio.run(_populate(path))


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


# ---- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["ls", "status x", "result x", "history x"])
def test_missing_database_is_a_clear_error(capsys, tmp_path, command):
    missing = str(tmp_path / "nowhere" / "dolmen.db")
    code, out, err = run_cli(capsys, *command.split(), "--db", missing)
    assert code == 2 and out == ""
    assert err.startswith("dolmen: error: no dolmen database at")
    assert "--db" in err
    assert not os.path.exists(missing)  # reading never creates a database


def test_garbage_file_is_a_clear_error(capsys, tmp_path):
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(os.urandom(4096))
    code, _, err = run_cli(capsys, "status", "x", "--db", str(garbage))
    assert code == 2
    assert err.startswith("dolmen: error: database")
    assert "corrupted or not an SQLite database" in err


def test_foreign_and_empty_files_are_refused(capsys, tmp_path):
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE t (x)")
    code, _, err = run_cli(capsys, "ls", "--db", str(foreign))
    assert code == 2 and "not a dolmen database" in err
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    code, _, err = run_cli(capsys, "ls", "--db", str(empty))
    assert code == 2 and "no dolmen tables" in err


def test_unknown_execution(capsys, populated):
    path, _ = populated
    for command in ("status", "result", "history"):
        code, out, err = run_cli(capsys, command, "no-such-id", "--db", path)
        assert code == 2 and out == ""
        assert err == "dolmen: error: no execution with id 'no-such-id'\n"


@pytest.mark.parametrize(
    "name", ["no_such_module_xyz:wf", "tests.test_cli:nothing_here", "tests.test_cli:describe"]
)
def test_unknown_workflow_fails_before_starting_ray(capsys, tmp_path, name):
    import ray

    was_up = ray.is_initialized()
    code, out, err = run_cli(capsys, "run", name, "1", "--db", str(tmp_path / "d.db"))
    assert code == 2 and out == ""
    assert err.startswith("dolmen: error: ") and name in err and err.count("\n") == 1
    assert ray.is_initialized() == was_up
    assert not os.path.exists(tmp_path / "d.db")


def test_bad_arguments_fail_before_starting_ray(capsys, tmp_path):
    code, _, err = run_cli(capsys, "start", "tests.test_cli:double", "1", "2", "--db", "x.db")
    assert code == 2 and "too many positional arguments" in err


@pytest.mark.parametrize("command", ["up", "down"])
def test_up_and_down_need_a_cluster(capsys, monkeypatch, tmp_path, command):
    import ray

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    was_up = ray.is_initialized()
    code, out, err = run_cli(capsys, command, "--db", str(tmp_path / "d.db"))
    assert code == 2 and out == ""
    assert f"`dolmen {command}` acts on a Ray cluster" in err and "--address" in err
    assert ray.is_initialized() == was_up  # refused before starting a local Ray
    assert not os.path.exists(tmp_path / "d.db")


def test_database_path_from_environment(capsys, monkeypatch, populated):
    path, ids = populated
    monkeypatch.setenv("DOLMEN_DB", path)
    code, out, _ = run_cli(capsys, "result", ids["ok"])
    assert code == 0 and json.loads(out)["bumped"] == 42


def test_parse_value():
    assert values.parse_value("10") == 10
    assert values.parse_value('{"a": [1, null]}') == {"a": [1, None]}
    assert values.parse_value('"10"') == "10"
    assert values.parse_value("hello") == "hello"
    assert values.parse_value("-2.5") == -2.5


# ---- status, result, ls ----------------------------------------------------------------------


def test_status(capsys, populated):
    path, ids = populated
    code, out, _ = run_cli(capsys, "status", ids["ok"], "--db", path)
    assert code == 0
    fields = dict(line.split(None, 1) for line in out.splitlines())
    assert fields["id"] == "ok-1"
    assert fields["workflow"] == "tests.test_cli:pipeline"
    assert fields["status"] == "finished"
    assert int(fields["events"]) >= 9

    code, out, _ = run_cli(capsys, "status", ids["failed"], "--db", path, "--json")
    doc = json.loads(out)
    assert doc["status"] == "failed" and doc["finished_at"] >= doc["created_at"]
    assert doc["error"]["type"] == "ValueError" and doc["error"]["message"] == "boom"


def test_status_of_a_child_names_its_parent(capsys, populated):
    path, _ = populated
    code, out, _ = run_cli(capsys, "status", "ok-1/2", "--db", path, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["parent_id"] == "ok-1" and doc["result"] == 6


def test_result_exit_codes(capsys, populated):
    path, ids = populated
    code, out, _ = run_cli(capsys, "result", ids["ok"], "--db", path)
    assert code == 0
    assert json.loads(out) == {
        "info": {"label": "hello", "size": 2, "pair": [1, 2]},
        "bumped": 42,
        "doubled": 6,
    }
    code, out, err = run_cli(capsys, "result", ids["failed"], "--db", path)
    assert (code, out) == (1, "")
    assert err == "dolmen: execution bad-1 failed: ValueError: boom\n"
    code = cli.main(["result", ids["failed"], "--db", path, "--traceback"])
    assert code == 1 and "in broken\n    raise ValueError(message)" in capsys.readouterr().err
    code, out, err = run_cli(capsys, "result", ids["running"], "--db", path)
    assert (code, out) == (3, "") and "still running" in err
    code, out, err = run_cli(capsys, "result", ids["cancelled"], "--db", path)
    assert (code, out) == (1, "") and "cancelled" in err


def test_ls_table_and_filters(capsys, populated):
    path, _ = populated
    code, out, _ = run_cli(capsys, "ls", "--db", path)
    lines = out.splitlines()
    header = ["ID", "WORKFLOW", "STATUS", "RUN", "CREATED", "SECONDS"]
    assert code == 0 and lines[0].split() == header
    assert {line.split()[0] for line in lines[1:]} == {
        "ok-1",
        "ok-1/2",
        "bad-1",
        "wait-1",
        "gone-1",
    }

    def listed(*options: str) -> list[str]:
        _, text, _ = run_cli(capsys, "ls", "--db", path, "--json", *options)
        return [e["id"] for e in json.loads(text)]

    assert listed("--status", "running") == ["wait-1"]
    assert listed("--status", "finished") == ["ok-1/2", "ok-1"]  # newest first
    assert sorted(listed("--workflow", "waiting")) == ["gone-1", "wait-1"]
    assert listed("--workflow", "tests.test_cli:broken") == ["bad-1"]
    assert len(listed("--limit", "2")) == 2
    assert listed("--status", "blocked") == []


# ---- history -------------------------------------------------------------------------------


def test_history_text(capsys, populated):
    path, ids = populated
    code, out, _ = run_cli(capsys, "history", ids["ok"], "--db", path)
    assert code == 0
    text = out.splitlines()
    assert text[0].startswith("execution ok-1  workflow tests.test_cli:pipeline")
    body = "\n".join(text[3:])
    assert "pipeline('hello')" in body
    assert "describe('hello', b'\\x00\\xff', (1, 2))" in body
    assert "failed: ConnectionError: first attempt fails on purpose  (attempt 1, will retry" in body
    assert "-> 42  (attempt 2)" in body
    assert "double(3)  as ok-1/2" in body
    assert "now() = " in body
    assert text[-1].split()[2] == "finished"


def test_history_json_round_trip(capsys, populated):
    path, ids = populated
    code, out, _ = run_cli(capsys, "history", ids["ok"], "--db", path, "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["format"] == export.FORMAT
    assert doc["execution"]["id"] == "ok-1" and doc["execution"]["result"]["bumped"] == 42
    events = doc["events"]
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert events[0]["kind"] == "CREATED" and events[0]["data"]["args"] == ["hello"]

    scheduled = [e for e in events if e["kind"] == "ACTIVITY_SCHEDULED"]
    assert scheduled[0]["data"] == {
        "name": "tests.test_cli:describe",
        "args": ["hello", {"$bytes": base64.b64encode(b"\x00\xff").decode()}, [1, 2]],
    }
    # The exact payload bytes are kept: the tuple stays a tuple once decoded.
    raw_args = base64.b64decode(scheduled[0]["raw"]["args"])
    assert codec.decode(raw_args) == ["hello", b"\x00\xff", (1, 2)]
    completed = [e for e in events if e["kind"] == "ACTIVITY_COMPLETED"]
    assert [e["data"]["result"] for e in completed] == [
        {"label": "hello", "size": 2, "pair": [1, 2]},
        42,
    ]
    assert [e["data"]["attempt"] for e in completed] == [1, 2]
    failed = next(e for e in events if e["kind"] == "ACTIVITY_FAILED")
    assert failed["data"]["type"] == "ConnectionError" and failed["data"]["final"] is False

    # Lossless: the document gives back exactly the stored events.
    with contextlib.closing(db.open_readonly(path)) as conn:
        stored = db.load_history(conn, db.require_execution(conn, "ok-1").eid)
    assert export.events_from_document(doc) == stored


def test_history_json_keeps_awkward_plain_values():
    events = [
        Event(Kind.SIGNAL_RECEIVED, -1, {"name": "s", "value": {"blob": b"\x01", "n": [1.5]}}, 1.0),
        Event(Kind.SIGNAL_RECEIVED, -1, {"name": "t", "value": {"$bytes": "AQ=="}}, 2.0),
        Event(Kind.SIGNAL_RECEIVED, -1, {"name": "u", "value": {b"key": 1}}, 3.0),
        Event(Kind.FINISHED, -1, {"result": b"\xc1"}, 4.0),  # not valid msgpack
    ]
    docs = json.loads(json.dumps([export.event_to_json(i, e) for i, e in enumerate(events)]))
    assert docs[0]["data"]["value"] == {"blob": {"$bytes": "AQ=="}, "n": [1.5]}
    assert "packed" not in docs[0]
    assert "packed" in docs[1] and "packed" in docs[2]
    assert docs[3]["data"]["result"] == {"$bytes": "wQ=="}
    assert [export.event_from_json(d) for d in docs] == events
    assert export.from_jsonable({"$bytes": "not base64!"}) == {"$bytes": "not base64!"}


def test_result_json_for_rich_values():
    import dataclasses
    import enum
    import uuid

    class Color(enum.Enum):
        RED = "red"

    @dataclasses.dataclass
    class Point:
        x: int
        tags: tuple

    value = {"p": Point(1, ("a",)), "c": Color.RED, "u": uuid.UUID(int=1), "b": b"\x02"}
    assert export.to_json_value(value) == {
        "p": {"x": 1, "tags": ["a"]},
        "c": "red",
        "u": "00000000-0000-0000-0000-000000000001",
        "b": {"$bytes": "Ag=="},
    }


def test_progress_indicator_writes_elapsed_time_and_id(tmp_path):
    log = open(tmp_path / "err.txt", "w+")  # not a TTY: one line per update
    progress = plumbing.Progress("abc", enabled=True, stream=log)
    progress(5.2)
    progress(10.0)
    progress.done()
    plumbing.Progress("abc", enabled=False, stream=log)(3.0)
    log.seek(0)
    assert log.read().splitlines() == [
        "dolmen: waiting 5 s for execution abc",
        "dolmen: waiting 10 s for execution abc",
    ]


def test_help_mentions_the_embedded_runtime(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["start", "--help"])
    assert exit_info.value.code == 0
    assert "dolmen serve" in " ".join(capsys.readouterr().out.split())


# ---- through the runtime (Ray) --------------------------------------------------------------


@pytest.mark.ray
def test_signal_and_cancel_through_the_runtime(capsys, client, db_path):
    first = client.start(waiting, "go")
    code, _, err = run_cli(capsys, "signal", first.id, "go", '{"n": 5}', "--db", db_path)
    assert code == 0 and "signal 'go' sent" in err
    assert first.result(timeout=30) == ["go", {"n": 5}]

    second = client.start(waiting, "never")
    code, _, _ = run_cli(capsys, "cancel", second.id, "--db", db_path)
    assert code == 0
    with pytest.raises(dolmen.CancelledError):
        second.result(timeout=30)
    code, _, err = run_cli(capsys, "result", second.id, "--db", db_path)
    assert code == 1 and "cancelled" in err
    # The CLI joined the host the client runs; it must still be up for the client.
    assert client.host_info()["db_path"] == os.path.abspath(db_path)

    code, _, err = run_cli(capsys, "signal", first.id, "go", "--db", db_path)
    assert code == 2 and err.startswith("dolmen: error: execution ") and "not running" in err
    assert err.count("\n") == 1  # no remote traceback


@pytest.mark.ray
def test_result_wait_and_run_timeout(capsys, client, db_path):
    handle = client.start(waiting, "later")
    code, out, err = run_cli(
        capsys, "result", handle.id, "--wait", "--timeout", "0.3", "--db", db_path
    )
    assert (code, out) == (3, "") and "still running after 0.3 s" in err
    handle.signal("later", 7)
    code, out, _ = run_cli(capsys, "result", handle.id, "--wait", "--db", db_path)
    assert code == 0 and json.loads(out) == ["later", 7]

    code, out, err = run_cli(
        capsys, "run", "tests.test_cli:waiting", "soon", "--timeout", "0.3", "--db", db_path
    )
    assert code == 3 and "still running" in err


@pytest.mark.slow
def test_run_end_to_end_in_a_subprocess(tmp_path):
    path = str(tmp_path / "dolmen.db")
    command = [sys.executable, "-m", "dolmen.cli", "run", "examples.fibo:fiboa", "10", "3"]
    done = subprocess.run(
        [*command, "--db", path, "--id", "fibo-1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        env={k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "55\n"
    status = subprocess.run(
        [sys.executable, "-m", "dolmen.cli", "status", "fibo-1", "--db", path, "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    doc = json.loads(status.stdout)
    assert doc["status"] == "finished" and doc["result"] == 55
    assert doc["events"] == 1 + 2 * 3 + 1


def test_other_threads_cannot_write_into_the_commands_output():
    import io
    import threading

    out, err = io.StringIO(), io.StringIO()
    stdout = entry.MainThreadStdout(out, err)
    stdout.write('{"result": 1}\n')
    noise = threading.Thread(
        target=print, args=("(raylet) node marked dead",), kwargs={"file": stdout}
    )
    noise.start()
    noise.join()
    assert out.getvalue() == '{"result": 1}\n'
    assert err.getvalue() == "(raylet) node marked dead\n"
