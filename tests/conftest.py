"""Shared fixtures: the real CUFS set when present (skips otherwise), small synthetic sets."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CUFS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cufs"


@pytest.fixture(scope="session")
def cufs_dir() -> Path:
    if not (CUFS / "photos").is_dir():
        pytest.skip(f"CUFS not present at {CUFS}")
    return CUFS


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    from facesketch.data.synthetic import write_synthetic
    return write_synthetic(tmp_path_factory.mktemp("synth") / "data", n=12, seed=3, progress=False)


@pytest.fixture
def synth_copy(synth_dir, tmp_path) -> Path:
    """A private, writable copy of the synthetic set for tests that break it."""
    dst = tmp_path / "data"
    shutil.copytree(synth_dir, dst)
    return dst
