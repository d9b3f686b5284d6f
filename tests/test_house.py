"""One source for what the package knows: views travel as integers, prediction files are named in
one place, the report's published numbers and the pipeline's model lists come from the registry."""

import csv
import dataclasses
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from facesketch.config import RunConfig
from facesketch.data.augment import apply_view
from facesketch.data.dataset import PairDataset
from facesketch.data.pairs import find_pairs
from facesketch.evaluate import evaluate, predict_dataset
from facesketch.registry import create_model
from facesketch.report import write_report
from facesketch.runs import pred_filename
from facesketch.train import train


def test_predict_dataset_gives_each_item_its_view_when_the_spec_says_so(synth_dir):
    pairs = find_pairs(synth_dir).pairs[:2]
    ds = PairDataset(pairs, size=16, direction="photo2sketch", views=(0, 3, 4))
    model = create_model("mean", image_size=16).eval()
    target = torch.rand(3, 16, 16)
    model.fit(target[None])
    out = list(predict_dataset(model, ds, name="mean", batch_size=4))
    # pair-major, views inner; the view an int, the pair named by its stem
    assert [(stem, view) for *_, stem, view in out] == [(p.stem, v) for p in pairs for v in (0, 3, 4)]
    assert all(type(view) is int for *_, view in out)
    for _, _, pred, _, view in out:  # the mean of view v is view v of the mean target
        assert np.abs(pred - apply_view(target, view).numpy()).max() < 1e-6


def _csv_names(out: Path) -> list[str]:
    with (out / "metrics.csv").open() as f:
        return [r["name"] for r in csv.DictReader(f)]


def test_prediction_files_are_named_once_for_evaluate_and_the_report_grid(synth_dir, tmp_path):
    assert pred_filename("f-001-01", 3) == "f-001-01_v3.png"  # the documented format (`*_v0.png`)
    cfg = RunConfig(model="mean", direction="photo2sketch", data=str(synth_dir), protocol="random",
                    test_fraction=0.34, batch_size=8, runs_dir=str(tmp_path / "runs"), views="identity")
    run = train(cfg, progress=False).run_dir
    # the paper protocol's test split of the same data: 1 pair in all 8 views
    s = evaluate(run, data=synth_dir, protocol="paper", progress=False)
    out = run / "eval-data-paper"
    (stem,) = {name.rsplit("/v", 1)[0] for name in _csv_names(out)}
    assert s["n"] == 8 and sorted(p.name for p in (out / "pred").iterdir()) == sorted(
        pred_filename(stem, v) for v in range(8))
    mean = load_file(str(run / "model.safetensors"))["mean_target"]
    for v in range(8):  # each file holds its own view's prediction
        png = np.asarray(Image.open(out / "pred" / pred_filename(stem, v)), dtype=np.float64)
        expected = apply_view(mean, v).permute(1, 2, 0).numpy() * 255
        assert np.abs(png - expected).max() <= 1, v
    # the report's grid shows the file evaluate wrote for view 0: blacken it and look
    Image.new("RGB", (256, 256)).save(out / "pred" / pred_filename(stem, 0))
    write_report([out], tmp_path / "rep", progress=False)
    grid = np.asarray(Image.open(tmp_path / "rep" / "grid_photo2sketch.png").convert("RGB"))
    tile = 128
    assert grid[18:18 + tile, 2 * tile:3 * tile].max() == 0 and grid[18:18 + tile, :tile].max() > 0


def test_published_columns_come_from_the_model_specs(monkeypatch):
    import facesketch.report as R
    real = R.model_spec
    monkeypatch.setattr(R, "model_spec", lambda name: dataclasses.replace(real(name), published={})
                        if name == "conv_ae" else real(name))
    metrics = {"mae_median": 0.1, "rmse": 0.2, "ssim_paper": 0.7, "mae": 0.1, "psnr": 20.0, "ssim": 0.7}
    run = {"summary": {"model": "mean", "direction": "sketch2photo", "protocol": "paper", "metrics": metrics,
                       "dataset": {"path": "/data/cufs", "pairs": 188, "cufs_student": True}},
           "cfg": SimpleNamespace(gan=False), "path": Path("mean-sketch2photo-s0")}
    header, rows = R.metric_table([run], "sketch2photo")
    assert header == ["metric", "mean", "dense_ae (report)", "hybrid_ae (report)"]
    assert rows[0][-2:] == ["0.064", "0.055"]  # Table II, mae_median


