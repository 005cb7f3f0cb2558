"""Generated workflow programs: data interpreted by one generic workflow.

A program is a list of instructions (lists of ints, strings and nested programs, so the
codec stores it as the workflow's argument). ``interpret`` runs one; every value it sees is
appended to ``values``, tagged, and the result also carries ``marks``: the command position
at which each top-level instruction started. Positions are counted by the interpreter itself
(it is the only code issuing commands), so tests know which command came from where.

Instructions::

    ["act", x]                  await step(x)           -> [x, position]
    ["flaky", x, failures]      await flaky(x, f)       -> [x, attempt]   (fails f times, retried)
    ["fail", msg, caught]       await boom(msg)         -> caught: ["caught", type, message]
    ["child", program, caught]  await interpret(p)      -> the child's values, or ["child-failed"]
    ["js", items, take]         join set of items, take results in completion order
    ["js-eager", items, take]   the same, asking for all `take` results before awaiting
    ["gather", items]           dolmen.gather of items, results in argument order
    ["sleep", seconds]          await dolmen.sleep(seconds)
    ["signal", name]            await dolmen.wait_signal(name)
    ["random"] / ["now"] / ["uuid"]   recorded values
    ["if", ref, then, else]     branch on an earlier value
    ["patch", id, then, else]   then if dolmen.patched(id) (always, in a fresh run), else else
    ["loop", n, body]           body n times
    ["first", items, secs, sig] dolmen.first(items..., sleep(secs)?, wait_signal(sig)?)
                                -> ["first", base, count, index, value] (or a caught error)
    ["wait-timeout", name, s]   wait_signal(name, timeout=s) -> the value, or "timeout"
    ["event", key, x] / ["stream", key, x] / ["close", key]   messages out
    ["shield", body]            body inside ``async with dolmen.shield()``

``first``'s ``secs`` and ``sig`` may be None (no sleep, no signal wait among the racers).

Items of a join set or gather are ``x`` (step(x)) or ``["fail", msg]`` (boom(msg)).
"""

from __future__ import annotations

import collections
import random
import zlib
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

import dolmen
from dolmen.runtime.events import TERMINAL, Event, Kind
from dolmen.runtime.replay import WorkflowInstance
from dolmen.testing.simulation import START_TIME, Simulation
from property_tests.profiles import PROFILE

CALLS: collections.Counter[str] = collections.Counter()
SIGNAL_NAMES = ("a", "b")


# ---- activities and the interpreter --------------------------------------------------------


@dolmen.activity(name="pt.step", retries=0)
def step(x: int) -> list:
    CALLS["step"] += 1
    return [x, dolmen.activity_info().position]


@dolmen.activity(name="pt.flaky", retries=3, backoff=0.001, max_backoff=0.001)
def flaky(x: int, failures: int) -> list:
    CALLS["flaky"] += 1
    attempt = dolmen.activity_info().attempt
    if attempt <= failures:
        raise ConnectionError(f"attempt {attempt} fails on purpose")
    return [x, attempt]


@dolmen.activity(name="pt.boom", retries=0)
def boom(message: str) -> None:
    CALLS["boom"] += 1
    raise ValueError(f"{message}@{dolmen.activity_info().position}")


def stable_hash(value: Any) -> int:
    return zlib.crc32(repr(value).encode())


