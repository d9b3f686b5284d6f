"""--jobs: several runs trained at once, each in its own process (facesketch.pipeline.train_all),
and the autotune lock that keeps their timings apart."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from facesketch import FacesketchError, autotune
from facesketch.config import RunConfig
from facesketch.pipeline import train_all


def _cfg(tmp_path, data, model, **kw) -> RunConfig:
    return RunConfig(model=model, direction="photo2sketch", data=str(data), protocol="random", seed=1, epochs=2,
                     batch_size=4, views="identity", layout="nchw", precision="fp32",
                     runs_dir=str(tmp_path / "runs"), **kw)


def _losses(run) -> list[float]:
    with (run / "history.csv").open() as f:
        return [float(r["train_loss"]) for r in csv.DictReader(f)]


def test_jobs_train_the_same_runs_as_one_at_a_time(tmp_path, synth_dir, capsys):
    """Two runs side by side in worker processes end as the same runs trained in this process:
    the baseline's fitted image bit for bit, the network's losses to float noise (the workers
    have fewer threads, which may change the order of sums)."""
    from safetensors.torch import load_file
    together = train_all([_cfg(tmp_path / "a", synth_dir, "conv_ae"), _cfg(tmp_path / "a", synth_dir, "mean")],
                         jobs=2)
    out = capsys.readouterr().out
    assert "2 at once" in out and "conv_ae-photo2sketch-s1: done in" in out and "mean-photo2sketch-s1: done in" in out
    apart = train_all([_cfg(tmp_path / "b", synth_dir, "conv_ae"), _cfg(tmp_path / "b", synth_dir, "mean")],
                      progress=False)
    for a, b in zip(together, apart, strict=True):
        assert a.name == b.name and (a / "model.safetensors").is_file()
        log = a.parent / "logs" / f"{a.name}.log"
        assert log.read_text().startswith("== ")       # the worker's output went to its log
    mean_a, mean_b = load_file(together[1] / "model.safetensors"), load_file(apart[1] / "model.safetensors")
    assert mean_a.keys() == mean_b.keys() and all(torch.equal(mean_a[k], mean_b[k]) for k in mean_a)
    assert len(_losses(together[0])) == 2
    assert _losses(together[0]) == pytest.approx(_losses(apart[0]), rel=1e-3)
    # called again, both are finished: kept, nothing trains
    assert train_all([_cfg(tmp_path / "a", synth_dir, "conv_ae"), _cfg(tmp_path / "a", synth_dir, "mean")],
                     jobs=2) == together
    assert capsys.readouterr().out.count("finished before, kept") == 2


def test_a_failed_run_does_not_stop_the_others(tmp_path, synth_dir):
    good, bad = _cfg(tmp_path, synth_dir, "mean"), _cfg(tmp_path, tmp_path / "no-such-data", "grey")
    with pytest.raises(FacesketchError) as e:
        train_all([bad, good], jobs=2, progress=False)
    msg = str(e.value)
    assert msg.startswith("1 of 2 runs failed: grey-photo2sketch-s1: ") and "no-such-data" in msg
    assert f"(log: {tmp_path / 'runs' / 'logs' / 'grey-photo2sketch-s1.log'})" in msg
    assert (good.run_dir / "model.safetensors").is_file()


def test_jobs_must_be_at_least_one(tmp_path, synth_dir):
    with pytest.raises(FacesketchError, match="--jobs must be at least 1, got 0"):
        train_all([_cfg(tmp_path, synth_dir, "mean")], jobs=0)


def test_a_second_timing_waits_for_the_first_and_takes_its_choice(monkeypatch, tmp_path):
    """Runs started together time their candidates one at a time (a lock beside the cache): the
    second run of a model waits while the first times, then finds the first's choice cached."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    inside, release = threading.Event(), threading.Event()
    timed = []

    def fake_time(make_step, shape, device, cands):
        timed.append(threading.current_thread().name)
        inside.set()
        assert release.wait(10)
        return {c: 0.1 * (i + 1) for i, c in enumerate(cands)}
    monkeypatch.setattr(autotune, "native_bf16", lambda device: False)
    monkeypatch.setattr(autotune, "time_candidates", fake_time)
    results = {}

    def choose(name):
        results[name] = autotune.choose("conv_ae", 16, torch.device("cpu"), None, (16, 3, 256, 256))
    first = threading.Thread(target=choose, args=("first",), name="first")
    first.start()
    assert inside.wait(10)
    second = threading.Thread(target=choose, args=("second",), name="second")
    second.start()
    second.join(0.5)
    assert second.is_alive() and "second" not in results     # held back while the first times
    release.set()
    first.join(10), second.join(10)
    assert timed == ["first"]
    assert results["first"][1]["source"] == "measured" and results["second"][1]["source"] == "cache"
    assert results["first"][0] == results["second"][0] == ("nchw", "fp32")


