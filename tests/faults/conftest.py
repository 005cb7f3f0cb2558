"""Fixtures of the fault tests: a real small file system to fill (skipped where the
machine does not allow mounting one)."""

from __future__ import annotations

import pytest

from dolmen.testing.small_disk import MountUnavailable, SmallDisk


@pytest.fixture
def disk(tmp_path):
    try:
        small = SmallDisk(tmp_path / "small", size_mb=4).mount()
    except MountUnavailable as exc:
        pytest.skip(f"no small file system to fill here: {exc}")
    yield small
    small.unmount()