class _Run:
    """One interpretation: the values seen and the next command position."""

    def __init__(self) -> None:
        self.values: list[Any] = []
        self.position = 0

    def issued(self, count: int = 1) -> int:
        first = self.position
        self.position += count
        return first

    def operation(self, item: Any) -> Any:
        self.issued()
        if isinstance(item, list):
            return boom(item[1])
        return step(item)

    async def block(self, program: list, marks: list[int] | None = None) -> None:
        for instruction in program:
            if marks is not None:
                marks.append(self.position)
            await self.one(instruction)

    async def one(self, ins: list) -> None:  # noqa: C901 - one branch per instruction
        op, values = ins[0], self.values
        if op == "act":
            self.issued()
            values.append(["act", await step(ins[1])])
        elif op == "flaky":
            self.issued()
            values.append(["flaky", await flaky(ins[1], ins[2])])
        elif op == "fail":
            self.issued()
            if not ins[2]:
                await boom(ins[1])
            try:
                await boom(ins[1])
            except dolmen.ActivityError as exc:
                values.append(["caught", exc.type_name, exc.message])
        elif op == "child":
            self.issued()
            try:
                values.append(["child", await interpret(ins[1])])
            except dolmen.ChildWorkflowError as exc:
                if not ins[2]:
                    raise
                values.append(["child-failed", exc.type_name])
        elif op == "js":
            items, take = ins[1], ins[2]
            js = dolmen.join_set()
            base = self.position
            for item in items:
                self.issued()
                if isinstance(item, list):
                    js.submit(boom, item[1])
                else:
                    js.submit(step, item)
            taken = []
            for _ in range(min(take, len(items))):
                try:
                    taken.append(await js.next())
                except dolmen.ActivityError as exc:
                    taken.append(["err", exc.message])
            values.append(["js", base, len(items), taken])
        elif op == "js-eager":
            # Ask for `take` results before awaiting any, then wait for them together.
            items, take = ins[1], ins[2]
            js = dolmen.join_set()
            base = self.position
            for item in items:
                self.issued()
                if isinstance(item, list):
                    js.submit(boom, item[1])
                else:
                    js.submit(step, item)
            nexts = [js.next() for _ in range(min(take, len(items)))]
            try:
                values.append(["js-eager", base, len(items), await dolmen.gather(*nexts)])
            except dolmen.ActivityError as exc:
                values.append(["js-eager-err", base, exc.message])
        elif op == "gather":
            base = self.position
            operations = [self.operation(item) for item in ins[1]]
            try:
                values.append(["gather", base, await dolmen.gather(*operations)])
            except dolmen.ActivityError as exc:
                values.append(["gather-err", base, exc.message])
        elif op == "sleep":
            self.issued()
            await dolmen.sleep(ins[1])
            values.append(["slept"])
        elif op == "signal":
            self.issued()
            values.append(["sig", ins[1], await dolmen.wait_signal(ins[1])])
        elif op == "random":
            self.issued()
            values.append(["random", dolmen.random()])
        elif op == "now":
            self.issued()
            values.append(["now", dolmen.now()])
        elif op == "uuid":
            self.issued()
            values.append(["uuid", str(dolmen.uuid4())])
        elif op == "first":
            await self.first(ins)
        elif op == "wait-timeout":
            self.issued()
            try:
                values.append(["wt", ins[1], await dolmen.wait_signal(ins[1], timeout=ins[2])])
            except dolmen.WaitTimeoutError:
                values.append(["wt", ins[1], "timeout"])
        elif op in ("event", "stream", "close"):
            self.issued()
            if op == "event":
                dolmen.set_event(ins[1], ins[2])
            elif op == "stream":
                dolmen.write_stream(ins[1], ins[2])
            else:
                dolmen.close_stream(ins[1])
            values.append([op, ins[1]])
        elif op == "shield":
            async with dolmen.shield():
                await self.block(ins[1])
        elif op == "if":
            ref = values[ins[1] % len(values)] if values else None
            await self.block(ins[2] if stable_hash(ref) % 2 == 0 else ins[3])
        elif op == "loop":
            for _ in range(ins[1]):
                await self.block(ins[2])
        elif op == "patch":
            # A marker has no command position, and the answer is not appended to the
            # values (the `if` refs stay put): the branch taken shows in the history.
            await self.block(ins[2] if dolmen.patched(ins[1]) else ins[3])
        else:
            raise ValueError(f"unknown instruction {ins!r}")

    async def first(self, ins: list) -> None:
        items, seconds, signal = ins[1], ins[2], ins[3]
        base = self.position
        racers = [self.operation(item) for item in items]
        if seconds is not None:
            self.issued()
            racers.append(dolmen.sleep(seconds))
        if signal is not None:
            self.issued()
            racers.append(dolmen.wait_signal(signal))
        try:
            index, value = await dolmen.first(*racers)
        except dolmen.ActivityError as exc:
            self.values.append(["first-err", base, len(racers), exc.message])
            return
        won_signal = signal if signal is not None and index == len(racers) - 1 else None
        self.values.append(["first", base, len(racers), index, value, won_signal])