def test_timing_goes_on_without_a_lock_where_the_file_system_has_none(monkeypatch, tmp_path):
    import fcntl
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))

    def no_locks(f, op):
        raise OSError(37, "No locks available")
    monkeypatch.setattr(fcntl, "flock", no_locks)
    monkeypatch.setattr(autotune, "native_bf16", lambda device: False)
    monkeypatch.setattr(autotune, "time_candidates", lambda make_step, shape, device, cands: {
        c: 0.1 * (i + 1) for i, c in enumerate(cands)})
    choice, info = autotune.choose("conv_ae", 16, torch.device("cpu"), None, (16, 3, 256, 256))
    assert choice == ("nchw", "fp32") and info["source"] == "measured"


def _train_all(data, runs, models: str) -> subprocess.Popen:
    """`facesketch train-all --jobs 2` started as from a terminal: SIGINT handled (a process
    started in the background may inherit it ignored)."""
    cmd = [sys.executable, "-m", "facesketch", "train-all", "--models", models, "--data", str(data),
           "--protocol", "random", "--epochs-scale", "5", "--batch-size", "4", "--views", "identity",
           "--layout", "nchw", "--precision", "fp32", "--runs-dir", str(runs), "--jobs", "2"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _ctrl_c(proc: subprocess.Popen) -> None:
    """What Ctrl-C in a terminal does: SIGINT to the whole process group, the workers included."""
    os.killpg(proc.pid, signal.SIGINT)


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.2, 0.8, 3.0])
def test_ctrl_c_at_any_moment_of_start_up_is_one_line(tmp_path, synth_dir, delay):
    """Ctrl-C while torch loads, while the workers start, or with runs still queued (four runs,
    two at once): exit 130 and 'interrupted', and no traceback, neither from a half-run import nor
    from the process pool's own thread."""
    proc = _train_all(synth_dir, tmp_path / "runs", "conv_ae,hybrid_ae")
    time.sleep(delay)
    _ctrl_c(proc)
    out, err = proc.communicate(timeout=120)
    assert (proc.returncode, err.strip()) == (130, "interrupted"), out + err
    # no queued run started after Ctrl-C: at most the two that were running have a log
    assert len(list((tmp_path / "runs" / "logs").glob("*.log"))) <= 2


def _workers(pid: int) -> list[str]:
    """The spawned worker processes of `pid` (not its resource tracker), from /proc."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids = (task / "children").read_text().split()
        except OSError:
            continue
        for kid in kids:
            try:
                if b"spawn_main" in Path(f"/proc/{kid}/cmdline").read_bytes():
                    found.append(kid)
            except OSError:
                pass
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux's /proc to see the workers start")
def test_ctrl_c_from_a_terminal_while_a_worker_starts_is_one_line(tmp_path, synth_dir):
    """A terminal's Ctrl-C reaches the workers too. Half a second into a worker's start it is
    still importing (torch takes seconds): it must already ignore Ctrl-C, not print a traceback.
    The worker gets its SIGINT a moment before the parent does (in a terminal the parent's quick
    SIGTERM could end the worker before its traceback is out, and hide it)."""
    proc = _train_all(synth_dir, tmp_path / "runs", "conv_ae")
    deadline = time.monotonic() + 120
    while not (workers := _workers(proc.pid)):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.01)
    time.sleep(0.5)
    for worker in workers:
        os.kill(int(worker), signal.SIGINT)
    time.sleep(1)
    _ctrl_c(proc)
    out, err = proc.communicate(timeout=120)
    assert (proc.returncode, err.strip()) == (130, "interrupted"), out + err


@pytest.mark.slow
def test_ctrl_c_stops_every_run_and_keeps_their_checkpoints(tmp_path, synth_dir):
    """Ctrl-C on `train-all --jobs 2` ends the command (exit 130, 'interrupted') and its workers,
    and each run keeps a checkpoint to resume from, with no half-written file."""
    runs = tmp_path / "runs"
    proc = _train_all(synth_dir, runs, "conv_ae")
    histories = [runs / f"conv_ae-{d}-s0" / "history.csv" for d in ("photo2sketch", "sketch2photo")]
    deadline = time.monotonic() + 240
    while not all(h.is_file() and len(h.read_text().splitlines()) > 2 for h in histories):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.5)
    _ctrl_c(proc)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    assert err.strip() == "interrupted", err   # nothing else: no traceback from the pool's own thread
    for h in histories:
        assert (h.parent / "checkpoint.safetensors").is_file()
        assert not list(h.parent.glob("*.tmp"))
        assert (runs / "logs" / f"{h.parent.name}.log").read_text().strip().endswith("interrupted")
