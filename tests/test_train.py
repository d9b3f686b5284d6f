import csv
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from facesketch import FacesketchError
from facesketch.checkpoint import load_meta, load_weights
from facesketch.config import RunConfig
from facesketch.registry import create_model
from facesketch.train import TrainingDiverged, train

TESTS = Path(__file__).parent


def _cfg(tmp_path, synth_dir, **kw):
    base = dict(model="conv_ae", direction="photo2sketch", data=str(synth_dir), protocol="random", epochs=1,
                batch_size=8, runs_dir=str(tmp_path / "runs"))
    return RunConfig(**{**base, **kw})


def _history(run: Path) -> list[dict]:
    with (run / "history.csv").open() as f:
        return list(csv.DictReader(f))


def test_same_seed_same_weights_and_losses(tmp_path, synth_dir):
    cfg = lambda **kw: _cfg(tmp_path, synth_dir, views="identity", batch_size=4, **kw)  # 3 seeded steps each
    a, b, c = (train(cfg(name=n, seed=s), progress=False) for n, s in (("a", 0), ("b", 0), ("c", 1)))
    sa, sb, sc = (r.model.state_dict() for r in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a.history[0]["train_loss"] == b.history[0]["train_loss"]
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_run_folder_holds_everything_predict_needs(tmp_path, synth_dir):
    run = train(_cfg(tmp_path, synth_dir), progress=False).run_dir
    assert {"config.yaml", "split.csv", "history.csv", "model.safetensors", "checkpoint.safetensors"} <= {
        p.name for p in run.iterdir()}
    meta = load_meta(run / "model.safetensors")
    assert meta["model"] == "conv_ae" and meta["direction"] == "photo2sketch" and meta["epoch"] == 1
    assert meta["versions"]["torch"] == torch.__version__
    rows = _history(run)
    assert [r["epoch"] for r in rows] == ["1"] and float(rows[0]["test_loss"]) > 0
    with pytest.raises(FacesketchError, match="already holds a run; use --resume"):
        train(_cfg(tmp_path, synth_dir), progress=False)


def test_bad_data_leaves_no_folder_and_overwrite_keeps_the_old_run(tmp_path, synth_dir, synth_copy):
    old = train(_cfg(tmp_path, synth_dir, model="mean"), progress=False).run_dir
    before = (old / "model.safetensors").read_bytes()
    photo = sorted((synth_copy / "photos").iterdir())[0]
    photo.write_bytes(photo.read_bytes()[:200])  # a truncated JPEG
    with pytest.raises(FacesketchError, match=photo.name):
        train(_cfg(tmp_path, synth_copy, model="mean"), overwrite=True, progress=False)
    assert (old / "model.safetensors").read_bytes() == before
    with pytest.raises(FacesketchError, match=photo.name):
        train(_cfg(tmp_path, synth_copy, model="mean", name="fresh"), progress=False)
    assert not (tmp_path / "runs" / "fresh").exists()


def test_stage_epochs_follow_overrides():
    hybrid = (("mse", 100), ("mae", 50))
    assert RunConfig(model="hybrid_ae", direction="photo2sketch").stages(hybrid) == [("mse", 100), ("mae", 50)]
    assert RunConfig(model="hybrid_ae", direction="photo2sketch", epochs_scale=0.05).stages(hybrid) == [
        ("mse", 5), ("mae", 2)]
    assert RunConfig(model="hybrid_ae", direction="photo2sketch", epochs=10).stages(hybrid) == [("mse", 10), ("mae", 5)]
    assert RunConfig(model="hybrid_ae", direction="photo2sketch", epochs=1, epochs_scale=0.1).stages(hybrid) == [
        ("mse", 1), ("mae", 1)]


def test_loading_runs_no_pickle_and_rejects_tampering(tmp_path, synth_dir, monkeypatch):
    run = train(_cfg(tmp_path, synth_dir), progress=False).run_dir
    weights = run / "model.safetensors"

    def no_pickle(*a, **k):
        raise AssertionError("pickle used while loading weights")
    monkeypatch.setattr(pickle, "load", no_pickle)
    monkeypatch.setattr(pickle, "loads", no_pickle)
    monkeypatch.setattr(torch, "load", no_pickle)
    load_weights(create_model("conv_ae"), weights)

    data = weights.read_bytes()
    truncated = tmp_path / "trunc.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(FacesketchError, match="corrupt or truncated weights file"):
        load_weights(create_model("conv_ae"), truncated)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all" + data[24:])
    with pytest.raises(FacesketchError, match="corrupt or truncated"):
        load_weights(create_model("conv_ae"), garbage)
    with pytest.raises(FacesketchError, match="weights do not fit model 'conv_ae'"):
        load_weights(create_model("hybrid_ae"), weights)


@pytest.mark.parametrize("lazily", [False, True], ids=["every step (CPU)", "read lazily (GPU)"])
def test_nan_loss_stops_clearly_and_keeps_last_good_checkpoint(tmp_path, synth_dir, monkeypatch, lazily):
    """On a GPU the loss is read only every LOSS_READ_EVERY steps: a NaN between two reads is still
    caught by the epoch's sum, before the epoch's checkpoint."""
    import facesketch.train as T
    monkeypatch.setattr(T, "_reads_loss_lazily", lambda device: lazily)
    monkeypatch.setattr(T, "LOSS_READ_EVERY", 1000)      # lazily: no read inside an epoch but the first step's
    calls = {"n": 0}
    real = T.LOSSES["mae"]

    def poisoned(pred, tgt, **kw):
        calls["n"] += pred.requires_grad
        loss = real(pred, tgt, **kw)
        # 10 training steps per epoch here (10 identities x 8 views / batch 8): poison epoch 2
        return loss * float("nan") if calls["n"] > 12 and pred.requires_grad else loss
    monkeypatch.setitem(T.LOSSES, "mae", poisoned)
    cfg = _cfg(tmp_path, synth_dir, epochs=3, layout="nchw", precision="fp32")   # no timing steps
    with pytest.raises(TrainingDiverged, match="loss became nan during epoch 2" if lazily
                       else "loss became nan at epoch 2 step 2"):
        train(cfg, progress=False)
    assert load_meta(cfg.run_dir / "model.safetensors")["epoch"] == 1
    load_weights(create_model("conv_ae"), cfg.run_dir / "model.safetensors")
    assert [r["epoch"] for r in _history(cfg.run_dir)] == ["1"]


def _train_cmd(runs: Path, synth_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "facesketch", "train", "--model", "conv_ae", "--direction", "photo2sketch",
            "--data", str(synth_dir), "--protocol", "random", "--epochs", "3", "--batch-size", "4",
            "--runs-dir", str(runs), *extra]


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_continues_exactly(tmp_path, synth_dir):
    runs = tmp_path / "runs"
    proc = subprocess.Popen(_train_cmd(runs, synth_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = runs / "conv_ae-photo2sketch-s0" / "history.csv"
    deadline = time.time() + 240
    while time.time() < deadline and not (history.exists() and len(history.read_text().splitlines()) >= 2):
        time.sleep(0.2)
    time.sleep(1.5)  # well inside epoch 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    run = history.parent
    assert len(_history(run)) in (1, 2), "kill should land before the last epoch"
    load_weights(create_model("conv_ae"), run / "model.safetensors")  # nothing corrupt after the kill
    subprocess.run(_train_cmd(runs, synth_dir, "--resume"), check=True, capture_output=True)
    assert [r["epoch"] for r in _history(run)] == ["1", "2", "3"]

    subprocess.run(_train_cmd(tmp_path / "ref", synth_dir), check=True, capture_output=True)
    resumed, straight = create_model("conv_ae"), create_model("conv_ae")
    load_weights(resumed, run / "model.safetensors")
    load_weights(straight, tmp_path / "ref" / "conv_ae-photo2sketch-s0" / "model.safetensors")
    a, b = resumed.state_dict(), straight.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed run differs from an uninterrupted one"


@pytest.mark.slow
def test_ddp_two_gloo_processes_keep_equal_weights(tmp_path, synth_dir):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29517",
                    str(TESTS / "ddp_worker.py"), str(tmp_path), str(synth_dir)],
                   check=True, capture_output=True, env=env, timeout=600)
    ranks = [(tmp_path / f"rank{r}.txt").read_text().split() for r in (0, 1)]
    assert ranks[0][0] == "1" and ranks[1][0] == "1"  # every rank saw identical weights
    assert ranks[0][1] == ranks[1][1] and ranks[0][2] == "1"
    run = tmp_path / "runs" / "conv_ae-sketch2photo-s3"
    assert [r["epoch"] for r in _history(run)] == ["1"]
    load_weights(create_model("conv_ae"), run / "model.safetensors")


def test_recalibrate_bn_sets_exact_training_statistics(tmp_path, synth_dir):
    from facesketch.data.dataset import PairDataset
    from facesketch.data.pairs import find_pairs
    from facesketch.train import recalibrate_bn
    torch.manual_seed(0)
    model = create_model("hybrid_ae")
    ds = PairDataset(find_pairs(synth_dir).pairs[:3], size=256, direction="photo2sketch")
    recalibrate_bn(model, ds, torch.device("cpu"), False, 1)  # equal batches: the average is exact
    bn = model.encoder[0][3]
    with torch.no_grad():
        x = torch.stack([ds[i][0] for i in range(3)])
        pre = model.encoder[0][:3](x)  # conv -> pool -> leaky relu, the input of that BatchNorm
    assert torch.allclose(bn.running_mean, pre.mean((0, 2, 3)), atol=1e-4)
    # BatchNorm stores each batch's unbiased variance (n - 1 = 128 * 128 - 1 here); with momentum
    # None it keeps their plain average. rtol 1e-5 tells it from the biased one (off by 6e-5).
    per_batch = pre.double().var((2, 3), correction=1).mean(0)
    assert torch.allclose(bn.running_var.double(), per_batch, rtol=1e-5, atol=0)
    assert bn.momentum == 0.01 and not model.training