async def _interpret(program: list) -> dict:
    run = _Run()
    marks: list[int] = []
    await run.block(program, marks)
    return {"values": run.values, "marks": marks}


@dolmen.workflow(name="pt.interpret")
async def interpret(program: list) -> dict:
    return await _interpret(program)


@dolmen.workflow(name="pt.interpret_interrupt", wait="interrupt")
async def interpret_interrupt(program: list) -> dict:
    return await _interpret(program)


# ---- strategies -----------------------------------------------------------------------------

small_ints = st.integers(min_value=-3, max_value=40)
messages = st.sampled_from(["x", "y", "no"])


def _item() -> st.SearchStrategy[Any]:
    return st.one_of(small_ints, small_ints, st.tuples(st.just("fail"), messages).map(list))


def race_instructions(signals: bool, seconds: st.SearchStrategy[float]) -> list:
    """``first``, signal timeouts, messages (the instructions of issue 13)."""
    keys = st.sampled_from(["k1", "k2"])
    signal = st.sampled_from([*SIGNAL_NAMES, None]) if signals else st.none()
    options = [
        st.tuples(
            st.just("first"),
            st.lists(_item(), min_size=0, max_size=3),
            st.one_of(st.none(), seconds),
            signal,
        ).filter(lambda t: t[1] or t[2] is not None or t[3] is not None),
        st.tuples(st.just("event"), keys, small_ints),
        st.tuples(st.just("stream"), keys, small_ints),
        st.tuples(st.just("close"), keys),
    ]
    if signals:
        options.append(st.tuples(st.just("wait-timeout"), st.sampled_from(SIGNAL_NAMES), seconds))
    return [st.one_of(*options).map(list)]


def simple_instructions(
    signals: bool = True, uncaught: bool = False, long_sleeps: bool = True, races: bool = False
) -> st.SearchStrategy[list]:
    seconds = (
        st.sampled_from([0.0, 0.001, 1.0, 60.0, 7200.0])
        if long_sleeps
        else st.sampled_from([0.0, 0.001])
    )
    options = [
        st.tuples(st.just("act"), small_ints),
        st.tuples(st.just("act"), small_ints),
        st.tuples(st.just("flaky"), small_ints, st.integers(0, 3)),
        st.tuples(st.just("fail"), messages, st.just(True) if not uncaught else st.booleans()),
        st.tuples(st.just("js"), st.lists(_item(), min_size=1, max_size=4), st.integers(0, 4)),
        st.tuples(st.just("gather"), st.lists(_item(), min_size=1, max_size=3)),
        st.tuples(
            st.just("js-eager"), st.lists(_item(), min_size=1, max_size=4), st.integers(1, 4)
        ),
        st.tuples(st.just("sleep"), seconds),
        st.tuples(st.sampled_from(["random", "now", "uuid"])),
    ]
    if signals:
        options.append(st.tuples(st.just("signal"), st.sampled_from(SIGNAL_NAMES)))
    if races:
        options += race_instructions(signals, seconds)
    return st.one_of(*options).map(list)


# Thorough runs also try longer programs.
TOP_SIZE = 10 if PROFILE == "thorough" else 6


