"""Executables as activities, on real Ray: output, exit codes, timeouts that kill the
whole process group, cancellation, a missing executable, and a host that survives it all."""

from __future__ import annotations

import time

import pytest

import dolmen
from dolmen.runtime.exec_activity import ExecActivity, ExecutableNotFoundError

pytestmark = pytest.mark.ray

# Prints its arguments, the idempotency key it was given and its stdin; writes to stderr.
echo = dolmen.exec_activity(
    ["sh", "-c", 'printf "%s|" "$@" "$DOLMEN_IDEMPOTENCY_KEY"; cat; echo note >&2', "sh"],
    name="echo",
    timeout=30.0,
)
fail = dolmen.exec_activity(
    ["sh", "-c", "echo 'disk full' >&2; exit 3"], name="fail", retries=2, backoff=0.01
)
tolerant = dolmen.exec_activity(["sh", "-c", "exit 3"], name="tolerant", ok_codes=None)
missing = dolmen.exec_activity("dolmen-no-such-tool", name="missing", retries=0)
# Starts a grandchild, records its pid (appending: one line per attempt) and waits for it.
spawner = dolmen.exec_activity(
    ["sh", "-c", 'sleep 60 & echo $! >> "$0"; wait'],
    name="spawner",
    retries=1,
    backoff=0.01,
    timeout=0.5,
)
blocker = dolmen.exec_activity(
    ["sh", "-c", 'sleep 60 & echo $! >> "$0"; wait'], name="blocker", timeout=60.0
)


@dolmen.workflow
async def run_echo(args: list[str], stdin: str) -> dolmen.ExecResult:
    result = await echo(args, stdin)
    assert isinstance(result, dolmen.ExecResult)  # rebuilt from the return type hint
    return result


@dolmen.workflow
async def run_failing() -> list:
    try:
        await fail()
    except dolmen.ActivityError as exc:
        return [exc.type_name, exc.message, exc.attempts]
    return []


@dolmen.workflow
async def run_tolerant() -> int:
    return (await tolerant()).returncode


@dolmen.workflow
async def run_missing() -> list:
    try:
        await missing(["--version"])
    except dolmen.ActivityError as exc:
        return [exc.type_name, exc.message]
    return []


@dolmen.workflow
async def run_spawner(pidfile: str) -> str:
    try:
        await spawner([pidfile])
    except dolmen.ActivityTimeoutError as exc:
        return f"timeout after {exc.attempts}"
    return "no timeout"


@dolmen.workflow
async def run_blocker(pidfile: str) -> None:
    await blocker([pidfile])


def alive(pid: int) -> bool:
    """Running, that is: a killed process may stay a zombie when PID 1 does not reap."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def gone_soon(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def pids_in(path) -> list[int]:
    return [int(line) for line in path.read_text().split()]


def test_output_exit_code_arguments_stdin_and_idempotency_key(client):
    host_pid = client.host_info()["pid"]
    handle = client.start(run_echo, ["a", "b c"], "from stdin")
    result = handle.result(timeout=60)
    assert result.returncode == 0
    assert result.stdout == f"a|b c|{handle.id}:0|from stdin"
    assert result.stderr == "note\n"
    assert result.args[-2:] == ["a", "b c"]
    assert client.run(run_tolerant) == 3  # ok_codes=None accepts any exit code
    assert client.host_info()["pid"] == host_pid


def test_non_zero_exit_fails_clearly_after_retries(client):
    host_pid = client.host_info()["pid"]
    type_name, message, attempts = client.run(run_failing)
    assert (type_name, attempts) == ("ExecError", 3)
    assert "exited with code 3" in message and "disk full" in message
    assert client.host_info()["pid"] == host_pid


def test_missing_executable_is_named(client):
    host_pid = client.host_info()["pid"]
    type_name, message = client.run(run_missing)
    assert type_name == "ExecutableNotFoundError"
    assert "'dolmen-no-such-tool' not found on PATH" in message
    assert client.host_info()["pid"] == host_pid


def test_timeout_kills_the_process_group_including_grandchildren(client, tmp_path):
    host_pid = client.host_info()["pid"]
    pidfile = tmp_path / "pids"
    assert client.run(run_spawner, str(pidfile)) == "timeout after 2"
    grandchildren = pids_in(pidfile)
    assert len(grandchildren) == 2  # one per attempt
    assert all(gone_soon(pid) for pid in grandchildren)
    assert client.host_info()["pid"] == host_pid


def test_cancelling_the_workflow_kills_the_running_executable(client, tmp_path):
    pidfile = tmp_path / "pids"
    handle = client.start(run_blocker, str(pidfile))
    deadline = time.monotonic() + 30
    while not (pidfile.exists() and pidfile.read_text().strip()):
        assert time.monotonic() < deadline, "the executable never started"
        time.sleep(0.01)
    (grandchild,) = pids_in(pidfile)
    assert alive(grandchild)
    handle.cancel()
    with pytest.raises(dolmen.CancelledError):
        handle.result(timeout=30)
    assert gone_soon(grandchild)


def test_plain_call_outside_a_workflow_and_definition_errors():
    result = echo(["x"], "y")
    assert (result.returncode, result.stdout) == (0, "x||y")  # no key outside a workflow
    with pytest.raises(ExecutableNotFoundError, match="dolmen-no-such-tool"):
        missing()
    with pytest.raises(TypeError, match="non-empty list of strings"):
        ExecActivity(
            [],
            name=None,
            retries=0,
            timeout=None,
            backoff=0.1,
            max_backoff=1.0,
            ok_codes=(0,),
            cwd=None,
            env=None,
            text=True,
            max_output=10,
        )
    assert dolmen.exec_activity(["ls", "-l"]).name == "exec:ls -l"
    tail = dolmen.exec_activity(["sh", "-c", "printf 0123456789"], max_output=4, text=False)()
    assert tail.stdout == b"6789"  # the end is kept


def test_leftover_children_are_ended_when_the_command_exits(tmp_path):
    pidfile = tmp_path / "pid"
    leaves = dolmen.exec_activity(["sh", "-c", f"sleep 60 & echo $! > {pidfile}; echo done"])
    started = time.monotonic()
    assert leaves().stdout == "done\n"
    assert time.monotonic() - started < 10  # not held up by the child's open output
    assert gone_soon(pids_in(pidfile)[0])
