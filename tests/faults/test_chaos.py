"""The seeded fault harness in CI: a fixed set of seeds, each a round of mixed load under
the faults its seed draws (see ``dolmen.testing.chaos``). A failure names its seed;
``python -m benchmarks faults --seed S --rounds 1`` reruns exactly that round."""

from __future__ import annotations

import pytest

from dolmen.testing import chaos
from dolmen.testing.small_disk import MountUnavailable, SmallDisk

SEEDS = [1, 2]  # a few minutes at most in CI; long runs: python -m benchmarks faults


@pytest.fixture
def maybe_disk(tmp_path):
    """A small file system for disk-full windows where mounting is allowed, else None."""
    try:
        small = SmallDisk(tmp_path / "small", size_mb=8).mount()
    except MountUnavailable:
        yield None
        return
    yield small
    small.unmount()


@pytest.mark.parametrize("seed", SEEDS)
def test_a_seeded_fault_round_keeps_every_invariant(ray_session, tmp_path, maybe_disk, seed):
    report = chaos.run_round(seed, tmp_path, disk=maybe_disk)
    assert not report.problems, report.failure()
    assert sum(report.faults.values()) == 3
    assert report.executions >= 12 and report.lost == 0 and report.duplicated == 0


def test_a_schedule_is_drawn_from_its_seed_alone():
    assert chaos.draw_schedule(7, 5, 4.0) == chaos.draw_schedule(7, 5, 4.0)
    assert chaos.draw_schedule(7, 5, 4.0) != chaos.draw_schedule(8, 5, 4.0)
    assert {kind for _, kind in chaos.draw_schedule(1, 200, 1.0)} == set(chaos.KINDS)
