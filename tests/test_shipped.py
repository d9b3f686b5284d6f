"""The weights that ship inside the package: listed by `models`, loaded without a network, scored
by `evaluate --model`, and (with ../shared present) re-measured against the numbers they state."""

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from facesketch.cli import app
from facesketch.shipped import WEIGHTS_DIR, card, export_weights, load_shipped, shipped_directions
from facesketch.registry import list_models

runner = CliRunner()
README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_flagship_ships_both_directions_within_25_mb():
    assert shipped_directions("fsnet") == ["photo2sketch", "sketch2photo"]
    files = sorted(WEIGHTS_DIR.glob("*.safetensors"))
    assert sum(f.stat().st_size for f in files) <= 25 * 1024 * 1024
    for f in files:  # fp16 storage, readable by any user of an installed copy
        assert f.stat().st_mode & 0o044 == 0o044


def test_every_shipped_file_has_a_card_entry_and_every_entry_a_file():
    on_disk = {(m, d) for m in list_models() for d in shipped_directions(m)}
    in_card = {(m, d) for m, ds in card().items() for d in ds}
    assert on_disk == in_card and on_disk


def test_models_json_names_the_shipped_directions():
    r = runner.invoke(app, ["models", "--json"])
    assert r.exit_code == 0, r.output
    weights = {m["name"]: m["weights"] for m in json.loads(r.output)}
    assert weights["fsnet"] == ["photo2sketch", "sketch2photo"]
    assert all(weights[m] == [] for m in weights if m != "fsnet")


@pytest.mark.parametrize("direction", ["photo2sketch", "sketch2photo"])
def test_shipped_weights_load_and_translate(direction):
    model, meta = load_shipped("fsnet", direction)
    assert meta["direction"] == direction and meta["protocol"] == "paper" and meta["storage"] == "fp16"
    assert len(meta["train_photos_sha256"]) == meta["train_pairs"] == 175
    x = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        y = model(x)
    assert y.dtype == torch.float32 and y.shape == x.shape and 0 < y.min() and y.max() < 1


@pytest.mark.parametrize("args, message", [
    (["--model", "fsnet", "--data", "x"], "give --direction"),
    (["--model", "fsnet", "--direction", "photo2sketch"], "give --direction (photo2sketch or sketch2photo) and --data"),
    (["--model", "nope", "--direction", "photo2sketch", "--data", "."], "unknown model 'nope'"),
    (["--model", "fsnet", "--direction", "up", "--data", "."], "direction must be photo2sketch or sketch2photo"),
    (["--model", "conv_ae", "--direction", "photo2sketch", "--data", "."], "no shipped weights for photo2sketch; these ship: fsnet"),
    (["some-run", "--model", "fsnet", "--direction", "photo2sketch", "--data", "."], "not both"),
    ([], "give a run folder, or --model"),
])
def test_evaluate_model_refuses_bad_options_in_one_line(args, message):
    r = runner.invoke(app, ["evaluate", *args])
    assert r.exit_code != 0 and message in r.output and len(r.output.strip().splitlines()) == 1, r.output


def test_evaluate_model_scores_shipped_weights_on_any_paired_folder(synth_dir, tmp_path):
    out = tmp_path / "ev"
    r = runner.invoke(app, ["evaluate", "--model", "fsnet", "--direction", "photo2sketch", "--data", str(synth_dir),
                            "--out", str(out), "--no-images"])
    assert r.exit_code == 0, r.output
    s = json.loads((out / "summary.json").read_text())
    assert s["shipped"] and s["model"] == "fsnet" and s["protocol"] == "all" and s["train_overlap"] == 0
    assert s["n"] == len(list((synth_dir / "photos").iterdir())) and s["descriptor_fit_on"] == "the test targets"
    assert "identification among" in r.output and "(shipped weights)" in r.output
    # the same folder takes the same evaluation again; another direction's is refused
    again = runner.invoke(app, ["evaluate", "-m", "fsnet", "-d", "photo2sketch", "--data", str(synth_dir),
                                "--out", str(out), "--no-images"])
    assert again.exit_code == 0, again.output
    other = runner.invoke(app, ["evaluate", "-m", "fsnet", "-d", "sketch2photo", "--data", str(synth_dir),
                                "--out", str(out), "--no-images"])
    assert other.exit_code != 0 and "holds an evaluation of" in other.output


def test_export_weights_halves_the_storage_and_records_the_training_photos(tmp_path, synth_dir):
    from facesketch.checkpoint import load_meta
    from facesketch.config import RunConfig
    from facesketch.train import train
    cfg = RunConfig(model="fsnet", direction="photo2sketch", data=str(synth_dir), protocol="random", epochs=1,
                    epochs_scale=1.0, batch_size=4, views="identity", device="cpu", runs_dir=str(tmp_path),
                    name="tiny", layout="channels_last", precision="fp32")
    train(cfg, progress=False)
    meta = export_weights(tmp_path / "tiny", tmp_path / "w.safetensors", machine="here")
    assert meta["machine"] == "here" and meta["storage"] == "fp16"
    rows = (tmp_path / "tiny" / "split.csv").read_text().splitlines()[1:]
    assert len(meta["train_photos_sha256"]) == sum(",train," in r for r in rows) > 0
    assert load_meta(tmp_path / "w.safetensors")["train_photos_sha256"] == meta["train_photos_sha256"]
    from safetensors import safe_open
    with safe_open(str(tmp_path / "w.safetensors"), framework="pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} <= {torch.float16, torch.int64}


@pytest.mark.slow
@pytest.mark.parametrize("direction", ["photo2sketch", "sketch2photo"])
def test_shipped_weights_reproduce_their_stated_paper_numbers(direction, cufs_dir, tmp_path):
    stated = card()["fsnet"][direction]["metrics"]["paper"]
    r = runner.invoke(app, ["evaluate", "-m", "fsnet", "-d", direction, "--data", str(cufs_dir),
                            "--protocol", "paper", "--out", str(tmp_path / "ev"), "--no-images"])
    assert r.exit_code == 0, r.output
    got = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert got["train_overlap"] == 0 and got["n"] == 104
    for k in ("mae_median", "rmse", "ssim_paper", "ssim", "psnr"):
        assert got["metrics"][k] == pytest.approx(stated[k], abs=2e-3 if k != "psnr" else 0.02), k
    assert got["identification"]["rank1"] == pytest.approx(stated["rank1"], abs=1e-3)
    readme = README.read_text()  # the model card states what was measured
    for k in ("mae_median", "rmse", "ssim_paper"):
        assert f"{stated[k]:.4f}" in readme, (direction, k)


@pytest.mark.slow
def test_shipped_weights_say_they_have_seen_cufs_standard_test_faces(cufs_dir, tmp_path):
    r = runner.invoke(app, ["evaluate", "-m", "fsnet", "-d", "sketch2photo", "--data", str(cufs_dir),
                            "--protocol", "cufs-standard", "--out", str(tmp_path / "ev"), "--no-images"])
    assert r.exit_code == 0, r.output
    got = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert got["train_overlap"] > 80 and "not a fair test" in r.output
