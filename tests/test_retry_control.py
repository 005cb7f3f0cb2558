"""Retry control and cause chains: retries=None, non_retryable, NonRetryableError, .cause."""

from __future__ import annotations

import random

import pytest

import dolmen
from dolmen.runtime.events import Kind


class PaymentDeclined(LookupError):
    pass


def _count(path: str) -> int:
    """Attempts so far, kept in a file: the attempts run on executor threads."""
    try:
        with open(path) as f:
            n = int(f.read() or 0)
    except FileNotFoundError:
        n = 0
    with open(path, "w") as f:
        f.write(str(n + 1))
    return n + 1


@dolmen.activity(retries=None, backoff=0.001, max_backoff=0.002)
def flaky_forever(path: str, fails: int) -> int:
    n = _count(path)
    if n <= fails:
        raise ConnectionError(f"attempt {n} down")
    return n


@dolmen.activity(retries=5, backoff=0.001, non_retryable=(LookupError,))
def charge(path: str) -> None:
    _count(path)
    try:
        raise ValueError("card 4242 expired")
    except ValueError as exc:
        raise PaymentDeclined("declined") from exc


@dolmen.activity(retries=5, backoff=0.001)
def give_up(path: str) -> None:
    _count(path)
    raise dolmen.NonRetryableError("bad request: no such order")


@dolmen.workflow
async def unlimited(path: str, fails: int) -> int:
    return await flaky_forever(path, fails)


@dolmen.workflow
async def pay(path: str) -> None:
    await charge(path)


@dolmen.workflow
async def pay_caught(path: str) -> list[str]:
    try:
        await charge(path)
    except dolmen.ActivityError as exc:
        return [c.type for c in exc.cause.chain()]
    return []


@dolmen.workflow
async def refuse(path: str) -> None:
    await give_up(path)


@dolmen.workflow
async def raises_chained() -> None:
    try:
        raise KeyError("inner")
    except KeyError as exc:
        raise RuntimeError("outer") from exc


@dolmen.workflow
async def parent_of_failing(path: str) -> None:
    await pay(path)


def attempts(handle) -> list[int]:
    return [e.data["attempt"] for e in handle.history() if e.kind == Kind.ACTIVITY_FAILED]


@pytest.mark.ray
def test_unlimited_retries_keep_going_until_success(client, tmp_path):
    handle = client.start(unlimited, str(tmp_path / "n"), 6)
    assert handle.result(timeout=60) == 7
    assert attempts(handle) == [1, 2, 3, 4, 5, 6]


@pytest.mark.ray
def test_non_retryable_type_fails_at_once_with_the_cause_chain(client, tmp_path):
    path = str(tmp_path / "n")
    handle = client.start(pay, path)
    with pytest.raises(dolmen.WorkflowFailedError) as caught:
        handle.result(timeout=60)
    assert attempts(handle) == [1] and open(path).read() == "1"
    failed = next(e for e in handle.history() if e.kind == Kind.ACTIVITY_FAILED)
    assert failed.data["non_retryable"] and failed.data["final"]
    cause = caught.value.cause
    # The workflow's own exception, caused by the activity's, caused by what it handled.
    assert [c.type for c in cause.chain()] == ["ActivityError", "PaymentDeclined", "ValueError"]
    assert cause.cause.message == "declined"
    assert "card 4242 expired" in cause.cause.cause.message
    assert "raise ValueError" in cause.cause.cause.traceback
    assert "PaymentDeclined" in cause.cause.traceback


@pytest.mark.ray
def test_the_workflow_sees_the_activity_cause(client, tmp_path):
    types = client.run(pay_caught, str(tmp_path / "n"))
    assert types == ["PaymentDeclined", "ValueError"]


@pytest.mark.ray
def test_non_retryable_error_raised_by_the_activity(client, tmp_path):
    path = str(tmp_path / "n")
    handle = client.start(refuse, path)
    with pytest.raises(dolmen.WorkflowFailedError) as caught:
        handle.result(timeout=60)
    assert attempts(handle) == [1]
    assert caught.value.cause.cause.type == "NonRetryableError"


@pytest.mark.ray
def test_workflow_failure_keeps_its_own_chain(client):
    with pytest.raises(dolmen.WorkflowFailedError) as caught:
        client.run(raises_chained)
    cause = caught.value.cause
    assert (cause.type, cause.message) == ("RuntimeError", "outer")
    assert cause.cause.type == "KeyError" and "inner" in cause.cause.message
    assert "raise RuntimeError" in cause.traceback


@pytest.mark.ray
def test_a_childs_failure_chains_into_the_parents_cause(client, tmp_path):
    with pytest.raises(dolmen.WorkflowFailedError) as caught:
        client.run(parent_of_failing, str(tmp_path / "n"))
    chain = [c.type for c in caught.value.cause.chain()]
    assert chain == ["ChildWorkflowError", "ActivityError", "PaymentDeclined", "ValueError"]


def test_backoff_has_jitter_within_the_cap_and_unlimited_never_overflows():
    act = dolmen.activity(retries=None, backoff=1.0, max_backoff=10.0)(lambda: None)
    rng = random.Random(7)
    delays = [act.retry_delay(2, rng) for _ in range(50)]
    assert all(1.6 <= d <= 2.4 for d in delays) and len(set(delays)) > 40
    assert all(8.0 <= act.retry_delay(a, rng) <= 10.0 for a in (5, 100, 10_000))
    assert act.is_final(10_000, {}) is False
    assert act.is_final(1, {"non_retryable": True}) is True


def test_bad_retry_settings_are_clear_errors():
    with pytest.raises(TypeError, match="non_retryable"):
        dolmen.activity(non_retryable=("ValueError",))(lambda: None)
    with pytest.raises(TypeError, match="retries"):
        dolmen.activity(retries="3")(lambda: None)
    with pytest.raises(ValueError, match="retries"):
        dolmen.activity(retries=-1)(lambda: None)
    single = dolmen.activity(non_retryable=KeyError)(lambda: None)
    assert single.non_retryable == (KeyError,)


def test_error_info_round_trips_through_the_codec():
    from dolmen.runtime import codec
    from dolmen.runtime.errors import error_fields

    try:
        try:
            raise OSError("disk")
        except OSError as exc:
            raise RuntimeError("save failed") from exc
    except RuntimeError as exc:
        fields = error_fields(exc)
    info = dolmen.ErrorInfo.from_fields(codec.decode(codec.encode(fields)))
    assert [c.type for c in info.chain()] == ["RuntimeError", "OSError"]
    assert info.fields() == fields