def programs(
    depth: int = 2,
    max_size: int = TOP_SIZE,
    *,
    signals: bool = True,
    children: bool = True,
    uncaught: bool = False,
    long_sleeps: bool = True,
    races: bool = False,
) -> st.SearchStrategy[list]:
    """Random programs; children never wait for signals (signals go to the top level).
    ``races`` adds ``first``, signal timeouts, messages and shields."""
    simple = simple_instructions(signals, uncaught, long_sleeps, races)
    if depth <= 0:
        return st.lists(simple, max_size=max_size)
    inner = programs(
        depth - 1,
        max(2, max_size // 2),
        signals=signals,
        children=children,
        uncaught=uncaught,
        long_sleeps=long_sleeps,
        races=races,
    )
    nested = [
        st.tuples(st.just("if"), st.integers(0, 20), inner, inner).map(list),
        st.tuples(st.just("loop"), st.integers(0, 3), inner).map(list),
        st.tuples(st.just("patch"), st.sampled_from(["p1", "p2"]), inner, inner).map(list),
    ]
    if races:
        nested.append(st.tuples(st.just("shield"), inner).map(list))
    if children:
        child = programs(
            depth - 1,
            max(2, max_size // 2),
            signals=False,
            children=children,
            uncaught=True,
            long_sleeps=long_sleeps,
            races=races,
        )
        caught = st.booleans() if uncaught else st.just(True)
        nested.append(st.tuples(st.just("child"), child, caught).map(list))
    return st.lists(st.one_of(simple, simple, *nested), max_size=max_size)


def signal_budget(program: list) -> collections.Counter[str]:
    """At most how many signals of each name the program can wait for."""
    total: collections.Counter[str] = collections.Counter()
    for ins in program:
        if ins[0] in ("signal", "wait-timeout"):
            total[ins[1]] += 1
        elif ins[0] == "first" and ins[3] is not None:
            total[ins[3]] += 1
        elif ins[0] == "shield":
            total.update(signal_budget(ins[1]))
        elif ins[0] in ("if", "patch"):
            then, other = signal_budget(ins[2]), signal_budget(ins[3])
            total.update(then | other)
        elif ins[0] == "loop":
            for name, count in signal_budget(ins[2]).items():
                total[name] += count * ins[1]
    return total


def signals_for(program: list) -> dict[str, list[str]]:
    return {name: [f"{name}{i}" for i in range(n)] for name, n in signal_budget(program).items()}


# ---- in-memory runs with reproducible recorded values -------------------------------------


class PositionalRandom(random.Random):
    """Values depend on where they are recorded (their command position), not on call
    order, so a run resumed after a crash records the same values as an uninterrupted one."""

    def __init__(self, where: Callable[[], int], salt: str) -> None:
        super().__init__(0)
        self._where = where
        self._salt = salt

    def random(self) -> float:
        return zlib.crc32(f"{self._salt}:{self._where()}".encode()) / 2**32

    def getrandbits(self, k: int) -> int:
        bits, i = 0, 0
        while i * 32 < k:
            bits = (bits << 32) | zlib.crc32(f"{self._salt}:{self._where()}:{i}".encode())
            i += 1
        return bits >> (i * 32 - k)


def positional_instance(
    workflow: dolmen.Workflow, execution_id: str, history: list[Event]
) -> WorkflowInstance:
    holder: list[WorkflowInstance] = []

    def where() -> int:  # the position the recorded value will take
        return sum(1 for e in holder[0].history if e.is_command)

    instance = WorkflowInstance(
        workflow,
        execution_id,
        history,
        clock=lambda: START_TIME + 1000.0 * where(),
        rng=PositionalRandom(where, execution_id),
    )
    holder.append(instance)
    return instance


class PositionalSimulation(Simulation):
    """A ``Simulation`` whose recorded values (now, random, uuid) depend only on position."""

    def new_instance(self, history, clock, rng=None):  # noqa: ANN001 - as in Simulation
        return positional_instance(self.workflow, self.execution_id, history)


def run_program(
    program: list,
    rng: random.Random,
    *,
    workflow: dolmen.Workflow = interpret,
    crash_rate: float = 0.0,
    batch_rate: float = 0.3,
) -> PositionalSimulation:
    sim = PositionalSimulation(
        workflow,
        (program,),
        rng=rng,
        signals=signals_for(program),
        crash_rate=crash_rate,
        batch_rate=batch_rate,
    )
    return sim.run()


def resolution_groups(sim: Simulation) -> list[list[Event]]:
    """The resolutions of each activation of an uninterrupted run, in order."""
    history = sim.history
    return [history[s.start : s.resolved] for s in sim.steps if s.resolved > s.start]


def drive(
    workflow: dolmen.Workflow,
    history: list[Event],
    groups: list[list[Event]],
    execution_id: str = "sim",
) -> WorkflowInstance:
    """Replay ``history``, then feed ``groups`` of resolutions one activation each."""
    instance = positional_instance(workflow, execution_id, history)
    instance.activate()
    for group in groups:
        if instance.finished:
            break
        instance.activate(group)
    return instance


def created(workflow: dolmen.Workflow, program: list) -> Event:
    return Event(
        Kind.CREATED,
        -1,
        {"workflow": workflow.name, "args": workflow.encode_args((program,), {})},
        START_TIME,
    )


# ---- comparing histories --------------------------------------------------------------------

TIMING_FIELDS = ("attempt", "fire_at")


def normalized(history: list[Event]) -> list[tuple]:
    """Events without timing and attempt fields (and without error tracebacks)."""
    out = []
    for e in history:
        data = {k: v for k, v in e.data.items() if k not in TIMING_FIELDS and k != "traceback"}
        out.append((e.kind, e.position, repr(sorted(data.items()))))
    return out


def commands_of(history: list[Event]) -> list[tuple]:
    return [n for e, n in zip(history, normalized(history), strict=True) if e.is_command]


def check_well_formed(history: list[Event]) -> None:
    """Structural invariants of any stored history."""
    assert history and history[0].kind == Kind.CREATED, history[:1]
    assert all(e.kind != Kind.CREATED for e in history[1:])
    issued: dict[int, Kind] = {}
    final: set[int] = set()
    cancelled: set[int] = set()
    next_position = 0
    for index, e in enumerate(history[1:], start=1):
        if e.kind in TERMINAL:
            assert index == len(history) - 1, f"terminal event at {index} is not last"
        elif e.kind == Kind.MARKER:
            assert e.position == -1 and isinstance(e.data.get("patch"), str), e
        elif e.kind == Kind.OPERATION_CANCELLED:  # names the operation it cancels
            assert e.position in issued and e.position not in cancelled, e
            cancelled.add(e.position)
        elif e.is_command:
            assert e.position == next_position, f"command {index} has position {e.position}"
            issued[e.position] = e.kind
            next_position += 1
        elif e.kind in (Kind.SIGNAL_RECEIVED, Kind.CANCEL_REQUESTED):
            assert e.position == -1
        else:
            assert e.position in issued, f"resolution {index} for unissued position {e.position}"
            expected = {
                Kind.ACTIVITY_COMPLETED: {Kind.ACTIVITY_SCHEDULED},
                Kind.ACTIVITY_FAILED: {Kind.ACTIVITY_SCHEDULED},
                Kind.TIMER_FIRED: {Kind.TIMER_STARTED, Kind.SIGNAL_WAITED},  # or a deadline
                Kind.CHILD_FINISHED: {Kind.CHILD_STARTED},
            }[e.kind]
            assert issued[e.position] in expected, f"resolution {index} does not match"
            assert e.position not in cancelled, f"resolution {index} after its cancel"
            is_final = e.kind != Kind.ACTIVITY_FAILED or e.data.get("final", True)
            if is_final:
                assert e.position not in final, f"position {e.position} resolved twice"
                final.add(e.position)
            else:
                assert e.position not in final, f"retry after final at {index}"


def check_result_against_history(result: dict, history: list[Event]) -> None:
    """The result agrees with the recorded arrival orders (join sets, gathers, signals)."""
    done_order = [
        e.position
        for e in history
        if e.kind == Kind.ACTIVITY_COMPLETED
        or (e.kind == Kind.ACTIVITY_FAILED and e.data.get("final", True))
    ]
    received: dict[str, list[Any]] = collections.defaultdict(list)
    for e in history:
        if e.kind == Kind.SIGNAL_RECEIVED:
            received[e.data["name"]].append(e.data.get("value"))
    seen: dict[str, int] = collections.Counter()
    for entry in result["values"]:
        tag = entry[0]
        if tag == "js-eager":
            # Taken in completion order too (with all of them ok; errors show as one).
            _, base, count, taken = entry
            members = [p for p in done_order if base <= p < base + count]
            assert [_position_of(v) for v in taken] == members[: len(taken)], (entry, members)
        elif tag == "js":
            _, base, count, taken = entry
            members = [p for p in done_order if base <= p < base + count]
            assert [_position_of(v) for v in taken] == members[: len(taken)], (entry, members)
        elif tag == "gather":
            _, base, got = entry
            assert [_position_of(v) for v in got] == list(range(base, base + len(got)))
        elif tag == "sig":
            _, name, value = entry
            assert value == received[name][seen[name]], (entry, received[name])
            seen[name] += 1
        elif tag == "act":
            assert isinstance(entry[1], list) and len(entry[1]) == 2
        elif tag == "first":
            # The winner resolved first in recorded order among the racers that resolve by
            # position (activities, the timer); the others were cancelled or lost.
            _, base, count, index, value, won_signal = entry
            if won_signal is not None:  # it took the next signal of that name
                assert value == received[won_signal][seen[won_signal]], (entry, received)
                seen[won_signal] += 1
            order = [
                p
                for e in history
                if e.kind in (Kind.ACTIVITY_COMPLETED, Kind.ACTIVITY_FAILED, Kind.TIMER_FIRED)
                and e.data.get("final", True)
                for p in [e.position]
                if base <= p < base + count
            ]
            if order and base + index in order:
                assert order[0] == base + index, (entry, order)
            cancels = {e.position for e in history if e.kind == Kind.OPERATION_CANCELLED}
            assert base + index not in cancels, entry
        elif tag == "wt":
            _, name, value = entry
            if value != "timeout":
                assert value == received[name][seen[name]], (entry, received[name])
                seen[name] += 1


def _position_of(value: Any) -> int:
    if isinstance(value, list) and value and value[0] == "err":
        return int(value[1].rpartition("@")[2])
    return value[1]


# ---- mutations ------------------------------------------------------------------------------


def first_command(ins: list) -> tuple | None:
    """What a simple instruction issues first (None for if/loop, which depend on data)."""
    op = ins[0]
    if op in ("act", "flaky"):
        return ("activity", op, tuple(ins[1:]) if op == "flaky" else (ins[1],))
    if op == "fail":
        return ("activity", "boom", (ins[1],))
    if op == "child":
        return ("child", repr(ins[1]))
    if op in ("js", "js-eager", "gather"):
        item = ins[1][0]
        return (
            ("activity", "boom", (item[1],))
            if isinstance(item, list)
            else ("activity", "act", (item,))
        )
    if op == "sleep":
        return ("sleep", float(ins[1]))
    if op == "signal":
        return ("signal", ins[1])
    if op in ("random", "now", "uuid"):
        return ("value", op)
    return None


@st.composite
def mutations(draw, program: list, long_sleeps: bool = True) -> tuple[str, int, list]:
    """(kind, index, mutant): one instruction reordered, inserted, deleted or changed."""
    kind = draw(st.sampled_from(["change", "insert", "delete", "swap"]))
    size = len(program)
    if kind == "insert" or size == 0:
        index = draw(st.integers(0, size))
        new = draw(simple_instructions(long_sleeps=long_sleeps))
        return "insert", index, program[:index] + [new] + program[index:]
    index = draw(st.integers(0, size - 1))
    if kind == "delete":
        return kind, index, program[:index] + program[index + 1 :]
    if kind == "swap" and size >= 2:
        index = min(index, size - 2)
        mutant = list(program)
        mutant[index], mutant[index + 1] = mutant[index + 1], mutant[index]
        return kind, index, mutant
    changed = _changed(draw, program[index], long_sleeps)
    return "change", index, program[:index] + [changed] + program[index + 1 :]


def _changed(draw, ins: list, long_sleeps: bool) -> list:
    op = ins[0]
    if op in ("act", "flaky"):
        return [op, ins[1] + draw(st.integers(1, 3)), *ins[2:]]
    if op == "sleep":
        return ["sleep", ins[1] + (1.0 if long_sleeps else 0.001)]
    if op == "signal":
        return ["signal", "b" if ins[1] == "a" else "a"]
    if op in ("random", "now", "uuid"):
        return [{"random": "now", "now": "uuid", "uuid": "random"}[op]]
    if op in ("js", "js-eager", "gather"):
        first = ins[1][0]
        other = first + 1 if isinstance(first, int) else 0
        return [op, [other, *ins[1][1:]], *ins[2:]]
    if op == "fail":
        return ["fail", ins[1] + "!", ins[2]]
    if op == "child":
        return ["child", [*ins[1], ["act", 7]], ins[2]]
    return draw(simple_instructions(long_sleeps=long_sleeps))  # if/loop: something else