@pytest.fixture
def recorded(monkeypatch):
    """pipeline's train_all, evaluate and write_report replaced by recorders: nothing trains."""
    import facesketch.evaluate as E
    import facesketch.pipeline as P
    import facesketch.report as R
    seen = {"cfgs": [], "evaluate": []}

    def train_all(cfgs, **kwargs):
        seen["cfgs"] += cfgs
        return [cfg.run_dir for cfg in cfgs]

    monkeypatch.setattr(P, "train_all", train_all)
    monkeypatch.setattr(E, "evaluate", lambda run, **kwargs: seen["evaluate"].append(kwargs))
    monkeypatch.setattr(R, "write_report", lambda runs, out, **kwargs: Path(out) / "report.html")
    return seen


def test_demo_trains_the_models_with_demo_epochs_and_evaluates_on_its_device(recorded, monkeypatch, tmp_path):
    import facesketch.pipeline as P
    monkeypatch.setattr(P, "LEARNED", ("conv_ae", "unet"))
    monkeypatch.setattr(P, "DEMO_EPOCHS", {"conv_ae": 2})  # unet has none here: not in the demo
    P.demo(tmp_path, device="cpu", progress=False)
    assert [(c.model, c.direction, c.epochs) for c in recorded["cfgs"]] == [
        (m, d, 2 if m == "conv_ae" else None) for d in ("photo2sketch", "sketch2photo")
        for m in ("conv_ae", "pencil", "grey", "mean")]
    assert [kw["device"] for kw in recorded["evaluate"]] == ["cpu"] * 8


def test_demo_has_24_test_faces_and_trains_the_flagship_at_its_demo_lr(recorded, tmp_path):
    import facesketch.pipeline as P
    P.demo(tmp_path, device="cpu", progress=False)
    cfgs = recorded["cfgs"]
    assert {c.model for c in cfgs} >= {"fsnet", "conv_ae", "dense_ae", "pencil", "grey", "mean"}
    fsnet = [c for c in cfgs if c.model == "fsnet"]
    assert [(c.direction, c.epochs, c.lr) for c in fsnet] == [("photo2sketch", 20, 1e-2), ("sketch2photo", 20, 1e-2)]
    assert all(c.lr is None for c in cfgs if c.model != "fsnet")  # the others keep their own
    assert {round(c.synthetic_n * c.test_fraction) for c in cfgs} == {24}


def test_reproduce_passes_seed_batch_size_lr_and_device_on(recorded, tmp_path):
    import facesketch.pipeline as P
    P.reproduce(tmp_path / "cufs", tmp_path / "out", seed=3, batch_size=5, lr=2e-4, device="cpu", layout="nchw",
                models=("conv_ae", "mean"), progress=False)
    assert [(c.model, c.direction, c.seed, c.batch_size, c.lr, c.layout) for c in recorded["cfgs"]] == [
        (m, d, 3, 5, 2e-4, "nchw") for d in ("photo2sketch", "sketch2photo") for m in ("conv_ae", "mean")]
    assert [kw["device"] for kw in recorded["evaluate"]] == ["cpu"] * 4
    recorded["cfgs"].clear()
    P.reproduce(tmp_path / "cufs", tmp_path / "out", progress=False)  # every registered model by default
    assert [c.model for c in recorded["cfgs"]][:8] == ["dense_ae", "conv_ae", "hybrid_ae", "unet", "fsnet",
                                                       "pencil", "grey", "mean"]
