"""Executables as activities: ``dolmen.exec_activity(["convert", "-resize"])``.

An attempt runs the command (plus the arguments of the call) as a child process and
records its exit code, stdout and stderr. It is supervised from the host's event loop
(executor kind ``"subprocess"``): no thread waits on it, and a timeout or the workflow's
cancellation cancels the supervising coroutine, which kills the child's whole process
group (the child runs in a new session) so the child's own children die with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shlex
import signal
import tempfile
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import IO, Any

from dolmen.runtime.context import ActivityInfo
from dolmen.runtime.definitions import Activity

# Bytes of stdout and of stderr kept per attempt: results go into the history, and an
# unbounded log there would bloat the database. The end is kept; errors are usually there.
DEFAULT_MAX_OUTPUT = 1 << 20


@dataclasses.dataclass
class ExecResult:
    """What an exec attempt produced. ``stdout``/``stderr`` are str unless ``text=False``."""

    args: list[str]
    returncode: int
    stdout: str | bytes
    stderr: str | bytes


class ExecError(Exception):
    """The command exited with a code that is not accepted (retries apply)."""


class ExecutableNotFoundError(ExecError, FileNotFoundError):
    """The executable does not exist (or is not executable) on the host's node."""


class ExecActivity(Activity):
    """An activity whose attempt is one run of an executable. See ``exec_activity``."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        name: str | None,
        retries: int,
        timeout: float | None,
        backoff: float,
        max_backoff: float,
        ok_codes: Collection[int] | None,
        cwd: str | None,
        env: Mapping[str, str] | None,
        text: bool,
        max_output: int,
    ) -> None:
        if not command or not all(isinstance(part, str) for part in command):
            raise TypeError(f"command must be a non-empty list of strings, not {command!r}")
        if max_output < 0:
            raise ValueError(f"max_output must be >= 0 bytes, not {max_output}")
        self.command = list(command)
        self.ok_codes = None if ok_codes is None else frozenset(ok_codes)
        self.cwd = cwd
        self.env = dict(env or {})
        self.text = text
        self.max_output = max_output

        async def run(
            args: list[str] | None = None,
            stdin: str | bytes | None = None,
            env: dict[str, str] | None = None,
        ) -> ExecResult:
            # A plain call outside a workflow runs the command right here.
            async with asyncio.timeout(self.timeout):
                return await self.attempt(None, args, stdin, env)

        default_name = f"exec:{shlex.join(self.command)}"
        # "thread" only passes the base class's check; the executor kind is set below.
        super().__init__(
            run, name or default_name, retries, timeout, backoff, max_backoff, "thread", None
        )
        self.executor = "subprocess"  # type: ignore[assignment]

    async def attempt(
        self,
        info: ActivityInfo | None,
        args: list[str] | None = None,
        stdin: str | bytes | None = None,
        env: dict[str, str] | None = None,
    ) -> ExecResult:
        """One run of the command; cancelling it kills the child's process group."""
        argv = self.command + [str(a) for a in (args or [])]
        # Files, not pipes: the exit is seen when the command exits, even if a child it
        # left behind still holds its output open, and memory stays bounded.
        with (
            _input_file(stdin) as fin,
            tempfile.TemporaryFile() as out,
            tempfile.TemporaryFile() as err,
        ):
            proc = await self._spawn(argv, fin, out, err, self._environment(info, env))
            try:
                code = await proc.wait()
            finally:
                # On timeout or cancellation this ends every process of the attempt; after
                # an exit it ends children left behind, which would outlive every timeout.
                _kill_group(proc.pid)
            stdout, stderr = self._tail(out), self._tail(err)
        if self.ok_codes is not None and code not in self.ok_codes:
            raise ExecError(_failure_message(argv, code, stderr))
        return ExecResult(argv, code, stdout, stderr)

    async def _spawn(
        self, argv: list[str], fin: Any, out: IO[bytes], err: IO[bytes], env: dict[str, str]
    ) -> asyncio.subprocess.Process:
        try:
            return await asyncio.create_subprocess_exec(
                *argv,
                stdin=fin,
                stdout=out,
                stderr=err,
                cwd=self.cwd,
                env=env,
                start_new_session=True,  # its own process group, killed as a whole
            )
        except FileNotFoundError as exc:
            # The missing file may be the executable or the working directory: say which.
            if self.cwd is not None and not os.path.isdir(self.cwd):
                raise ExecError(f"working directory {self.cwd!r} does not exist") from None
            where = "" if os.sep in argv[0] else " on PATH"
            raise ExecutableNotFoundError(
                f"executable {argv[0]!r} not found{where} on this node ({exc.strerror})"
            ) from None
        except PermissionError as exc:
            raise ExecutableNotFoundError(
                f"executable {argv[0]!r} cannot be run: {exc.strerror}"
            ) from None

    def _environment(self, info: ActivityInfo | None, extra: dict[str, str] | None) -> dict:
        env = {**os.environ, **self.env, **(extra or {})}
        if info is not None:
            # The same key on every attempt, so the executable can make itself idempotent.
            env["DOLMEN_EXECUTION_ID"] = info.execution_id
            env["DOLMEN_IDEMPOTENCY_KEY"] = info.idempotency_key
            env["DOLMEN_ATTEMPT"] = str(info.attempt)
        return env

    def _tail(self, file: IO[bytes]) -> str | bytes:
        """The last ``max_output`` bytes written to ``file``."""
        size = file.seek(0, os.SEEK_END)
        file.seek(max(0, size - self.max_output))
        data = file.read() if self.max_output else b""
        return data.decode(errors="replace") if self.text else data

    def __repr__(self) -> str:
        return f"<dolmen exec activity {self.name}>"


