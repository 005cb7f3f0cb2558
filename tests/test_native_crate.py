"""The Rust crate's own unit tests, run by the same command as everything else."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

CRATE = os.path.join(os.path.dirname(__file__), "..", "native", "Cargo.toml")


@pytest.mark.skipif(shutil.which("cargo") is None, reason="cargo is not installed")
def test_cargo_test_passes():
    done = subprocess.run(
        ["cargo", "test", "--offline", "--manifest-path", CRATE],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "test result: ok" in done.stdout
