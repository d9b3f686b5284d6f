"""bench/gpu.sh, the prepared script for a lent GPU, runs end to end on the CPU with a tiny schedule."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_script_runs_end_to_end_on_a_cpu(tmp_path, synth_dir):
    # pinned where auto would time candidates: the bench's own auto row still does
    env = {**os.environ, "EPOCHS_SCALE": "0.01", "DEVICE": "cpu", "MODELS": "conv_ae,mean", "PRECISION": "fp32",
           "LAYOUT": "channels_last", "BENCH_MODELS": "conv_ae", "BENCH_CANDIDATES": "nchw:fp32,channels_last:fp32",
           "BENCH_SECONDS": "0.2", "BENCH_PAIRS": "4", "BENCH_EPOCHS": "2", "BENCH_TIMEOUT": "800", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    r = subprocess.run(["bash", str(ROOT / "bench" / "gpu.sh"), str(synth_dir), str(tmp_path / "out")], env=env,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    out = tmp_path / "out"
    assert "cuda: none (CPU run)" in (out / "device.txt").read_text()
    bench = (out / "loop_bench.md").read_text()
    assert "| conv_ae | nchw |" in bench and "| conv_ae | channels_last |" in bench and "auto ->" in bench
    assert "layout: channels_last" in (out / "reproduce" / "runs" / "conv_ae-photo2sketch-s0" / "config.yaml").read_text()
    tables = (out / "tables.md").read_text()
    assert "conv_ae" in tables and "mean" in tables
    assert "total" in (out / "time.txt").read_text()
    # a second call with the same OUT (what a lease too short for the whole needs) resumes: the bench is
    # kept, finished runs are kept, and the tables are written again
    runs = out / "reproduce" / "runs"
    # the runs trained side by side (--jobs), each into its own log
    assert sorted(p.name for p in (runs / "logs").glob("*.log")) == sorted(
        f"{m}-{d}-s0.log" for m in ("conv_ae", "mean") for d in ("photo2sketch", "sketch2photo"))
    weights = {p: p.stat().st_mtime_ns for p in runs.glob("*/model.safetensors")}
    (out / "tables.md").unlink()
    r = subprocess.run(["bash", str(ROOT / "bench" / "gpu.sh"), str(synth_dir), str(out)], env=env,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "the bench is already in" in r.stdout and (out / "loop_bench.md").read_text() == bench
    assert weights and {p: p.stat().st_mtime_ns for p in runs.glob("*/model.safetensors")} == weights
    assert "conv_ae" in (out / "tables.md").read_text()


def test_a_bad_layout_or_precision_stops_gpu_sh_before_the_bench(tmp_path, synth_dir):
    """Found in the script's first seconds, not after minutes of a lent GPU's bench."""
    for setting, value in (("LAYOUT", "NCHW"), ("PRECISION", "fp16")):
        env = {**os.environ, setting: value, "DEVICE": "cpu", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        out = tmp_path / setting
        r = subprocess.run(["bash", str(ROOT / "bench" / "gpu.sh"), str(synth_dir), str(out)], env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 1 and r.stderr.strip().splitlines() == [
            f"bench/gpu.sh (LAYOUT, PRECISION): --{setting.lower()} must be auto, "
            + ("nchw or channels_last" if setting == "LAYOUT" else "fp32 or bf16") + f", got '{value}'"], r.stderr
        assert not (out / "loop_bench.md.part").exists() and not (out / "reproduce").exists()