@contextlib.contextmanager
def _input_file(data: str | bytes | None) -> Iterator[Any]:
    if data is None:
        yield asyncio.subprocess.DEVNULL
        return
    with tempfile.TemporaryFile() as file:
        file.write(data.encode() if isinstance(data, str) else data)
        file.seek(0)
        yield file


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
        os.killpg(pgid, signal.SIGKILL)


def _failure_message(argv: list[str], code: int, stderr: str | bytes) -> str:
    how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
    tail = text[-500:].strip()
    return f"command {shlex.join(argv)!r} {how}" + (f"; stderr: {tail}" if tail else "")


def exec_activity(
    command: str | Sequence[str],
    *,
    name: str | None = None,
    retries: int = 3,
    timeout: float | None = None,
    backoff: float = 0.5,
    max_backoff: float = 30.0,
    ok_codes: Collection[int] | None = (0,),
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    text: bool = True,
    max_output: int = DEFAULT_MAX_OUTPUT,
) -> ExecActivity:
    """An activity that runs ``command`` plus the call's arguments as a child process.

    No shell is involved: a str ``command`` is one executable, looked up on PATH.
    Call it in a workflow as ``await act(args=[...], stdin=..., env={...})``; it returns an
    ``ExecResult``. An exit code outside ``ok_codes`` raises ``ExecError`` (so retries
    apply); ``ok_codes=None`` accepts every code. ``timeout`` bounds each attempt and, when
    it passes, the child's whole process group is killed; when the command exits, children
    it left behind are killed too (an attempt's processes end with it). Only the last
    ``max_output`` bytes of stdout and of stderr are kept. The child inherits the host's
    environment plus ``env`` plus ``DOLMEN_EXECUTION_ID``, ``DOLMEN_IDEMPOTENCY_KEY`` and
    ``DOLMEN_ATTEMPT``. The default name is ``exec:<command>``.
    """
    parts: Any = [command] if isinstance(command, str) else command
    return ExecActivity(
        parts,
        name=name,
        retries=retries,
        timeout=timeout,
        backoff=backoff,
        max_backoff=max_backoff,
        ok_codes=ok_codes,
        cwd=cwd,
        env=env,
        text=text,
        max_output=max_output,
    )
