"""Shared fixtures: the real CUFS set when present (skips otherwise), small synthetic sets."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CUFS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cufs"


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """--layout auto caches its timings in the user's cache folder: tests use their own."""
    import os
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


@pytest.fixture(autouse=True)
def _no_renice(monkeypatch):
    """`sketch` and `photo` lower their own CPU priority (--nice 10, os.nice). Run in-process by
    CliRunner, that would lower the whole test session's priority from then on."""
    import os
    monkeypatch.setattr(os, "nice", lambda increment: 0)


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


@pytest.fixture(scope="session")
def face_photos(tmp_path_factory) -> dict[str, Path]:
    """Two real face photos that ship inside installed packages (nothing from ../shared): scikit-image's
    astronaut (Eileen Collins, 512x512) and matplotlib's Grace Hopper (512x600)."""
    import matplotlib.cbook
    from PIL import Image
    from skimage import data
    root = tmp_path_factory.mktemp("faces")
    Image.fromarray(data.astronaut()).save(root / "astronaut.png")
    Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")).convert("RGB").save(root / "hopper.png")
    return {"astronaut": root / "astronaut.png", "hopper": root / "hopper.png"}
